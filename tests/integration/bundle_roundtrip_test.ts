/**
 * Round trips: the tar code against itself and GNU tar; an environment exported and extracted byte for
 * byte; exported A imported as B (built by the real comfyui provider from a local ComfyUI repo) has the
 * same desired state and an empty plan; the GitOps path (import a .cec repo, pull, push).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { run } from "../../lib/proc.ts";
import { exists } from "../../lib/fsx.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { readTree, writeCec } from "../../fixtures/bundle_archives.ts";
import { sha256Hex } from "../../lib/fsx.ts";
import { buildComfyUIRepo } from "../../fixtures/comfyui_repo.ts";
import { extractTarGz, writeTarGz } from "../../providers/bundles/archive.ts";
import { BundleManager } from "../../providers/bundles/bundle.ts";
import { importEnvironment, pullCec, pushCec } from "../../workspace/import.ts";
import { commit, git, init } from "../../providers/git/git.ts";
import { comfyuiProvider } from "../../providers/comfyui/provider.ts";
import { workflowProvider } from "../../providers/workflows/provider.ts";
import { makePlan } from "../../reconcile/engine.ts";
import { readDesired } from "../../reconcile/desired.ts";
import { envPaths, type WorkspacePaths, workspacePaths } from "../../reconcile/paths.ts";
import { listEnvironments } from "../../workspace/workspace.ts";
import { testApp, testSettings } from "../../fixtures/app.ts";
import type { Plan } from "../../reconcile/types.ts";
import { withSession } from "../../workspace/session.ts";

const GIT_ENV = { GIT_CONFIG_GLOBAL: "/dev/null", GIT_CONFIG_NOSYSTEM: "1" };
// Tests never read the user's git config; commits use the wrapper's fallback identity.
Deno.env.set("GIT_CONFIG_GLOBAL", "/dev/null");

/** The real providers that need no network or uv: ComfyUI checkout (from a local repo) and workflows. */
const PROVIDERS = [comfyuiProvider, workflowProvider];
const MODEL = new Uint8Array(100_000).map((_, i) => (i * 40503) >>> 8);

async function makeWorkspace(root: string): Promise<WorkspacePaths> {
  const ws = workspacePaths(root);
  await Deno.mkdir(ws.environments, { recursive: true });
  await Deno.mkdir(ws.metadata, { recursive: true });
  await Deno.writeTextFile(ws.workspaceJson, '{"version":1,"active_environment":null}');
  return ws;
}

Deno.test("archive: ustar/pax writer and reader agree, and both interoperate with GNU tar", async () => {
  await withTempDir(async (dir) => {
    const random = crypto.getRandomValues(new Uint8Array(65536));
    const long = `cec/${"deep/".repeat(30)}wörkflow ✓.json`; // > 100 bytes: ustar prefix or pax path
    const veryLong = `cec/${"x".repeat(180)}/${"y".repeat(120)}.json`; // fits no ustar split: pax path
    const entries = [
      { path: "a.txt", data: new TextEncoder().encode("hello\n") },
      { path: "empty", data: new Uint8Array(0) },
      { path: "bin/random.bin", data: random },
      { path: long, data: new TextEncoder().encode("{}") },
      { path: veryLong, data: new TextEncoder().encode("[]") },
      { path: "exact512", data: new Uint8Array(512).fill(7) },
    ];
    const out = join(dir, "t.tar.gz");
    const progress: number[] = [];
    await writeTarGz(out, entries, { onProgress: (done) => progress.push(done) });
    assert.equal(progress.at(-1), entries.reduce((n, e) => n + e.data.length, 0));
    const files = await extractTarGz(out, join(dir, "x"));
    assert.deepEqual(files.map((f) => f.path), entries.map((e) => e.path));
    for (const e of entries) {
      assert.deepEqual(await Deno.readFile(join(dir, "x", e.path)), e.data, e.path);
      assert.equal(files.find((f) => f.path === e.path)!.sha256, sha256Hex(e.data));
    }
    // GNU tar reads what we write...
    const listed = (await run("tar", ["-tzf", out])).stdout.trim().split("\n");
    assert.deepEqual(listed, entries.map((e) => e.path));
    // ...and we read what GNU tar writes (its default format uses 'L' long-name entries and directories).
    const gnu = join(dir, "gnu.tar.gz");
    await run("tar", ["-czf", gnu, "-C", join(dir, "x"), "."]);
    const back = await extractTarGz(gnu, join(dir, "y"));
    assert.equal(back.length, entries.length);
    assert.deepEqual(await readTree(join(dir, "y")), await readTree(join(dir, "x")));
    // Nothing is left besides what was asked for (no .part files).
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(), [
      "gnu.tar.gz",
      "t.tar.gz",
      "x",
      "y",
    ]);
  });
});

