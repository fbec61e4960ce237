import assert from "node:assert/strict";
import { join } from "node:path";
import { buildComfyUIRepo, type ComfyUIRepo } from "../../fixtures/comfyui_repo.ts";
import * as git from "../../providers/git/git.ts";
import { comfyuiProvider, observeComfyUI } from "../../providers/comfyui/provider.ts";
import { mirrorDir } from "../../providers/comfyui/mirror.ts";
import { requirementsAt, resolveComfyUI } from "../../providers/comfyui/resolve.ts";
import { applyPlan, makePlan } from "../../reconcile/engine.ts";
import { renderPyproject } from "../../workspace/new_cec.ts";
import { type EnvPaths, envPaths, type WorkspacePaths, workspacePaths } from "../../reconcile/paths.ts";
import { initWorkspace } from "../../workspace/workspace.ts";
import { testSettings } from "../../fixtures/app.ts";
import { tempRoot } from "../../fixtures/tmp.ts";

// One fixture repository for the whole file (fast tests); each test gets its own workspace.
const root = await tempRoot("comfydock-comfyui-");
const repo: ComfyUIRepo = await buildComfyUIRepo(join(root, "ComfyUI-upstream"));
let n = 0;

async function freshWorkspace(): Promise<WorkspacePaths> {
  const dir = join(root, `ws${n++}`);
  await initWorkspace(dir);
  return workspacePaths(dir);
}

async function envPinnedAt(ws: WorkspacePaths, tag: string): Promise<EnvPaths> {
  const paths = envPaths(ws, "e");
  await Deno.mkdir(paths.cec, { recursive: true });
  await Deno.writeTextFile(
    paths.pyproject,
    renderPyproject({
      name: "e",
      pythonVersion: "3.11",
      dependencies: [],
      comfyuiVersion: tag,
      comfyuiCommit: repo.tags[tag],
      comfyuiUrl: repo.url,
    }),
  );
  await git.init(paths.cec);
  await git.commit(paths.cec, "pin");
  return paths;
}

async function pin(paths: EnvPaths, tag: string): Promise<void> {
  const text = await Deno.readTextFile(paths.pyproject);
  await Deno.writeTextFile(
    paths.pyproject,
    text.replace(/comfyui_version = ".*"/, `comfyui_version = "${tag}"`)
      .replace(/comfyui_commit = ".*"/, `comfyui_commit = "${repo.tags[tag]}"`),
  );
}

const opts = { providers: [comfyuiProvider], settings: testSettings() };

Deno.test("resolve: latest = v0.10.0 (semver), tags with or without v, commit prefixes, unknown versions", async () => {
  const ws = await freshWorkspace();
  const latest = await resolveComfyUI(ws, repo.url, "latest");
  assert.equal(latest.version, "v0.10.0");
  assert.equal(latest.commit, repo.tags["v0.10.0"]);
  assert.equal((await resolveComfyUI(ws, repo.url, "0.2.0")).commit, repo.tags["v0.2.0"]);
  const byPrefix = await resolveComfyUI(ws, repo.url, repo.tags["v0.1.0"].slice(0, 8));
  assert.deepEqual([byPrefix.commit, byPrefix.version], [repo.tags["v0.1.0"], "v0.1.0"]);
  const head = await resolveComfyUI(ws, repo.url, repo.head);
  assert.equal(head.version, repo.head.slice(0, 7)); // untagged: short sha
  assert.equal((await resolveComfyUI(ws, repo.url, "v0.11.0-rc1")).commit, repo.tags["v0.11.0-rc1"]);
  await assert.rejects(
    resolveComfyUI(ws, repo.url, "v9.9.9"),
    (e: Error & { code?: string; hint?: string }) => {
      assert.equal(e.code, "COMFYUI_VERSION_UNKNOWN");
      assert.match(e.message, /'v9\.9\.9' was not found/);
      assert.match(e.hint!, /newest releases: v0\.10\.0, v0\.2\.0, v0\.1\.0/);
      return true;
    },
  );
  assert.deepEqual(await requirementsAt(latest.mirror, latest.commit), ["alpha", "beta>=2"]);
});

Deno.test("mirror: cloned once, then pinned versions resolve without the upstream", async () => {
  const ws = await freshWorkspace();
  // Half clones of a killed process are swept by the next clone; one of a running process is not.
  const dead = `${mirrorDir(ws, "/elsewhere")}.tmp-4194000-deadbeef`;
  const live = `${mirrorDir(ws, "/elsewhere")}.tmp-${Deno.pid}-cafef00d`;
  for (const d of [dead, live]) await Deno.mkdir(d, { recursive: true });
  const first = await resolveComfyUI(ws, repo.url, "v0.1.0");
  assert.equal(first.mirror.cloned, true);
  assert.equal(first.mirror.dir, mirrorDir(ws, repo.url));
  assert.deepEqual(
    (await Array.fromAsync(Deno.readDir(ws.gitMirrors))).map((e) => e.name).sort(),
    [first.mirror.dir, live].map((d) => d.slice(ws.gitMirrors.length + 1)).sort(),
  );
  // Hide the upstream: a tag already in the mirror still resolves; 'latest' warns and uses the cache.
  const hidden = `${repo.url}.away`;
  await Deno.rename(repo.url, hidden);
  try {
    const again = await resolveComfyUI(ws, repo.url, "v0.2.0");
    assert.equal(again.mirror.cloned, false);
    assert.equal(again.commit, repo.tags["v0.2.0"]);
    assert.deepEqual(again.warnings, []);
    const offline = await resolveComfyUI(ws, repo.url, "latest");
    assert.equal(offline.version, "v0.10.0");
    assert.match(offline.warnings.join(), /could not refresh the ComfyUI mirror/);
  } finally {
    await Deno.rename(hidden, repo.url);
  }
});

