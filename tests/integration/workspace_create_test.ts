import assert from "node:assert/strict";
import { join } from "node:path";
import { buildComfyUIRepo } from "../../fixtures/comfyui_repo.ts";
import { buildWheelhouse, STANDARD_WHEELS, wheelhouseUvConfig } from "../../fixtures/wheels.ts";
import { testPython, useLocalUv } from "../../fixtures/tools.ts";
import { CdError } from "../../lib/errors.ts";
import * as git from "../../providers/git/git.ts";
import { parsePyproject } from "../../reconcile/desired.ts";
import { acquireLock } from "../../reconcile/lock.ts";
import { createEnvironment } from "../../workspace/create.ts";
import { Environment, runComfyUI } from "../../workspace/environment.ts";
import { comfyuiProvider } from "../../providers/comfyui/provider.ts";
import { envPaths, workspacePaths } from "../../reconcile/paths.ts";
import { envLogPath } from "../../workspace/env_log.ts";
import { recordingProgress, testApp } from "../../fixtures/app.ts";
import {
  deleteEnvironment,
  getActiveEnvironment,
  initWorkspace,
  listEnvironments,
  readWorkspaceMeta,
  setActiveEnvironment,
} from "../../workspace/workspace.ts";
import { tempRoot } from "../../fixtures/tmp.ts";

await useLocalUv();

const root = await tempRoot("comfydock-create-");
const repo = await buildComfyUIRepo(join(root, "upstream"));
const wheels = await buildWheelhouse(join(root, "wheels"), STANDARD_WHEELS);
const emptyWheels = await buildWheelhouse(join(root, "no-wheels"), []);
const ws = workspacePaths(join(root, "ws"));
await initWorkspace(ws.root);
const app = testApp(ws);
/** Only the ComfyUI checkout is planned and applied (no uv sync) where a test checks ComfyUI alone. */
const comfyuiOnly = testApp(ws, { providers: [comfyuiProvider] });
const PY = await testPython();
const base = {
  comfyuiUrl: repo.url,
  python: PY.minor,
  torchBackend: "cpu",
  uvSettings: wheelhouseUvConfig(wheels),
};

/** Everything a failed create must leave exactly as it was. */
async function snapshot(): Promise<string> {
  const envs = (await Array.fromAsync(Deno.readDir(ws.environments))).map((e) => e.name).sort();
  return JSON.stringify([envs, await Deno.readTextFile(ws.workspaceJson)]);
}

Deno.test("init on an existing workspace is safe: says so, keeps workspace.json", async () => {
  const before = await Deno.readTextFile(ws.workspaceJson);
  assert.deepEqual(await initWorkspace(ws.root), { root: ws.root, created: false });
  assert.equal(await Deno.readTextFile(ws.workspaceJson), before);
  for (const d of [ws.metadata, ws.cache, ws.environments, ws.logs, ws.uvCache]) {
    assert.ok((await Deno.stat(d)).isDirectory);
  }
});

