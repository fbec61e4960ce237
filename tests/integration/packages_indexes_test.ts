/**
 * Torch from anywhere, mirrors kept per machine, resolving as of a date, plain uv on a `.cec`, torch
 * pinned through a change (issues 18, 19): `createEnvironment` and the change path with real uv, against
 * PEP 503/691 indexes on 127.0.0.1 standing in for PyPI, download.pytorch.org and their mirrors.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildComfyUIRepo } from "../../fixtures/comfyui_repo.ts";
import { servePyIndex } from "../../fixtures/pyindex.ts";
import { ownUvIndex, TEST_GIT_IDENTITY, testPython, useLocalUv } from "../../fixtures/tools.ts";
import { buildWheelhouse, STANDARD_WHEELS, wheelhouseUvConfig } from "../../fixtures/wheels.ts";
import { CdError, isCdError } from "../../lib/errors.ts";
import { run } from "../../lib/proc.ts";
import { NO_INDEX_SETTINGS, type Settings, settingsFromEnv } from "../../lib/settings.ts";
import * as git from "../../providers/git/git.ts";
import { findSitePackages } from "../../providers/packages/distinfo.ts";
import { parseLock } from "../../providers/packages/lockfile.ts";
import { packageProvider } from "../../providers/packages/provider.ts";
import { parsePyproject } from "../../reconcile/desired.ts";
import { applyPlan, makePlan } from "../../reconcile/engine.ts";
import { validateCec } from "../../workspace/validate.ts";
import { createEnvironment } from "../../workspace/create.ts";
import { updateComfyUI } from "../../workspace/environment.ts";
import { type EnvPaths, envPaths, type WorkspacePaths, workspacePaths } from "../../reconcile/paths.ts";
import { quietApp, withSession } from "../../workspace/session.ts";
import type { TomlEdit } from "../../reconcile/pyproject_edit.ts";
import { initWorkspace, listEnvironments } from "../../workspace/workspace.ts";
import { tempRoot } from "../../fixtures/tmp.ts";

await useLocalUv();
// These tests serve their own indexes; an unreachable one fails at once instead of after uv's retries.
ownUvIndex();
Deno.env.set("UV_HTTP_RETRIES", "0");
const PY = await testPython();
const base = settingsFromEnv(Deno.env.toObject());
const root = await tempRoot("comfydock-indexes-");
const UV = base.uv!;
const providers = [packageProvider];

async function workspace(name: string) {
  const ws = { ...workspacePaths(join(root, name)), uvCache: join(root, "uv_cache") };
  await initWorkspace(ws.root);
  return ws;
}

const withIndexes = (indexes: Partial<Settings["indexes"]>): Settings => ({
  ...base,
  indexes: { ...NO_INDEX_SETTINGS, ...indexes },
});

/** create's options for ComfyUI at `comfyuiUrl` with `.cec`'s default index at `index` (a PEP 503 URL). */
const onIndex = (comfyuiUrl: string, index: string) => ({
  comfyuiUrl,
  python: PY.minor,
  torchBackend: "pypi",
  uvSettings: [{ path: ["tool", "uv", "index"], value: [{ name: "local", url: index, default: true }] }],
});

/** The App a face would hand down with these settings: no questions, no output, packages only. */
const app = (ws: WorkspacePaths, settings = base) => quietApp(ws, settings, { providers });

/** One desired-state change through the application layer's one door. */
function change(
  paths: EnvPaths,
  spec: { edits: TomlEdit[]; message: string; apply: boolean; allowTorchChange?: boolean },
  settings = base,
) {
  const { edits, ...rest } = spec;
  return withSession(
    app(paths.workspace, settings),
    paths,
    "test",
    "write",
    (s) => s.change({ ...rest, edit: () => ({ edits }) }),
  );
}