Deno.test("provider: create from the mirror, update in place keeping user files, idempotent, undo", async () => {
  const ws = await freshWorkspace();
  const paths = await envPinnedAt(ws, "v0.1.0");
  let { plan } = await makePlan(paths, opts);
  assert.deepEqual(plan.actions.map((a) => [a.address, a.kind, a.reason]), [[
    "comfyui",
    "create",
    "not installed",
  ]]);
  await applyPlan(paths, plan, opts);
  let o = await observeComfyUI(paths.comfyui);
  assert.deepEqual([o.commit, o.tag, o.edits], [repo.tags["v0.1.0"], "v0.1.0", []]);
  assert.equal((await git.git(paths.comfyui, ["remote", "get-url", "origin"])).stdout.trim(), repo.url);
  assert.equal((await makePlan(paths, opts)).plan.actions.length, 0); // converged

  // The user's data in ComfyUI's folders, including a file git would like to own.
  const model = join(paths.models, "checkpoints", "mine.safetensors");
  await Deno.writeTextFile(model, "weights");
  await Deno.mkdir(join(paths.userWorkflows), { recursive: true });
  await Deno.writeTextFile(join(paths.userWorkflows, "w.json"), "{}");
  await Deno.mkdir(join(paths.customNodes, "my-node"), { recursive: true });
  await Deno.writeTextFile(join(paths.customNodes, "my-node", "__init__.py"), "");

  await pin(paths, "v0.10.0");
  ({ plan } = await makePlan(paths, opts));
  assert.equal(plan.actions[0].kind, "update");
  assert.equal(
    plan.actions[0].reason,
    `at ${repo.tags["v0.1.0"].slice(0, 7)} (v0.1.0), want ${repo.tags["v0.10.0"].slice(0, 7)} (v0.10.0)`,
  );
  await applyPlan(paths, plan, opts);
  o = await observeComfyUI(paths.comfyui);
  assert.deepEqual([o.commit, o.tag], [repo.tags["v0.10.0"], "v0.10.0"]);
  assert.equal(await Deno.readTextFile(model), "weights");
  assert.equal(await Deno.readTextFile(join(paths.userWorkflows, "w.json")), "{}");
  assert.ok((await Deno.stat(join(paths.customNodes, "my-node", "__init__.py"))).isFile);
  assert.match(await Deno.readTextFile(join(paths.comfyui, "requirements.txt")), /beta>=2/);

  // A failing apply later in the same plan rolls the checkout back (custom undo).
  await pin(paths, "v0.2.0");
  ({ plan } = await makePlan(paths, opts));
  const failing = {
    ...comfyuiProvider,
    apply: async (...args: Parameters<typeof comfyuiProvider.apply>) => {
      await comfyuiProvider.apply(...args);
      throw new Error("boom after checkout");
    },
  };
  await assert.rejects(applyPlan(paths, plan, { providers: [failing], settings: testSettings() }), /boom/);
  assert.equal((await observeComfyUI(paths.comfyui)).commit, repo.tags["v0.10.0"]);
  assert.equal(await Deno.readTextFile(model), "weights");

  // Going back to a commit the checkout already has needs neither the mirror nor the upstream.
  await Deno.remove(mirrorDir(ws, repo.url), { recursive: true });
  await pin(paths, "v0.1.0");
  await applyPlan(paths, (await makePlan(paths, opts)).plan, opts);
  assert.equal((await observeComfyUI(paths.comfyui)).commit, repo.tags["v0.1.0"]);
  await assert.rejects(Deno.stat(mirrorDir(ws, repo.url)), Deno.errors.NotFound);
  assert.equal(await Deno.readTextFile(model), "weights");
});

Deno.test("provider: hand edits are never reset: plan notes them, apply refuses, nothing changes", async () => {
  const ws = await freshWorkspace();
  const paths = await envPinnedAt(ws, "v0.1.0");
  await applyPlan(paths, (await makePlan(paths, opts)).plan, opts);
  await Deno.writeTextFile(join(paths.comfyui, "main.py"), "# my hack\n");
  let { plan } = await makePlan(paths, opts);
  assert.deepEqual(plan.actions, []);
  assert.match(plan.notes.join("\n"), /edited by hand \(main\.py\)/);
  await pin(paths, "v0.2.0");
  ({ plan } = await makePlan(paths, opts));
  await assert.rejects(applyPlan(paths, plan, opts), /has local edits to tracked files: main\.py/);
  assert.equal(await Deno.readTextFile(join(paths.comfyui, "main.py")), "# my hack\n");
  assert.equal((await observeComfyUI(paths.comfyui)).commit, repo.tags["v0.1.0"]);
});

Deno.test("provider: a ComfyUI folder without .git is left alone with a clear error", async () => {
  const ws = await freshWorkspace();
  const paths = await envPinnedAt(ws, "v0.1.0");
  await Deno.mkdir(join(paths.models, "checkpoints"), { recursive: true });
  await Deno.writeTextFile(join(paths.models, "checkpoints", "x.safetensors"), "w");
  const { plan } = await makePlan(paths, opts);
  assert.equal(plan.actions[0].kind, "replace");
  await assert.rejects(applyPlan(paths, plan, opts), /not a git checkout/);
  assert.equal(await Deno.readTextFile(join(paths.models, "checkpoints", "x.safetensors")), "w");
});