Deno.test("create: ComfyUI at latest, .cec committed, venv with ComfyUI's requirements, first env active", async () => {
  const { progress, tasks } = recordingProgress();
  const env = await createEnvironment(testApp(ws, { progress }), "first", base);
  const paths = envPaths(ws, "first");
  // The tools' output was streamed into progress tasks, not swallowed: the mirror's first clone (git's
  // meters), uv lock, and the build's uv sync (run by the engine) with uv's summary as the closing line.
  const task = (re: RegExp) => tasks.find((t) => re.test(t.label));
  const clone = task(/^cloning /);
  assert.ok(clone?.details.some((l) => /^Cloning into bare repository/.test(l)), JSON.stringify(clone));
  assert.equal(clone?.end?.status, "done");
  assert.match(task(/uv lock/)?.end?.text ?? "", /Resolved \d+ packages? in/);
  const sync = task(/uv sync/);
  assert.match(sync?.end?.text ?? "", /Installed \d+ packages? in/);
  assert.ok(sync?.details.some((l) => /^\+ alpha==2\.0\.0/.test(l)), JSON.stringify(sync));
  // logs/first.log: the create, with the .cec commit it made.
  const envLog = await Deno.readTextFile(envLogPath(ws, "first"));
  assert.match(
    envLog,
    new RegExp(
      `^\\[[-\\d]{10} [:\\d]{8} UTC\\] create: ComfyUI v0\\.10\\.0, Python ${
        PY.version.replaceAll(".", "\\.")
      }$`,
      "m",
    ),
  );
  assert.match(
    envLog,
    new RegExp(`^  \\.cec commit ${env.cec_commit.slice(0, 12)} .*: Create environment first`, "m"),
  );
  assert.match(envLog, new RegExp(`^  \\.cec HEAD ${env.cec_commit}$`, "m"));
  assert.deepEqual(
    [env.comfyui_version, env.comfyui_commit, env.python_version, env.torch_backend, env.active],
    ["v0.10.0", repo.tags["v0.10.0"], PY.minor, "cpu", true],
  );
  const p = parsePyproject(await Deno.readTextFile(paths.pyproject), paths.pyproject);
  assert.deepEqual(p.project.dependencies, ["alpha", "beta>=2"]);
  assert.equal(p.tool.comfydock.comfyui_commit, repo.tags["v0.10.0"]);
  assert.equal(p.tool.comfydock.comfyui_url, repo.url);
  assert.ok(await Deno.readTextFile(paths.uvLock));
  assert.ok((await Deno.stat(paths.ignoreFile)).isFile);
  assert.ok((await Deno.stat(paths.cecWorkflows)).isDirectory);
  assert.ok((await Deno.stat(paths.userWorkflows)).isDirectory);
  const log = await git.log(paths.cec);
  assert.equal(log.length, 1);
  assert.equal(log[0].sha, env.cec_commit);
  assert.equal(await git.isDirty(paths.cec), false);
  assert.equal(await git.revParse(paths.comfyui, "HEAD"), repo.tags["v0.10.0"]);
  assert.equal((await getActiveEnvironment(ws))?.name, "first");

  // The venv works at its final path (it was built in staging): run main.py, args and exit code pass.
  const out = await new Deno.Command(join(paths.venv, "bin", "python"), {
    args: [join(paths.comfyui, "main.py"), "--listen", "x y", "--exit-code", "3"],
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 3);
  assert.match(stdout, /ComfyUI fixture args: \["--listen", "x y", "--exit-code", "3"\]/);
  assert.match(stdout, /import alpha 2\.0\.0/);
  assert.match(stdout, /import beta 2\.0\.0/);
  assert.equal(await runComfyUI(paths, ["--exit-code", "0"]), 0);

  // The seed's Environment object over the same environment: converged, nothing to commit.
  const e = await Environment.open(comfyuiOnly, "first");
  assert.equal((await e.log()).length, 1);
  assert.equal(await e.commit("nothing changed"), null);
  assert.deepEqual((await e.plan()).actions, []);
  assert.equal((await e.desired()).comfyui.commit, repo.tags["v0.10.0"]);
});

Deno.test("create: a second environment comes from the mirror, pinned to a tag; list/use", async () => {
  const env = await createEnvironment(app, "second", { ...base, comfyui: "v0.1.0" });
  assert.equal(env.comfyui_version, "v0.1.0");
  assert.equal(env.active, false); // 'first' stays active without --use
  assert.deepEqual(env.dependencies, ["alpha"]);
  const list = await listEnvironments(ws);
  assert.deepEqual(list.map((e) => [e.name, e.active, e.comfyui_version]), [
    ["first", true, "v0.10.0"],
    ["second", false, "v0.1.0"],
  ]);
  await setActiveEnvironment(ws, "second");
  assert.equal((await readWorkspaceMeta(ws)).active_environment, "second");
  await assert.rejects(setActiveEnvironment(ws, "nope"), /no environment 'nope'/);
  await assert.rejects(createEnvironment(app, "second", base), /already exists/);
});

Deno.test("comfyui update: new pin, ComfyUI requirements swapped (user's kept), .cec committed, applied", async () => {
  const paths = envPaths(ws, "second"); // at v0.1.0: dependencies = ["alpha"]
  const text = await Deno.readTextFile(paths.pyproject);
  await Deno.writeTextFile(
    paths.pyproject,
    text.replace('dependencies = [\n  "alpha",\n]', 'dependencies = [\n  "alpha",\n  "delta",\n]'),
  );
  await git.commit(paths.cec, "user adds delta");
  const env = new Environment(comfyuiOnly, paths);
  const r = await env.updateComfyUI("v0.2.0");
  assert.deepEqual(
    [r.from.version, r.to.version, r.accepted, r.applied.map((a) => a.address)],
    ["v0.1.0", "v0.2.0", true, ["comfyui"]],
  );
  assert.deepEqual(r.dependencies, { added: ["alpha>=1.1", "beta<2"], removed: ["alpha"] });
  const p = parsePyproject(await Deno.readTextFile(paths.pyproject), paths.pyproject);
  assert.deepEqual(p.project.dependencies, ["alpha>=1.1", "beta<2", "delta"]);
  assert.equal(p.tool.comfydock.comfyui_commit, repo.tags["v0.2.0"]);
  assert.equal((await git.log(paths.cec, { maxCount: 1 }))[0].message, "ComfyUI v0.1.0 -> v0.2.0");
  assert.equal(await git.revParse(paths.comfyui, "HEAD"), repo.tags["v0.2.0"]);
  // logs/second.log: the user's commit, then the update with its plan and result.
  const envLog = await Deno.readTextFile(envLogPath(ws, "second"));
  // The block is titled by the change's message (its .cec commit message).
  const block = envLog.slice(envLog.indexOf("] ComfyUI v0.1.0 -> v0.2.0: ok"));
  assert.match(block, /^\] ComfyUI v0\.1\.0 -> v0\.2\.0: ok$/m);
  assert.match(block, /^ {2}\.cec commit \w{12} .*: user adds delta$/m);
  assert.match(block, /^ {2}\.cec commit \w{12} .*: ComfyUI v0\.1\.0 -> v0\.2\.0$/m);
  assert.match(
    block,
    new RegExp(
      `^ {2}plan: 1 action\\(s\\)\n {4}~ comfyui: at \\w{7} \\(v0\\.1\\.0\\), want ${
        repo.tags["v0.2.0"].slice(0, 7)
      } \\(v0\\.2\\.0\\)$`,
      "m",
    ),
  );
  assert.match(block, /^ {2}result: 1 action\(s\) applied$/m);
  // A version that does not resolve with the rest of the requirements leaves .cec untouched.
  const before = await Deno.readTextFile(paths.pyproject);
  await Deno.writeTextFile(paths.pyproject, before.replace('"delta"', '"alpha<2"'));
  await git.commit(paths.cec, "user pins old alpha");
  const pinned = await Deno.readTextFile(paths.pyproject);
  assert.notEqual(pinned, before);
  await assert.rejects(env.updateComfyUI("latest"), /alpha/);
  assert.equal(await Deno.readTextFile(paths.pyproject), pinned);
  assert.equal(await git.isDirty(paths.cec), false);
});