Deno.test("--torch-backend pypi: no PyTorch index in .cec, torch pinned after the first lock, the venv's torch is shown", async () => {
  const repo = await buildComfyUIRepo(join(root, "comfy-pypi"), { requirements: "torch\nalpha\n" });
  const wheels = await buildWheelhouse(join(root, "wheels-pypi"), STANDARD_WHEELS);
  const ws = await workspace("pypi");
  const env = await createEnvironment(app(ws), "p", {
    comfyuiUrl: repo.url,
    python: PY.minor,
    torchBackend: "pypi",
    uvSettings: wheelhouseUvConfig(wheels),
  });
  const paths = envPaths(ws, "p");
  const p = parsePyproject(await Deno.readTextFile(paths.pyproject), paths.pyproject);
  assert.equal(p.tool.comfydock.torch_backend, "pypi");
  assert.equal(p.tool.uv?.index, undefined, "no [[tool.uv.index]] at all");
  assert.equal(p.tool.uv?.sources, undefined);
  assert.deepEqual(p.tool.uv?.["constraint-dependencies"], ["torch==2.5.0"]);
  assert.equal(p.tool.uv?.["default-groups"], "all");
  assert.deepEqual([env.torch_backend, env.torch], ["pypi", "2.5.0"]);
  assert.deepEqual((await listEnvironments(ws)).map((e) => [e.torch_backend, e.torch]), [["pypi", "2.5.0"]]);
  assert.equal(await git.isDirty(paths.cec), false, "pins and lock are in the create commit");
  assert.deepEqual((await makePlan(paths, { providers, settings: base })).plan.actions, []);
});

Deno.test("plain uv on a .cec agrees with ComfyDock: uv lock --check, and uv sync keeps every node group", async () => {
  const ws = workspacePaths(join(root, "pypi"));
  const paths = envPaths(ws, "p");
  await change(paths, {
    edits: [{ path: ["dependency-groups", "node-x"], value: ["delta[fast]"] }],
    message: "add node-x",
    apply: true,
  });
  const installed = async () =>
    (await run(UV, ["pip", "list", "--python", join(paths.venv, "bin", "python")])).stdout;
  const before = await installed();
  assert.match(before, /epsilon/, "node-x's dependency is installed");
  const uv = (args: string[]) =>
    run(UV, args, { cwd: paths.cec, env: { UV_PROJECT_ENVIRONMENT: paths.venv, UV_CACHE_DIR: ws.uvCache } });
  await uv(["lock", "--check"]);
  const sync = await uv(["sync"]);
  assert.doesNotMatch(sync.stderr, /Uninstalled|Installed/, sync.stderr);
  assert.equal(await installed(), before);
  assert.deepEqual((await makePlan(paths, { providers, settings: base })).plan.actions, []);
});

Deno.test("a change that would move torch fails before .cec changes, naming node and versions; --allow-torch-change moves and pins it", async () => {
  const repo = await buildComfyUIRepo(join(root, "comfy-pin"), { requirements: "torch\nalpha\n" });
  const wheelsDir = join(root, "wheels-pin");
  const wheels = await buildWheelhouse(wheelsDir, STANDARD_WHEELS.filter((w) => w.version !== "2.5.0"));
  const ws = await workspace("pin");
  await createEnvironment(app(ws), "t", {
    comfyuiUrl: repo.url,
    python: PY.minor,
    torchBackend: "pypi",
    uvSettings: wheelhouseUvConfig(wheels),
  });
  const paths = envPaths(ws, "t");
  // torch 2.5.0 is released later; a node's library needs exactly that.
  await buildWheelhouse(wheelsDir, STANDARD_WHEELS.filter((w) => w.name === "torch"));
  const before = {
    text: await Deno.readTextFile(paths.pyproject),
    head: await git.revParse(paths.cec, "HEAD"),
  };
  const add = {
    edits: <TomlEdit[]> [
      {
        path: ["tool", "comfydock", "nodes", "greedy"],
        value: { source: "local", path: join(root, "greedy") },
      },
      { path: ["dependency-groups", "greedy"], value: ["greedy-node-lib"] },
    ],
    message: "add greedy",
  };
  await assert.rejects(change(paths, { ...add, apply: false }), (e) => {
    assert.ok(isCdError(e) && e.code === "TORCH_CHANGE", String(e));
    assert.equal(
      e.message,
      "node 'greedy' needs greedy-node-lib, which needs torch 2.5.0; the environment pins torch 2.4.1",
    );
    return true;
  });
  assert.deepEqual(
    { text: await Deno.readTextFile(paths.pyproject), head: await git.revParse(paths.cec, "HEAD") },
    before,
  );
  await change(paths, { ...add, apply: false, allowTorchChange: true });
  const p = parsePyproject(await Deno.readTextFile(paths.pyproject), paths.pyproject);
  assert.deepEqual(p.tool.uv?.["constraint-dependencies"], ["torch==2.5.0"]);
  const torch = parseLock(await Deno.readTextFile(paths.uvLock)).package.find((x) => x.name === "torch");
  assert.equal(torch?.version, "2.5.0");
  assert.equal(await git.isDirty(paths.cec), false, "pins, group and lock in one commit");
  const r = await validateCec({ paths, settings: base }, { offline: true });
  assert.deepEqual(r.errors, []);
});