Deno.test("archive: staging dir must be new; a failed write leaves no output file", async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, "t.tar.gz");
    await writeTarGz(out, [{ path: "a", data: new Uint8Array([1]) }]);
    await Deno.mkdir(join(dir, "taken"));
    await Deno.writeTextFile(join(dir, "taken", "keep"), "mine");
    await assert.rejects(extractTarGz(out, join(dir, "taken")), /BUNDLE_STAGING|cannot create staging dir/);
    assert.equal(await Deno.readTextFile(join(dir, "taken", "keep")), "mine");
    // A source file that shrinks between listing and packing: refused, and no partial bundle remains.
    await Deno.writeTextFile(join(dir, "src"), "abc");
    await assert.rejects(
      writeTarGz(join(dir, "bad.tar.gz"), [{ path: "src", file: join(dir, "src"), size: 10 }]),
      {
        code: "BUNDLE_SOURCE_CHANGED",
      },
    );
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(), [
      "src",
      "t.tar.gz",
      "taken",
    ]);
    await assert.rejects(writeTarGz(join(dir, "p.tar.gz"), [{ path: "../x", data: new Uint8Array() }]), {
      code: "BUNDLE_BAD_PATH",
    });
  });
});

Deno.test("environment bundle: .cec, dev nodes and models round-trip byte-identical", async () => {
  await withTempDir(async (dir) => {
    const ws = await makeWorkspace(join(dir, "ws"));
    const a = envPaths(ws, "alpha");
    const modelBytes = new Uint8Array(300_000).map((_, i) => (i * 2654435761) >>> 24);
    const extra = `
[tool.comfydock.nodes.my-dev-node]
source = "dev"
path = "ComfyUI/custom_nodes/my-dev-node"

[tool.comfydock.models.tiny]
sha256 = "${sha256Hex(modelBytes)}"
size = ${modelBytes.length}
category = "loras"
filename = "tiny.safetensors"

[tool.comfydock.models.absent]
sha256 = "${"ab".repeat(32)}"
category = "vae"
filename = "absent.safetensors"
`;
    await writeCec(a.cec, "alpha", { extra });
    await init(a.cec);
    await commit(a.cec, "init");
    const node = join(a.customNodes, "my-dev-node");
    await Deno.mkdir(join(node, "__pycache__"), { recursive: true });
    await Deno.mkdir(join(node, ".git"), { recursive: true });
    await Deno.writeTextFile(join(node, "__init__.py"), "NODE_CLASS_MAPPINGS = {}\n");
    await Deno.writeTextFile(join(node, "__pycache__", "x.pyc"), "cache");
    await Deno.writeTextFile(join(node, ".git", "HEAD"), "ref: refs/heads/main\n");
    await Deno.mkdir(join(a.models, "loras"), { recursive: true });
    await Deno.writeFile(join(a.models, "loras", "tiny.safetensors"), modelBytes);

    const bm = new BundleManager();
    const out = join(dir, "alpha.tar.gz");
    let last = 0;
    const res = await bm.createEnvBundle(a, {
      out,
      withDevNodes: true,
      withModels: true,
      onProgress: (done) => (last = done),
    });
    assert.equal(res.manifest.kind, "environment");
    assert.equal(res.manifest.source_environment, "alpha");
    assert.equal(res.manifest.tool.version, "0.1.0");
    assert.ok(last >= modelBytes.length, "progress reached the end");
    assert.deepEqual(res.skipped.length, 1);
    assert.match(res.skipped[0], /model 'absent'/);
    assert.deepEqual(res.manifest.files.map((f) => f.path), [
      "cec/.comfydockignore",
      "cec/pyproject.toml",
      "cec/uv.lock",
      "cec/workflows/a.json",
      "cec/workflows/sub/b.json",
      "dev_nodes/my-dev-node/__init__.py",
      "models/loras/tiny.safetensors",
    ]);

    const info = await bm.extractBundle(out, join(dir, "staging"));
    assert.deepEqual(
      await readTree(join(dir, "staging", "cec")),
      await readTree(a.cec, (rel) => rel === ".git"),
    );
    assert.deepEqual(
      await Deno.readFile(join(dir, "staging", "models", "loras", "tiny.safetensors")),
      modelBytes,
    );
    assert.equal(info.files.length, 7);

    // Same .cec -> same bytes: bundles are reproducible apart from created_at.
    const plain1 = await bm.createEnvBundle(a, { out: join(dir, "p1.tar.gz") });
    const plain2 = await bm.createEnvBundle(a, { out: join(dir, "p2.tar.gz") });
    assert.deepEqual(plain1.manifest.files, plain2.manifest.files);
    assert.ok(
      plain1.manifest.files.every((f) => f.path.startsWith("cec/")),
      "no dev nodes/models unless asked",
    );
    const v = await bm.validateBundle(join(dir, "p1.tar.gz"));
    assert.ok(v.valid);
  });
});