Deno.test("create is atomic: bad tag, missing Python, uv failure and bad names leave the workspace as it was", async () => {
  const before = await snapshot();
  const cases: [Parameters<typeof createEnvironment>[2], string, RegExp][] = [
    [
      { ...base, comfyui: "v7.7.7" },
      "COMFYUI_VERSION_UNKNOWN",
      /failed at step "resolving ComfyUI 'v7\.7\.7'/,
    ],
    [
      { ...base, python: "3.99" },
      "PYTHON_NOT_FOUND",
      new RegExp(
        `failed at step "finding Python 3\\.99 and uv".*found: .*${PY.minor.replaceAll(".", "\\.")}`,
        "s",
      ),
    ],
    [
      { ...base, uvSettings: wheelhouseUvConfig(emptyWheels) },
      "UV_FAILED",
      /failed at step "locking 2 ComfyUI/,
    ],
    [{ ...base, torchBackend: "cuda-please" }, "TORCH_BACKEND_INVALID", /not a torch backend/],
    [
      { ...base, comfyuiUrl: join(root, "missing-repo") },
      "COMFYUI_CLONE_FAILED",
      /failed at step "resolving/,
    ],
  ];
  for (const [opts, code, re] of cases) {
    await assert.rejects(createEnvironment(app, "broken", opts), (e: unknown) => {
      assert.ok(e instanceof CdError, String(e));
      assert.equal(e.code, code);
      assert.match(e.message, re);
      return true;
    });
    assert.equal(await snapshot(), before, `workspace changed after ${code}`);
  }
  await assert.rejects(createEnvironment(app, "../escape", base), /path separator/);
  // An abort between steps (what Ctrl-C does) cleans up too.
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(
    createEnvironment(app, "aborted", { ...base, signal: controller.signal }),
    (e: unknown) => {
      assert.ok(e instanceof CdError);
      assert.equal(e.code, "INTERRUPTED");
      assert.equal(e.exitCode, 130);
      return true;
    },
  );
  assert.equal(await snapshot(), before);
});