Deno.test("a PyTorch mirror is machine-local: .cec and uv.lock keep download.pytorch.org; without the mirror the index is named", async () => {
  const repo = await buildComfyUIRepo(join(root, "comfy-mirror"), { requirements: "torch\nalpha\n" });
  const simple = await buildWheelhouse(
    join(root, "wheels-mirror"),
    STANDARD_WHEELS.filter((w) => w.name !== "torch"),
  );
  const cpu = await buildWheelhouse(join(root, "mirror-cpu"), [
    { name: "torch", version: "2.4.1+cpu" },
    { name: "torch", version: "2.5.0+cpu" },
  ]);
  // Behind a firewall: neither PyPI nor download.pytorch.org, a mirror of each.
  const server = await servePyIndex({ cpu });
  const pypi = await servePyIndex({ simple }, { bandersnatch: true });
  try {
    const ws = await workspace("mirror");
    const mirrored = withIndexes({ torchMirror: server.url, defaultIndex: `${pypi.url}/simple` });
    const env = await createEnvironment(app(ws, mirrored), "m", {
      comfyuiUrl: repo.url,
      python: PY.minor,
      torchBackend: "cpu",
    });
    assert.equal(env.torch, "2.5.0+cpu");
    assert.ok(server.requests.some((r) => r.startsWith("/cpu/torch")), "torch came through the mirror");
    // The PyTorch index stays explicit through its mirror: asked for torch only, never for alpha (the real
    // one serves numpy, pillow, ...: a mirrored machine would otherwise lock other sources than the rest).
    assert.deepEqual(server.requests.filter((r) => !/^\/(?:files\/)?cpu\/torch\b/.test(r)), []);
    const paths = envPaths(ws, "m");
    const pyproject = await Deno.readTextFile(paths.pyproject);
    const lock = await Deno.readTextFile(paths.uvLock);
    for (const text of [pyproject, lock]) assert.ok(!text.includes("127.0.0.1"), "the mirror is not in .cec");
    assert.match(pyproject, /url = "https:\/\/download\.pytorch\.org\/whl\/cpu"/);
    assert.deepEqual(
      { ...parseLock(lock).package.find((x) => x.name === "torch")!.source },
      { registry: "https://download.pytorch.org/whl/cpu" },
    );
    assert.deepEqual((await makePlan(paths, { providers, settings: mirrored })).plan.actions, []);
    // A fresh venv from the canonical lock, through the mirror (uv.lock's URLs are translated for uv).
    await Deno.remove(paths.venv, { recursive: true });
    const { plan } = await makePlan(paths, { providers, settings: mirrored });
    await applyPlan(paths, plan, { providers, settings: mirrored });
    assert.equal(await Deno.readTextFile(paths.uvLock), lock);
    assert.deepEqual((await validateCec({ paths, settings: mirrored }, { offline: true })).errors, []);

    // A machine without the PyTorch mirror (download.pytorch.org does not resolve here): the failure names
    // the index and the settings. (A lock that is already current needs no index: validate passes there.)
    const noTorchMirror = withIndexes({ defaultIndex: `${pypi.url}/simple` });
    assert.deepEqual((await validateCec({ paths, settings: noTorchMirror }, { offline: true })).errors, []);
    await assert.rejects(
      createEnvironment(app(ws, noTorchMirror), "n", {
        comfyuiUrl: repo.url,
        python: PY.minor,
        torchBackend: "cpu",
      }),
      (e) => {
        assert.ok(isCdError(e) && e.code === "INDEX_UNREACHABLE", String(e));
        assert.match(
          e.message,
          /could not reach the 'pytorch' index of \.cec \(https:\/\/download\.pytorch\.org\/whl\/cpu\) \(.*uv asked for https:\/\/download\.pytorch\.org\/whl\/cpu\/torch\/\)/,
        );
        assert.match(e.hint!, /comfydock config set torch_index_mirror URL/);
        return true;
      },
    );
  } finally {
    await server.close();
    await pypi.close();
  }
});