Deno.test("import: A exported and imported as B has A's desired state, and B's plan is empty", async () => {
  await withTempDir(async (dir) => {
    const repo = await buildComfyUIRepo(join(dir, "comfyui-repo"));
    const ws = await makeWorkspace(join(dir, "ws"));
    const a = envPaths(ws, "alpha");
    const extra = `
[tool.comfydock.nodes.my-dev-node]
source = "dev"
path = "ComfyUI/custom_nodes/my-dev-node"

[tool.comfydock.models.packed]
sha256 = "${sha256Hex(MODEL)}"
size = ${MODEL.length}
category = "loras"
filename = "packed.safetensors"

[tool.comfydock.models.unsourced]
name = "Private LoRA"
sha256 = "${"cd".repeat(32)}"
size = 1234
category = "loras"
filename = "private.safetensors"
`;
    await writeCec(a.cec, "alpha", { commit: repo.tags["v0.1.0"], url: repo.url, extra });
    await init(a.cec);
    await commit(a.cec, "init");
    await Deno.mkdir(join(a.customNodes, "my-dev-node"), { recursive: true });
    await Deno.writeTextFile(join(a.customNodes, "my-dev-node", "__init__.py"), "# dev\n");
    await Deno.mkdir(join(a.models, "loras"), { recursive: true });
    await Deno.writeFile(join(a.models, "loras", "packed.safetensors"), MODEL);

    const out = join(dir, "alpha.tar.gz");
    await new BundleManager().createEnvBundle(a, { out, withDevNodes: true, withModels: true });
    const plans: number[] = [];
    const app = testApp(ws, {
      providers: PROVIDERS,
      showPlan: (plan) => plans.push(plan.actions.length),
    });
    const res = await importEnvironment(app, out, { name: "beta" });
    assert.equal(res.environment, "beta");
    assert.equal(res.built, true);
    // Round 1 builds ComfyUI (dev nodes and models go inside it), round 2 the rest (the tracked workflow).
    assert.deepEqual(plans, [1, 1]);
    assert.equal(res.applied, 2);
    assert.deepEqual(res.devNodes, ["my-dev-node"]);
    assert.deepEqual(res.modelsPlaced, ["loras/packed.safetensors"]);
    assert.deepEqual(res.missingModels.map((m) => [m.key, m.sha256, m.size]), [[
      "unsourced",
      "cd".repeat(32),
      1234,
    ]]);
    assert.match(res.missingModels[0].hint, /comfydock model add PATH --key unsourced/);

    const b = envPaths(ws, "beta");
    const [da, db] = [await readDesired(a), await readDesired(b)];
    assert.equal(db.pyprojectText, da.pyprojectText);
    assert.equal(db.lockText, da.lockText);
    assert.deepEqual(db.workflowFiles, da.workflowFiles);
    assert.equal(db.fingerprint, da.fingerprint);
    const { plan } = await makePlan(b, { providers: PROVIDERS, settings: testSettings() });
    assert.deepEqual(plan.actions, []);
    assert.equal(
      (await git(join(b.comfyui), ["rev-parse", "HEAD"])).stdout.trim(),
      repo.tags["v0.1.0"],
    );
    assert.equal(await Deno.readTextFile(join(b.customNodes, "my-dev-node", "__init__.py")), "# dev\n");
    assert.deepEqual(await Deno.readFile(join(b.models, "loras", "packed.safetensors")), MODEL);
    assert.equal(
      await Deno.readTextFile(join(b.userWorkflows, "a.json")),
      await Deno.readTextFile(join(a.cecWorkflows, "a.json")),
    );
    assert.equal((await git(b.cec, ["status", "--porcelain"])).stdout, "", ".cec is committed");
    assert.equal(await exists(join(ws.metadata, "staging")), false, "staging cleaned up");

    // Same name again: refused, and the existing environment is untouched.
    const before = await readTree(b.root);
    await assert.rejects(
      importEnvironment(testApp(ws, { providers: [comfyuiProvider] }), out, { name: "beta" }),
      {
        code: "ENV_EXISTS",
      },
    );
    assert.deepEqual(await readTree(b.root), before);
    await assert.rejects(importEnvironment(testApp(ws, { providers: [] }), out, { name: "../evil" }), {
      code: "INVALID_ENV_NAME",
    });
  });
});

