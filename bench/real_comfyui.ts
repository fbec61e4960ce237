/**
 * Opt-in, needs the network (not part of `deno task bench`): the whole path on a REAL ComfyUI with REAL custom
 * node packs and real packages from PyPI, with timings. `deno task bench:comfyui`.
 *
 *   create (ComfyUI at COMFYDOCK_REAL_COMFYUI_REF, torch from PyPI, resolved as of COMFYDOCK_REAL_AS_OF)
 *   -> health of bare ComfyUI -> node add of each pack in COMFYDOCK_REAL_NODES (git URLs, space separated)
 *   -> plan -> health (which packs load, which fail and why) -> export -> import as a second environment
 *   -> plan and health there (a clean plan must not hide a broken ComfyUI).
 *
 * URLs default to GitHub; any reachable git URL or local repository works (COMFYDOCK_REAL_COMFYUI_URL).
 * COMFYDOCK_REAL_UV_CACHE reuses a uv cache between runs (torch from PyPI is ~3 GB on Linux x86_64).
 */
import { join } from "node:path";
import { realCliEnv, timedSteps } from "./real_steps.ts";

const DEFAULT_NODES = [
  "https://github.com/kijai/ComfyUI-KJNodes",
  "https://github.com/rgthree/rgthree-comfy",
  "https://github.com/cubiq/ComfyUI_essentials",
];

interface HealthPack {
  dir: string;
  status: string;
  classes: string[] | null;
  error: string | null;
}

async function main(): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "comfydock-real-comfyui-" });
  const home = join(tmp, "home");
  const env = realCliEnv(home, { HOME: Deno.env.get("HOME") ?? tmp });
  const { step, table } = timedSteps(env);
  const health = async (what: string, envName: string) => {
    const r = await step(what, ["-e", envName, "health", "--json"], [0, 2]);
    // One --json document; the health result is its data (or the document itself, before the envelope).
    const doc = JSON.parse(r.stdout);
    const data = doc.data ?? doc;
    if (!data.started) console.log(`  ComfyUI did not start: ${data.error}`);
    const packs: HealthPack[] = data.packs ?? [];
    for (const p of packs) {
      console.log(
        `  ${p.status.padEnd(7)} ${p.dir}${p.classes ? ` (${p.classes.length} classes)` : ""}` +
          (p.error ? `: ${p.error.split("\n")[0].slice(0, 160)}` : ""),
      );
    }
    return packs;
  };
  try {
    const url = Deno.env.get("COMFYDOCK_REAL_COMFYUI_URL") ?? "https://github.com/comfyanonymous/ComfyUI";
    const ref = Deno.env.get("COMFYDOCK_REAL_COMFYUI_REF") ?? "v0.3.64";
    const nodes = (Deno.env.get("COMFYDOCK_REAL_NODES") ?? DEFAULT_NODES.join(" ")).split(/\s+/).filter(
      Boolean,
    );
    const asOf = Deno.env.get("COMFYDOCK_REAL_AS_OF") ?? "comfyui";
    await step("init", ["init"]);
    const cache = Deno.env.get("COMFYDOCK_REAL_UV_CACHE");
    if (cache) {
      await Deno.remove(join(home, "uv_cache"), { recursive: true });
      await Deno.symlink(cache, join(home, "uv_cache"));
    }
    await step(`create (ComfyUI ${ref}, torch from PyPI, resolved as of ${asOf})`, [
      "create",
      "real",
      "--comfyui-url",
      url,
      "--comfyui",
      ref,
      "--torch-backend",
      "pypi",
      "--resolve-as-of",
      asOf,
      "--use",
    ]);
    await step("no-op plan", ["plan", "--detailed-exitcode"]);
    await health("health of bare ComfyUI", "real");
    for (const n of nodes) await step(`node add ${n}`, ["node", "add", n, "--yes"]);
    await step("plan after the node adds", ["plan", "--detailed-exitcode"]);
    const packs = await health("health with the packs", "real");
    const bundle = join(tmp, "real.tar.gz");
    await step("export", ["export", "real", "--out", bundle]);
    await step("import as a second environment", ["import", bundle, "--name", "copy", "--yes"]);
    await step("plan of the copy", ["-e", "copy", "plan", "--detailed-exitcode"]);
    const copied = await health("health of the copy", "copy");
    const loaded = (ps: HealthPack[]) => ps.filter((p) => p.status === "loaded").length;
    console.log(
      `\npacks loaded: ${loaded(packs)}/${packs.length} here, ${loaded(copied)}/${copied.length} in the copy`,
    );
    table();
  } finally {
    if (!Deno.args.includes("--keep")) await Deno.remove(tmp, { recursive: true }).catch(() => {});
    else console.log(`kept ${tmp}`);
  }
}

if (import.meta.main) await main();