Deno.test("a PyPI mirror is machine-local too: uv.lock names PyPI and its file host, installs come from the mirror", async () => {
  const repo = await buildComfyUIRepo(join(root, "comfy-pypi-mirror"));
  const simple = await buildWheelhouse(join(root, "pypi-mirror"), STANDARD_WHEELS);
  const server = await servePyIndex({ simple }, { bandersnatch: true });
  try {
    const ws = await workspace("pypimirror");
    const mirrored = withIndexes({ defaultIndex: `${server.url}/simple` });
    await createEnvironment(app(ws, mirrored), "d", {
      comfyuiUrl: repo.url,
      python: PY.minor,
      torchBackend: "pypi",
    });
    const paths = envPaths(ws, "d");
    const lock = await Deno.readTextFile(paths.uvLock);
    assert.ok(!lock.includes("127.0.0.1"), lock);
    const alpha = parseLock(lock).package.find((x) => x.name === "alpha")!;
    assert.deepEqual({ ...alpha.source }, { registry: "https://pypi.org/simple" });
    assert.match(
      lock,
      /url = "https:\/\/files\.pythonhosted\.org\/packages\/alpha-2\.0\.0-py3-none-any\.whl"/,
    );
    assert.ok(server.requests.includes("/packages/alpha-2.0.0-py3-none-any.whl"));
    assert.deepEqual((await makePlan(paths, { providers, settings: mirrored })).plan.actions, []);
  } finally {
    await server.close();
  }
});

Deno.test("healing installed packages: a missing file comes back from uv's cache without a download; a file changed in place is downloaded again", async () => {
  const simple = await buildWheelhouse(join(root, "heal"), STANDARD_WHEELS);
  const server = await servePyIndex({ simple });
  try {
    const repo = await buildComfyUIRepo(join(root, "comfy-heal"), { requirements: "alpha\nbeta\n" });
    const ws = await workspace("heal");
    await createEnvironment(app(ws), "h", onIndex(repo.url, `${server.url}/simple`));
    const paths = envPaths(ws, "h");
    const [sp] = await findSitePackages(paths.venv);
    const file = join(sp, "alpha", "__init__.py");
    const original = await Deno.readTextFile(file);
    const downloads = () => server.requests.filter((r) => r.endsWith(".whl")).length;
    const heal = async (reason: RegExp) => {
      const { plan } = await makePlan(paths, { providers, settings: base });
      assert.equal(plan.actions.length, 1, JSON.stringify(plan.actions));
      assert.match(plan.actions[0].reason ?? "", reason);
      const before = downloads();
      await applyPlan(paths, plan, { providers, settings: base });
      assert.equal(await Deno.readTextFile(file), original);
      assert.ok(await Deno.stat(join(sp, "beta", "__init__.py")));
      assert.deepEqual((await makePlan(paths, { providers, settings: base })).plan.actions, []);
      return downloads() - before;
    };

    // uv's --reinstall-package alone re-downloads the wheel (it implies a refresh): torch is ~850 MB.
    await Deno.remove(file);
    assert.equal(await heal(/alpha: 1 file missing/), 0, "healed from uv's cache");
    // uv links installed files to its cache: an edit in place is in the cache too, so it is fetched anew.
    await Deno.writeTextFile(file, "edited by hand\n", { append: true });
    assert.equal(await heal(/alpha: 1 file changed/), 1, "downloaded again");
    // Both at once: only the changed one is downloaded.
    await Deno.writeTextFile(file, "edited by hand\n", { append: true });
    await Deno.remove(join(sp, "beta", "__init__.py"));
    assert.equal(
      await heal(/alpha: 1 file changed.*beta: 1 file missing/),
      1,
      "alpha downloaded, beta from the cache",
    );
    // A cache that no longer holds it (pruned, another machine's venv): downloaded after all.
    await run(UV, ["cache", "clean", "beta"], { env: { UV_CACHE_DIR: ws.uvCache } });
    await Deno.remove(join(sp, "beta", "__init__.py"));
    assert.equal(await heal(/beta: 1 file missing/), 1, "beta downloaded");
  } finally {
    await server.close();
  }
});