Deno.test("import: built under a staging name (not listed), renamed at the end; dev node modes kept; logged", async () => {
  await withTempDir(async (dir) => {
    const repo = await buildComfyUIRepo(join(dir, "comfyui-repo"));
    const ws = await makeWorkspace(join(dir, "ws"));
    const a = envPaths(ws, "alpha");
    const extra = `
[tool.comfydock.nodes.tool-node]
source = "dev"
path = "ComfyUI/custom_nodes/tool-node"
`;
    await writeCec(a.cec, "alpha", { commit: repo.tags["v0.1.0"], url: repo.url, extra });
    await init(a.cec);
    await commit(a.cec, "init");
    const node = join(a.customNodes, "tool-node");
    await Deno.mkdir(join(node, "bin"), { recursive: true });
    const modes: Record<string, number> = { "__init__.py": 0o644, "install.sh": 0o755, "bin/tool": 0o700 };
    for (const [rel, mode] of Object.entries(modes)) {
      await Deno.writeTextFile(join(node, rel), `# ${rel}\n`);
      await Deno.chmod(join(node, rel), mode);
    }
    const out = join(dir, "alpha.tar.gz");
    await new BundleManager().createEnvBundle(a, { out, withDevNodes: true });
    // GNU tar sees the execute bits in the archive (only 0755/0644 travel).
    const listing = (await run("tar", ["-tvzf", out])).stdout;
    assert.match(listing, /^-rwxr-xr-x .* dev_nodes\/tool-node\/install\.sh$/m);
    assert.match(listing, /^-rwxr-xr-x .* dev_nodes\/tool-node\/bin\/tool$/m);
    assert.match(listing, /^-rw-r--r-- .* dev_nodes\/tool-node\/__init__\.py$/m);

    const during: string[][] = [];
    const shown: Plan[] = [];
    const app = testApp(ws, {
      providers: PROVIDERS,
      showPlan: (plan) => shown.push(plan),
      confirm: async () => {
        assert.equal(shown.at(-1)?.environment, "beta"); // shown under its final name
        const dirs = (await Array.fromAsync(Deno.readDir(ws.environments))).map((e) => e.name);
        during.push(dirs, (await listEnvironments(ws)).map((e) => e.name));
        return true;
      },
    });
    const res = await importEnvironment(app, out, { name: "beta" });
    assert.equal(res.built, true);
    // While it was being built: only a staging dir, which `list` does not show.
    assert.ok(during.length > 0);
    assert.ok(during[0].some((d) => /^\.staging-beta-\d+-[0-9a-f]{8}$/.test(d)), during[0].join());
    assert.ok(!during[0].includes("beta"));
    assert.deepEqual(during[1], ["alpha"]);
    assert.deepEqual((await Array.fromAsync(Deno.readDir(ws.environments))).map((e) => e.name).sort(), [
      "alpha",
      "beta",
    ]);
    const b = envPaths(ws, "beta");
    for (const [rel, mode] of Object.entries(modes)) {
      const want = mode & 0o111 ? 0o755 : 0o644;
      assert.equal((await Deno.stat(join(b.customNodes, "tool-node", rel))).mode! & 0o777, want, rel);
    }
    const ran = await new Deno.Command("sh", { args: [join(b.customNodes, "tool-node", "install.sh")] })
      .output();
    assert.equal(ran.code, 0);
    assert.deepEqual(
      (await makePlan(b, { providers: PROVIDERS, settings: testSettings() })).plan.actions,
      [],
    );
    const envLog = await Deno.readTextFile(join(ws.logs, "beta.log"));
    assert.match(envLog, /\] import: bundle .*alpha\.tar\.gz \(environment 'alpha', comfydock /);
    assert.match(envLog, /^ {2}applied: 2 action\(s\)\n {4}\+ comfyui: not installed\n {4}\+ workflow\.a: /m);
    assert.match(envLog, /^ {2}\.cec commit \w{12} .*: Import from bundle alpha\.tar\.gz/m);
  });
});

