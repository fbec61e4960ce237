/**
 * `node add` of a registry node (seed target: < 10 s), against the fixture registry on 127.0.0.1 with a
 * pack of realistic size (300 files, ~6 MB, two requirements from a local wheelhouse): registry lookups,
 * archive download into the store, requirements, the pyproject edit, the uv resolution check, then plan +
 * apply (extract, marker, rename into place). The download is timed on its own and subtracted.
 */
import { median, record } from "./stats.ts";
import { join } from "node:path";
import { addEdits, parseNodeSpec, resolveNodeSpec } from "../providers/nodes/add.ts";
import { downloadArchive } from "../providers/nodes/archive.ts";
import { observeNodes, readMarker, writeMarker } from "../providers/nodes/observe.ts";
import { nodeProvider } from "../providers/nodes/provider.ts";
import { RegistryClient } from "../providers/nodes/registry.ts";
import { checkResolves } from "../providers/packages/resolve.ts";
import { applyPlan, makePlan } from "../reconcile/engine.ts";
import { readDesired } from "../reconcile/desired.ts";
import { editPyprojectText } from "../reconcile/pyproject_edit.ts";
import { testSettings } from "../fixtures/app.ts";
import { makeNodeEnv } from "../fixtures/node_env.ts";
import { startRegistryServer } from "../fixtures/registry_server.ts";
import { buildWheelhouse, wheelhouseUvToml } from "../fixtures/wheels.ts";
import { useLocalUv } from "../fixtures/tools.ts";

const FILES = 300;

/** observeNodes with the marker as apply wrote it, then with its stats dropped (every file hashed). */
async function benchObserve(customNodes: string, nodeDir: string) {
  const time = async () => {
    const xs: number[] = [];
    for (let i = 0; i < 7; i++) {
      const t = performance.now();
      const o = await observeNodes(customNodes);
      xs.push(performance.now() - t);
      if (o.nodes.some((n) => n.changedFiles.length)) throw new Error("bench: files reported as changed");
    }
    return median(xs);
  };
  const withStats = await time();
  const marker = await readMarker(nodeDir);
  if (!marker?.stats) throw new Error("bench: the marker has no stats");
  await writeMarker(nodeDir, { ...marker, stats: undefined });
  const hashAll = await time();
  await writeMarker(nodeDir, marker);
  return { withStats, hashAll };
}

export async function benchNodes(): Promise<string[]> {
  const root = await Deno.makeTempDir({ prefix: "comfydock-bench-nodes-" });
  await useLocalUv();
  const extra: Record<string, string> = {};
  // Source-like text that compresses about as well as real code (~3:1), not a run of one repeated line.
  const words = [
    "def",
    "return",
    "self",
    "tensor",
    "image",
    "latent",
    "model",
    "if",
    "for",
    "in",
    "None",
    "=",
    "+",
  ];
  let seed = 1;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let i = 0; i < FILES; i++) {
    const lines = Array.from(
      { length: 600 },
      () =>
        Array.from({ length: 5 }, () => words[Math.floor(rand() * words.length)] + Math.floor(rand() * 1000))
          .join(" "),
    );
    extra[`nodes/mod${i % 20}/n${i}.py`] = lines.join("\n");
  }
  const server = await startRegistryServer([{
    id: "bench-pack",
    versions: [{
      version: "1.0.0",
      pack: { classes: ["BenchA", "BenchB"], requirements: ["libx>=1", "liby==2.0.0"], extra },
    }],
  }]);
  const prevUrl = Deno.env.get("COMFYDOCK_REGISTRY_URL");
  Deno.env.set("COMFYDOCK_REGISTRY_URL", server.url);
  try {
    const wheels = await buildWheelhouse(join(root, "wheels"), [
      { name: "libx", version: "1.5.0" },
      { name: "liby", version: "2.0.0", requires: ["libx>=1"] },
    ]);
    const paths = await makeNodeEnv(join(root, "ws"));
    const settings = testSettings();
    const ctx = { paths, settings };
    await Deno.writeTextFile(
      paths.pyproject,
      (await Deno.readTextFile(paths.pyproject)) + wheelhouseUvToml(wheels),
    );
    // Warm uv's cache on the wheelhouse, as any second `node add` would find it.
    await checkResolves(ctx, await Deno.readTextFile(paths.pyproject));

    const t0 = performance.now();
    const dl = await downloadArchive(`${server.url}/dl/bench-pack/1.0.0.zip`, "bench-pack");
    const download = performance.now() - t0;

    const start = performance.now();
    const registry = RegistryClient.fromSettings(settings);
    const resolved = await resolveNodeSpec(parseNodeSpec("bench-pack"), { paths, registry });
    const tResolve = performance.now();
    const desired = await readDesired(paths);
    const { text } = await editPyprojectText(desired.pyprojectText, addEdits(desired.pyproject, [resolved]));
    await checkResolves(ctx, text);
    await Deno.writeTextFile(paths.pyproject, text);
    const tCheck = performance.now();
    const { plan } = await makePlan(paths, { providers: [nodeProvider], settings });
    await applyPlan(paths, plan, { providers: [nodeProvider], settings });
    const end = performance.now();
    const again = await makePlan(paths, { providers: [nodeProvider], settings });
    if (again.plan.actions.length !== 0) throw new Error("bench: the node is not installed after apply");
    const observe = await benchObserve(paths.customNodes, join(paths.customNodes, "bench-pack"));

    const total = end - start;
    const ms = (x: number) => `${x.toFixed(0)} ms`;
    record("nodes.add_s", (total - download) / 1000);
    record("nodes.pack_mb", dl.length / 1e6);
    record("nodes.pack_files", FILES + 3);
    return [
      `node add (registry node, ${FILES + 3} files, ${(dl.length / 1e6).toFixed(1)} MB zip, local registry):`,
      `  resolve + download + requirements ${ms(tResolve - start)} (download alone ${ms(download)})`,
      `  pyproject edit + uv resolution check ${ms(tCheck - tResolve)}`,
      `  plan + apply (extract, marker, place) ${ms(end - tCheck)}`,
      `  total ${ms(total)}; excluding download ${ms(total - download)} (seed target < 10000 ms: ${
        (10_000 / Math.max(total - download, 1)).toFixed(0)
      }x under)`,
      `node observe (${FILES + 3}-file registry node, hand edits checked, median of 7): ` +
      `${observe.withStats.toFixed(1)} ms with size+mtime in the manifest, ` +
      `${observe.hashAll.toFixed(1)} ms hashing every file (markers without stats)`,
    ];
  } finally {
    if (prevUrl === undefined) Deno.env.delete("COMFYDOCK_REGISTRY_URL");
    else Deno.env.set("COMFYDOCK_REGISTRY_URL", prevUrl);
    await server.close();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) { for (const line of await benchNodes()) console.log(line); }