Deno.test("resolve as of the ComfyUI commit's date: packages of that week, kept in .cec; comfyui update moves the date", async () => {
  // Release dates around the fixture ComfyUI's commits (2025-01-01T00:00:01Z ... :05Z).
  const at = (d: string) => ({ uploaded: d });
  const simple = await buildWheelhouse(join(root, "dated"), [
    { name: "alpha", version: "1.0.0", ...at("2024-06-01T00:00:00Z") },
    { name: "alpha", version: "1.1.0", ...at("2024-12-01T00:00:00Z") },
    { name: "alpha", version: "2.0.0", ...at("2025-06-01T00:00:00Z") },
    { name: "beta", version: "1.0.0", requires: ["alpha>=1,<2"], ...at("2024-06-01T00:00:00Z") },
    { name: "beta", version: "2.0.0", requires: ["alpha>=2"], ...at("2025-06-01T00:00:00Z") },
  ]);
  const server = await servePyIndex({ simple }, { json: true });
  try {
    const repo = await buildComfyUIRepo(join(root, "comfy-dated"), { requirements: "alpha\nbeta\n" });
    const ws = await workspace("dated");
    const opts = onIndex(repo.url, `${server.url}/simple`);
    const today = await createEnvironment(app(ws), "today", opts);
    assert.equal(today.exclude_newer, null);
    const versions = async (name: string) =>
      Object.fromEntries(
        parseLock(await Deno.readTextFile(envPaths(ws, name).uvLock)).package.filter((p) => p.name !== name)
          .map((p) => [p.name, p.version]),
      );
    assert.deepEqual(await versions("today"), { alpha: "2.0.0", beta: "2.0.0" });

    const old = await createEnvironment(app(ws), "old", {
      ...opts,
      comfyui: "v0.1.0",
      resolveAsOf: "comfyui",
    });
    assert.equal(old.exclude_newer, "2025-01-01T00:00:01Z");
    assert.deepEqual(await versions("old"), { alpha: "1.1.0", beta: "1.0.0" });
    const paths = envPaths(ws, "old");
    assert.match(await Deno.readTextFile(paths.pyproject), /exclude-newer = "2025-01-01T00:00:01Z"/);
    // Plain uv reads the same date from .cec.
    await run(UV, ["lock", "--check"], {
      cwd: paths.cec,
      env: { UV_CACHE_DIR: ws.uvCache, UV_PROJECT_ENVIRONMENT: paths.venv },
    });

    await createEnvironment(app(ws), "dated", { ...opts, resolveAsOf: "2024-07-01" });
    assert.deepEqual(await versions("dated"), { alpha: "1.0.0", beta: "1.0.0" });
    await assert.rejects(
      createEnvironment(app(ws), "bad", { ...opts, resolveAsOf: "yesterday" }),
      (e) => e instanceof CdError && e.code === "RESOLVE_AS_OF_INVALID",
    );

    const update = (version: string) =>
      withSession(
        app(ws),
        paths,
        "comfyui update",
        "write",
        (s) => updateComfyUI(s, version, { apply: false }),
      );
    const r = await update("v0.2.0");
    assert.deepEqual(r.excludeNewer, { from: "2025-01-01T00:00:01Z", to: "2025-01-01T00:00:02Z" });
    assert.match(await Deno.readTextFile(paths.pyproject), /exclude-newer = "2025-01-01T00:00:02Z"/);
    // A relative window is the user's own policy: a ComfyUI update leaves it as written.
    await Deno.writeTextFile(
      paths.pyproject,
      (await Deno.readTextFile(paths.pyproject)).replace(
        /exclude-newer = "[^"]*"/,
        'exclude-newer = "7 days"',
      ),
    );
    await git.commit(paths.cec, "my own window", { env: { ...TEST_GIT_IDENTITY } });
    const kept = await update("v0.10.0");
    assert.equal(kept.excludeNewer, null);
    assert.match(await Deno.readTextFile(paths.pyproject), /exclude-newer = "7 days"/);
  } finally {
    await server.close();
  }
});