Deno.test("import: a failing build removes the half-made environment", async () => {
  await withTempDir(async (dir) => {
    const ws = await makeWorkspace(join(dir, "ws"));
    const a = envPaths(ws, "alpha");
    // ComfyUI URL that does not exist: the comfyui action fails during apply.
    await writeCec(a.cec, "alpha", { url: join(dir, "no-such-repo") });
    const out = join(dir, "alpha.tar.gz");
    await new BundleManager().createEnvBundle(a, { out });
    await assert.rejects(
      importEnvironment(testApp(ws, { providers: [comfyuiProvider] }), out, { name: "gamma" }),
      (e) => {
        assert.match(String(e), /no-such-repo/);
        return true;
      },
    );
    assert.equal(await exists(envPaths(ws, "gamma").root), false);
    assert.equal(await exists(join(ws.metadata, "staging")), false);
  });
});

Deno.test("gitops: import a .cec repo (path and URL), then pull and push through plain git", async () => {
  await withTempDir(async (dir) => {
    const ws = await makeWorkspace(join(dir, "ws"));
    const upstream = join(dir, "team-env");
    await writeCec(join(upstream, ".cec"), "team");
    await init(join(upstream, ".cec"));
    await commit(join(upstream, ".cec"), "init");

    // A local path to an environment dir: its .cec becomes a clone, named after project.name.
    const viaPath = await importEnvironment(testApp(ws, { providers: [] }), upstream);
    assert.equal(viaPath.environment, "team");
    assert.equal(viaPath.source.type, "git");
    const team = envPaths(ws, "team");
    assert.equal(
      (await git(team.cec, ["remote", "get-url", "origin"])).stdout.trim(),
      await Deno.realPath(join(upstream, ".cec")),
    );

    // A bare remote over file://: pull brings new commits, push publishes ours.
    const bare = join(dir, "remote.git");
    await git(null, ["clone", "--quiet", "--bare", join(upstream, ".cec"), bare], { env: GIT_ENV });
    const r = await importEnvironment(testApp(ws, { providers: [] }), `file://${bare}`, { name: "mirror" });
    assert.equal(r.source.type === "git" && r.source.commit !== null, true);
    const mirror = envPaths(ws, "mirror");

    // Someone else pushes a workflow change.
    const other = join(dir, "other");
    await git(null, ["clone", "--quiet", bare, other], { env: GIT_ENV });
    await Deno.writeTextFile(join(other, "workflows", "a.json"), '{"nodes":[1]}');
    await commit(other, "change a");
    await git(other, ["push", "--quiet"], { env: GIT_ENV });
    const pull = (paths: typeof mirror) =>
      withSession(
        testApp(ws, { providers: [] }),
        paths,
        "pull",
        "write",
        (s) => pullCec(s, { apply: false }),
      );
    const pulled = await pull(mirror);
    assert.notEqual(pulled.before, pulled.after);
    assert.equal((await git(mirror.cec, ["rev-parse", "HEAD"])).stdout.trim(), pulled.after);
    assert.equal(await Deno.readTextFile(join(mirror.cecWorkflows, "a.json")), '{"nodes":[1]}');

    // We change and push; the other clone sees it.
    await Deno.writeTextFile(join(mirror.cecWorkflows, "c.json"), "{}");
    await commit(mirror.cec, "add c");
    const pushed = await pushCec(mirror);
    assert.equal(pushed.uncommitted, false);
    await git(other, ["pull", "--quiet", "--ff-only"], { env: GIT_ENV });
    assert.equal(await Deno.readTextFile(join(other, "workflows", "c.json")), "{}");

    // Without a remote (like a bundle-imported env): a clear error.
    await git(team.cec, ["remote", "remove", "origin"]);
    await assert.rejects(pushCec(team), { code: "NO_REMOTE" });
    await assert.rejects(pull(team), { code: "NO_REMOTE" });

    // Not a .cec repository.
    await Deno.mkdir(join(dir, "plain"));
    await assert.rejects(importEnvironment(testApp(ws, { providers: [] }), join(dir, "plain")), {
      code: "IMPORT_NOT_A_CEC_REPO",
    });
    await assert.rejects(importEnvironment(testApp(ws, { providers: [] }), join(dir, "nope.tar.gz")), {
      code: "IMPORT_SOURCE_NOT_FOUND",
    });
    await assert.rejects(
      importEnvironment(testApp(ws, { providers: [] }), `file://${join(dir, "missing.git")}`),
      {
        code: "IMPORT_CLONE_FAILED",
      },
    );
    assert.equal(await exists(join(ws.metadata, "staging")), false);
  });
});