Deno.test("delete: refuses unsaved tracked workflow edits unless forced; asks; moves active away", async () => {
  await createEnvironment(app, "doomed", { ...base, comfyui: "v0.2.0", use: true });
  const paths = envPaths(ws, "doomed");
  // A tracked workflow (in .cec, committed) edited in the ComfyUI UI afterwards.
  await Deno.writeTextFile(join(paths.cecWorkflows, "flow.json"), '{"v":1}');
  await git.commit(paths.cec, "track flow");
  await Deno.writeTextFile(join(paths.userWorkflows, "flow.json"), '{"v":2}');
  await Deno.writeTextFile(join(paths.userWorkflows, "scratch.json"), "{}");
  await Deno.writeTextFile(join(paths.models, "checkpoints", "m.safetensors"), "12345");
  await assert.rejects(deleteEnvironment(ws, "doomed"), (e: unknown) => {
    assert.ok(e instanceof CdError);
    assert.equal(e.code, "ENV_HAS_UNSAVED_WORK");
    assert.match(e.message, /workflow flow\.json \(edited in ComfyUI, not in \.cec\)/);
    assert.match(e.hint!, /--force/);
    return true;
  });
  // Uncommitted .cec edits count too.
  await Deno.writeTextFile(join(paths.userWorkflows, "flow.json"), '{"v":1}');
  await Deno.writeTextFile(join(paths.cecWorkflows, "flow.json"), '{"v":3}');
  await Deno.writeTextFile(join(paths.userWorkflows, "flow.json"), '{"v":3}');
  await assert.rejects(deleteEnvironment(ws, "doomed"), /\.cec\/workflows\/flow\.json \(not committed\)/);
  assert.ok((await Deno.stat(paths.cec)).isDirectory);

  let seen: unknown = null;
  assert.equal(
    await deleteEnvironment(ws, "doomed", {
      force: true,
      confirm: (s) => (seen = s, Promise.resolve(false)),
    }),
    null,
  );
  assert.ok((await Deno.stat(paths.root)).isDirectory); // cancelled: still there
  assert.deepEqual(
    [
      (seen as { untrackedWorkflows: string[] }).untrackedWorkflows,
      (seen as { modelFiles: number }).modelFiles,
    ],
    [["scratch.json"], 1],
  );
  const held = await acquireLock(paths.state, "apply"); // an apply in progress
  await assert.rejects(deleteEnvironment(ws, "doomed", { force: true }), /locked by pid/);
  await held.release();
  const summary = await deleteEnvironment(ws, "doomed", {
    force: true,
    confirm: () => Promise.resolve(true),
  });
  assert.equal(summary?.name, "doomed");
  await assert.rejects(Deno.stat(paths.root), Deno.errors.NotFound);
  assert.equal((await readWorkspaceMeta(ws)).active_environment, null);
  // The log outlives the environment and says what was lost.
  const envLog = await Deno.readTextFile(envLogPath(ws, "doomed"));
  assert.match(
    envLog,
    /\] delete: environment removed \(--force\)\n(?: {2}.*\n)*? {2}lost untracked workflow: scratch\.json$/m,
  );
  assert.match(envLog, /^ {2}\.cec commit \w{12} .*: track flow$/m);
  const left = (await Array.fromAsync(Deno.readDir(ws.environments))).map((e) => e.name);
  assert.ok(left.every((n) => !n.startsWith(".")), `leftovers: ${left}`);
});
