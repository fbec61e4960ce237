/**
 * A foreign `.git/config` never runs: a registry zip, a bundle's `cec/` or `dev_nodes/x/`, or a node folder
 * already on disk may carry `core.fsmonitor = <command>` (run by every `git status`) or a filter driver
 * (run when git reads a file). Each route is tried through the CLI as a subprocess; the payload would create
 * a canary file, and the canary never appears.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli } from "../../fixtures/cli.ts";
import { assertNoCanary, hostileGitFiles, poisonCheckout } from "../../fixtures/hostile.ts";
import { gitIn } from "../../fixtures/node_git.ts";
import { nodePackFiles, zipFiles } from "../../fixtures/node_packs.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { startRegistryServer } from "../../fixtures/registry_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { type RawEntry, rawTarGz } from "../../fixtures/bundle_archives.ts";
import { exists, listFiles, sha256Hex } from "../../lib/fsx.ts";
import { extractTarGz } from "../../providers/bundles/archive.ts";
import { localEdits } from "../../providers/comfyui/checkout.ts";
import { envPaths, workspacePaths } from "../../reconcile/paths.ts";

const READERS: string[][] = [["plan"], ["status"], ["drift"], ["node", "list"]];

Deno.test("hostile git config: a node folder on disk with fsmonitor and a filter driver runs nothing", async () => {
  await withTempDir(async (dir) => {
    const { paths, env } = await createRealEnv(join(dir, "home"), "e");
    const canary = join(dir, "canary-disk");
    const evil = join(paths.customNodes, "evil-node");
    await Deno.mkdir(evil, { recursive: true });
    await gitIn(evil, "init", "--quiet");
    await Deno.writeTextFile(join(evil, "__init__.py"), "NODE_CLASS_MAPPINGS = {}\n");
    await gitIn(evil, "add", "-A");
    await gitIn(evil, "commit", "--quiet", "-m", "init");
    await poisonCheckout(evil, canary);
    // Same size, new mtime: git must compare content, which is when a clean filter runs.
    await Deno.utime(join(evil, "__init__.py"), new Date(), new Date(2001, 1, 1));
    for (const args of [...READERS, ["capture", "--yes"], ["apply", "--yes"]]) {
      const r = await cli(args, { env });
      assert.ok(r.code === 0 || r.code === 2, `${args.join(" ")}: ${r.stderr}`);
      await assertNoCanary(canary, args.join(" "));
    }
  });
});

Deno.test("hostile git config: adopt reads a ComfyUI checkout's edits without running its filter driver", async () => {
  await withTempDir(async (dir) => {
    const canary = join(dir, "canary-adopt");
    const folder = join(dir, "ComfyUI");
    await Deno.mkdir(folder);
    await gitIn(folder, "init", "--quiet");
    await Deno.writeTextFile(join(folder, "main.py"), "print('comfy')\n");
    await gitIn(folder, "add", "-A");
    await gitIn(folder, "commit", "--quiet", "-m", "init");
    await poisonCheckout(folder, canary);
    await Deno.utime(join(folder, "main.py"), new Date(), new Date(2001, 1, 1));
    // What adopt asks of the user's folder (workspace/adopt.ts).
    assert.deepEqual(await localEdits(folder, { untrusted: true }), []);
    await assertNoCanary(canary, "adopt's look at the folder's edits");
  });
});

Deno.test("hostile git config: a registry zip carrying .git is refused, naming the entry", async () => {
  await withTempDir(async (dir) => {
    const canary = join(dir, "canary-zip");
    const server = await startRegistryServer([{
      id: "evil-pack",
      versions: [{
        version: "1.0.0",
        archive: zipFiles({ ...nodePackFiles("Evil"), ...hostileGitFiles(canary) }),
      }],
    }]);
    try {
      const { paths, env } = await createRealEnv(join(dir, "home"), "e");
      const runEnv = { ...env, COMFYDOCK_REGISTRY_URL: server.url, COMFYDOCK_HTTP_RETRY_BASE_MS: "5" };
      const before = await Deno.readTextFile(paths.pyproject);
      const r = await cli(["node", "add", "evil-pack", "--yes"], { env: runEnv });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /\.git\/(HEAD|config)/);
      assert.match(r.stderr, /git/i);
      assert.equal(await Deno.readTextFile(paths.pyproject), before, ".cec unchanged");
      assert.equal(await exists(join(paths.customNodes, "evil-pack")), false);
      for (const args of READERS) {
        await cli(args, { env: runEnv });
        await assertNoCanary(canary, args.join(" "));
      }
    } finally {
      await server.close();
    }
  });
});

/** The bundle of a real environment with a dev node, repacked with `extra` files (manifest updated). */
async function hostileBundle(
  dir: string,
  extra: Record<string, string>,
): Promise<{ file: string; env: Record<string, string> }> {
  const { env } = await createRealEnv(join(dir, "home"), "src");
  const dev = join(dir, "my-dev");
  await Deno.mkdir(dev);
  await Deno.writeTextFile(join(dev, "__init__.py"), "NODE_CLASS_MAPPINGS = {}\n");
  let r = await cli(["node", "add", dev, "--dev", "--yes"], { env });
  assert.equal(r.code, 0, r.stderr);
  const good = join(dir, "good.tar.gz");
  r = await cli(["export", "--with-dev-nodes", "--out", good], { env });
  assert.equal(r.code, 0, r.stderr);
  const unpacked = join(dir, "unpacked");
  await extractTarGz(good, unpacked);
  const manifest = JSON.parse(await Deno.readTextFile(join(unpacked, "comfydock-bundle.json")));
  const entries: RawEntry[] = [];
  for (const rel of await listFiles(unpacked)) {
    if (rel !== "comfydock-bundle.json") {
      entries.push({ name: rel, data: await Deno.readFile(join(unpacked, rel)) });
    }
  }
  for (const [name, data] of Object.entries(extra)) {
    entries.push({ name, data });
    manifest.files.push({ path: name, size: new TextEncoder().encode(data).length, sha256: sha256Hex(data) });
  }
  const file = join(dir, "hostile.tar.gz");
  await Deno.writeFile(
    file,
    rawTarGz([{ name: "comfydock-bundle.json", data: JSON.stringify(manifest) }, ...entries]),
  );
  await cli(["delete", "src", "--force"], { env });
  // Gone from this machine: an import has to use the bundled copy of the dev node.
  await Deno.remove(dev, { recursive: true });
  return { file, env };
}

for (const where of ["cec/", "dev_nodes/my-dev/"]) {
  Deno.test(`hostile git config: a bundle with ${where}.git is refused, nothing imported`, async () => {
    await withTempDir(async (dir) => {
      const canary = join(dir, "canary-bundle");
      const extra = Object.fromEntries(
        Object.entries(hostileGitFiles(canary)).map(([k, v]) => [`${where}${k}`, v]),
      );
      const { file, env } = await hostileBundle(dir, extra);
      const r = await cli(["import", file, "--name", "imp", "--yes"], { env });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, new RegExp(`${where.replaceAll("/", "\\/")}\\.git`));
      const imported = envPaths(workspacePaths(env.COMFYDOCK_HOME), "imp");
      await assertNoCanary(canary, "import");
      for (const args of READERS) {
        await cli([...args, "-e", "imp"], { env });
        await assertNoCanary(canary, args.join(" "));
      }
      assert.equal(await exists(imported.root), false, "no environment was created");
    });
  });
}