Deno.test("--torch-index URL is written verbatim; pypi and an index together are refused", async () => {
  const repo = await buildComfyUIRepo(join(root, "comfy-verbatim"));
  const wheels = await buildWheelhouse(join(root, "wheels-verbatim"), STANDARD_WHEELS);
  const ws = await workspace("verbatim");
  const url = "https://wheels.example.org/torch/cu124";
  const env = await createEnvironment(app(ws), "v", {
    comfyuiUrl: repo.url,
    python: PY.minor,
    torchIndex: url,
    uvSettings: wheelhouseUvConfig(wheels),
  });
  assert.equal(env.torch_backend, "cu124");
  const p = parsePyproject(await Deno.readTextFile(envPaths(ws, "v").pyproject), "pyproject.toml");
  assert.deepEqual(JSON.parse(JSON.stringify(p.tool.uv?.index)), [{ name: "pytorch", url, explicit: true }]);
  await assert.rejects(
    createEnvironment(app(ws), "w", {
      comfyuiUrl: repo.url,
      torchBackend: "pypi",
      torchIndex: url,
    }),
    (e) => e instanceof CdError && e.code === "TORCH_BACKEND_INVALID",
  );
});

Deno.test("comfyui update moves the pinned torch on purpose and pins the new versions", async () => {
  const repo = await buildComfyUIRepo(join(root, "comfy-torch-update"), {
    requirements: { "v0.1.0": "torch<2.5\nalpha\n", "v0.2.0": "torch>=2.5\nalpha\n", "v0.10.0": "torch\n" },
  });
  const wheels = await buildWheelhouse(join(root, "wheels-torch-update"), STANDARD_WHEELS);
  const ws = await workspace("torchupdate");
  await createEnvironment(app(ws), "u", {
    comfyuiUrl: repo.url,
    comfyui: "v0.1.0",
    python: PY.minor,
    torchBackend: "pypi",
    uvSettings: wheelhouseUvConfig(wheels),
  });
  const paths = envPaths(ws, "u");
  const pins = async () =>
    parsePyproject(await Deno.readTextFile(paths.pyproject), paths.pyproject).tool.uv
      ?.["constraint-dependencies"];
  assert.deepEqual(await pins(), ["torch==2.4.1"]);
  const r = await withSession(
    app(ws),
    paths,
    "comfyui update",
    "write",
    (s) => updateComfyUI(s, "v0.2.0", { apply: false }),
  );
  assert.ok(r.commit);
  assert.deepEqual(await pins(), ["torch==2.5.0"]);
  assert.equal(
    parseLock(await Deno.readTextFile(paths.uvLock)).package.find((p) => p.name === "torch")?.version,
    "2.5.0",
  );
  assert.equal(await git.isDirty(paths.cec), false, "the new pins are in the update's commit");
});