Deno.test("workflow bundle: one workflow with its node and model specs; refused as an environment", async () => {
  await withTempDir(async (dir) => {
    const wf = join(dir, "portrait.json");
    await Deno.writeTextFile(wf, '{"nodes":[{"type":"KSampler"}]}');
    const bm = new BundleManager();
    const out = join(dir, "portrait.tar.gz");
    const res = await bm.createWorkflowBundle(wf, {
      nodes: { "cool-nodes": { source: "registry", version: "1.2.0" } },
      models: {
        sd: { sha256: "ef".repeat(32), category: "checkpoints", filename: "sd.safetensors", sources: [] },
      },
    }, { out, sourceEnvironment: "alpha" });
    assert.equal(res.manifest.kind, "workflow");
    const info = await bm.extractBundle(out, join(dir, "s"));
    assert.equal(info.manifest.workflow?.name, "portrait");
    assert.equal(info.manifest.workflow?.file, "workflows/portrait.json");
    assert.deepEqual(Object.keys(info.manifest.workflow?.nodes ?? {}), ["cool-nodes"]);
    assert.equal(
      await Deno.readTextFile(join(dir, "s", "workflows", "portrait.json")),
      await Deno.readTextFile(wf),
    );
    assert.equal(info.cecDir, null);
    const ws = await makeWorkspace(join(dir, "ws"));
    await assert.rejects(importEnvironment(testApp(ws, { providers: [] }), out), {
      code: "BUNDLE_WRONG_KIND",
    });
    assert.equal(await exists(join(ws.environments, "alpha")), false);
  });
});

Deno.test("import: leftovers of a killed import (dead pid) are cleaned up by the next one", async () => {
  await withTempDir(async (dir) => {
    const ws = await makeWorkspace(join(dir, "ws"));
    const a = envPaths(ws, "alpha");
    await writeCec(a.cec, "alpha");
    const out = join(dir, "alpha.tar.gz");
    await new BundleManager().createEnvBundle(a, { out });
    const deadPid = 4_194_000; // above any pid in use here
    const oldStaging = join(ws.metadata, "staging", `import-${deadPid}-deadbeef`);
    await Deno.mkdir(join(oldStaging, "cec"), { recursive: true });
    // A half-built environment of a killed import lives only under its staging name.
    const half = envPaths(ws, `.staging-zeta-${deadPid}-deadbeef`);
    await Deno.mkdir(half.cec, { recursive: true });
    await Deno.writeTextFile(half.pyproject, "half written");
    // A staging dir of a live process (this one) is never touched.
    const live = join(ws.environments, `.staging-other-${Deno.pid}-cafef00d`);
    await Deno.mkdir(live);

    const res = await importEnvironment(testApp(ws, { providers: [] }), out, { name: "zeta" });
    assert.equal(res.environment, "zeta");
    const zeta = envPaths(ws, "zeta");
    assert.equal(await Deno.readTextFile(zeta.pyproject), await Deno.readTextFile(a.pyproject));
    assert.equal(await exists(join(ws.metadata, "staging")), false);
    assert.equal(await exists(half.root), false);
    assert.equal(await exists(live), true);
    await Deno.remove(live);
    assert.deepEqual((await Array.fromAsync(Deno.readDir(ws.environments))).map((e) => e.name).sort(), [
      "alpha",
      "zeta",
    ]);
    // An existing environment is never touched.
    await assert.rejects(importEnvironment(testApp(ws, { providers: [] }), out, { name: "alpha" }), {
      code: "ENV_EXISTS",
    });
    assert.equal(await exists(a.pyproject), true);
  });
});
