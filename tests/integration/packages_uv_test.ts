/**
 * The packages provider against real uv and a real venv, offline: a wheelhouse of tiny wheels built once
 * for the file, one shared uv cache, one temp workspace per test.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { isCdError } from "../../lib/errors.ts";
import { readDesired } from "../../reconcile/desired.ts";
import type { Action, Transaction, UndoStep } from "../../reconcile/types.ts";
import { type EnvPaths, envPaths, workspacePaths } from "../../reconcile/paths.ts";
import { buildWheelhouse, STANDARD_WHEELS, wheelhouseUvToml } from "../../fixtures/wheels.ts";
import { otherPython, testNeeds, testPython, useLocalUv } from "../../fixtures/tools.ts";
import type { PackagesObserved } from "../../providers/packages/diff.ts";
import {
  type LockCheck,
  observePackagesDetailed,
  packageProvider,
} from "../../providers/packages/provider.ts";
import { checkResolves } from "../../providers/packages/resolve.ts";
import { Uv } from "../../providers/packages/uv.ts";
import { testSettings } from "../../fixtures/app.ts";
import { tempRoot } from "../../fixtures/tmp.ts";

await useLocalUv();

// Any accidental network use fails instead of passing by luck.
Deno.env.set("UV_OFFLINE", "1");
const fileTmp = await tempRoot("comfydock-pkg-");
const wheels = await buildWheelhouse(join(fileTmp, "wheels"), STANDARD_WHEELS);
const sharedUvCache = join(fileTmp, "uv_cache");
const PY = await testPython();
const OTHER = await otherPython();

/** Settings are read at each call, like the CLI's edge: a test that changes COMFYDOCK_UV or PATH sees it. */
function envCtx(paths: EnvPaths) {
  return { paths, settings: testSettings() };
}

function pyproject(
  opts: { deps?: string[]; groups?: Record<string, string[]>; python?: string } = {},
): string {
  const deps = opts.deps ?? ["beta==1.0.0", "gamma", "delta[fast]"];
  const groups = opts.groups ?? { "node-a": ["zeta-pkg"] };
  return `# my environment
[project]
name = "e1"
version = "0.1.0"
requires-python = ">=${opts.python ?? PY.minor}"
dependencies = [${deps.map((d) => JSON.stringify(d)).join(", ")}]

[dependency-groups]
${Object.entries(groups).map(([g, r]) => `${g} = [${r.map((x) => JSON.stringify(x)).join(", ")}]`).join("\n")}
${wheelhouseUvToml(wheels)}
[tool.comfydock]
comfyui_version = "v0.3.0"
comfyui_commit = "${"0".repeat(40)}"
python_version = "${opts.python ?? PY.minor}"
`;
}

async function newEnv(text = pyproject()): Promise<EnvPaths> {
  const root = await Deno.makeTempDir({ dir: fileTmp, prefix: "ws-" });
  const ws = { ...workspacePaths(root), uvCache: sharedUvCache };
  const paths = envPaths(ws, "e1");
  await Deno.mkdir(paths.cec, { recursive: true });
  await Deno.writeTextFile(paths.pyproject, text);
  return paths;
}

/** The engine's side of the contract, minimal: journal in memory, trash in a dir, reverse-order undo. */
class TestTx implements Transaction {
  steps: UndoStep[] = [];
  lines: string[] = [];
  constructor(private readonly dir: string) {}
  async stagingDir(label: string): Promise<string> {
    return await Deno.makeTempDir({ dir: this.dir, prefix: label });
  }
  async trash(path: string): Promise<void> {
    const trashPath = join(this.dir, `trash-${this.steps.length}`);
    this.steps.push({ op: "restore", path, trashPath });
    await Deno.rename(path, trashPath);
  }
  async place(staged: string, finalPath: string): Promise<void> {
    this.steps.push({ op: "remove", path: finalPath });
    await Deno.rename(staged, finalPath);
  }
  created(path: string): Promise<void> {
    this.steps.push({ op: "remove", path });
    return Promise.resolve();
  }
  recordUndo(step: UndoStep): Promise<void> {
    this.steps.push(step);
    return Promise.resolve();
  }
  log(line: string): void {
    this.lines.push(line);
  }
  async rollBack(paths: EnvPaths): Promise<void> {
    for (const s of [...this.steps].reverse()) {
      if (s.op === "custom") await packageProvider.undo!(s, { ...envCtx(paths), readOnly: false });
      else if (s.op === "remove") await Deno.rename(s.path, join(this.dir, `removed-${crypto.randomUUID()}`));
      else await Deno.rename(s.trashPath, s.path);
    }
  }
}

async function plan(
  paths: EnvPaths,
): Promise<{ actions: Action[]; observed: PackagesObserved; lockCheckedBy: LockCheck }> {
  const desired = await readDesired(paths);
  const observed = await packageProvider.observe(desired, { ...envCtx(paths), readOnly: true });
  const { lockCheckedBy, observed: again } = await observePackagesDetailed(desired, envCtx(paths));
  assert.deepEqual(again, observed, "observing twice gives the same data (stable plan fingerprint)");
  return { actions: packageProvider.diff(desired, observed).actions, observed, lockCheckedBy };
}

async function apply(paths: EnvPaths, actions: Action[]): Promise<TestTx> {
  const tx = new TestTx(await Deno.makeTempDir({ dir: paths.root, prefix: ".tx-" }));
  for (const a of actions) await packageProvider.apply(a, tx, { ...envCtx(paths), readOnly: false });
  return tx;
}

async function converge(paths: EnvPaths): Promise<void> {
  await apply(paths, (await plan(paths)).actions);
  const again = await plan(paths);
  assert.deepEqual(again.actions, [], `second plan not empty: ${JSON.stringify(again.actions)}`);
}

async function uvPip(paths: EnvPaths, args: string[]): Promise<void> {
  const uv = await Uv.locate(paths.workspace, testSettings());
  await uv.pip(paths.venv, args[0] === "install" ? [...args, "--find-links", wheels, "--no-index"] : args);
}

Deno.test("fresh env: plan creates the venv, apply locks + syncs, second plan is empty", async () => {
  const paths = await newEnv();
  const first = await plan(paths);
  assert.equal(first.actions.length, 1);
  const a = first.actions[0];
  assert.equal(a.kind, "create");
  assert.equal(first.observed.lock, "missing");
  assert.equal(a.reason, `no venv: create it with Python ${PY.minor} and install 6 locked packages`);
  assert.deepEqual(first.observed.target, {
    alpha: "1.1.0",
    beta: "1.0.0",
    delta: "0.5.0",
    epsilon: "1.0.0",
    gamma: "1.0.0",
    "zeta-pkg": "3.0.0",
  }); // winonly is locked (sys_platform == 'win32') but not for this machine
  await apply(paths, first.actions);
  const cecFiles = [...Deno.readDirSync(paths.cec)].map((e) => e.name).sort();
  assert.deepEqual(cecFiles, ["pyproject.toml", "uv.lock"], "uv leaves nothing else in .cec");
  const lock = await Deno.readTextFile(paths.uvLock);
  assert.match(lock, /name = "winonly"/);
  const again = await plan(paths);
  assert.deepEqual(again.actions, []);
  assert.equal(again.lockCheckedBy, "stamp");
  assert.deepEqual(again.observed.installed, first.observed.target);
});

Deno.test("drift: uninstalled, upgraded and extra packages by hand are planned and fixed", async () => {
  const paths = await newEnv();
  await converge(paths);
  await uvPip(paths, ["uninstall", "zeta-pkg"]);
  await uvPip(paths, ["install", "alpha==1.0.0"]);
  await uvPip(paths, ["install", "winonly"]);
  const { actions } = await plan(paths);
  assert.equal(actions.length, 1);
  assert.equal(actions[0].kind, "update");
  assert.match(
    actions[0].reason,
    /^\+1 -1 ~1 \(alpha 1\.0\.0 -> 1\.1\.0, zeta-pkg 3\.0\.0, winonly 1\.0\.0\)/,
  );
  assert.match(actions[0].reason, /the venv differs from the lock/);
  assert.deepEqual(actions[0].details, ["+ zeta-pkg 3.0.0", "- winonly 1.0.0", "~ alpha 1.0.0 -> 1.1.0"]);
  const lockBefore = await Deno.readTextFile(paths.uvLock);
  await converge(paths);
  assert.equal(await Deno.readTextFile(paths.uvLock), lockBefore, "a drift fix must not re-lock");
});

Deno.test("stale lock after a pyproject edit: plan shows the new packages, apply re-locks then syncs", async () => {
  const paths = await newEnv();
  await converge(paths);
  await Deno.writeTextFile(
    paths.pyproject,
    pyproject({
      deps: ["beta==2.0.0", "gamma", "delta[fast]"],
      groups: { "node-a": ["zeta-pkg"], "node-b": ["torch"] },
    }),
  );
  const { actions, observed, lockCheckedBy } = await plan(paths);
  assert.equal(observed.lock, "stale");
  assert.equal(lockCheckedBy, "uv");
  assert.equal(actions[0].kind, "update");
  assert.match(
    actions[0].reason,
    /^\+1 ~2 \(alpha 1\.1\.0 -> 2\.0\.0, beta 1\.0\.0 -> 2\.0\.0, torch 2\.5\.0\)/,
  );
  assert.match(actions[0].reason, /uv\.lock is out of date with pyproject\.toml/);
  const tx = await apply(paths, actions);
  assert.match(await Deno.readTextFile(paths.uvLock), /name = "torch"/);
  assert.deepEqual((await plan(paths)).actions, []);

  // undo: the previous lock comes back and the venv is re-synced to it
  await tx.rollBack(paths);
  assert.doesNotMatch(await Deno.readTextFile(paths.uvLock), /name = "torch"/);
  const after = await plan(paths);
  assert.equal(after.observed.installed.beta, "1.0.0");
  assert.equal(after.observed.installed.torch, undefined);
});

Deno.test("a lock that only changes because pyproject changed, with the same packages, is still re-locked", async () => {
  const paths = await newEnv();
  await converge(paths);
  // alpha is already installed through beta: a new group naming it changes uv.lock, not the venv
  await Deno.writeTextFile(
    paths.pyproject,
    pyproject({ groups: { "node-a": ["zeta-pkg"], "node-c": ["alpha"] } }),
  );
  const { actions } = await plan(paths);
  assert.equal(actions.length, 1);
  assert.match(actions[0].reason, /^no package changes; uv\.lock is out of date/);
  await converge(paths);
  assert.match(await Deno.readTextFile(paths.uvLock), /node-c/);
});

Deno.test("venv deleted entirely: plan recreates it with the locked packages", async () => {
  const paths = await newEnv();
  await converge(paths);
  await Deno.remove(paths.venv, { recursive: true });
  const { actions, observed } = await plan(paths);
  assert.equal(actions[0].kind, "create");
  assert.equal(observed.lock, "current");
  assert.ok(observed.python && "path" in observed.python);
  await converge(paths);
});

Deno.test("corrupt venv: no pyvenv.cfg -> replace; a dist-info without METADATA -> reinstall", async () => {
  const paths = await newEnv();
  await converge(paths);
  await Deno.remove(join(paths.venv, "pyvenv.cfg"));
  let p = await plan(paths);
  assert.equal(p.actions[0].kind, "replace");
  assert.match(p.actions[0].reason, /the venv is broken \(pyvenv\.cfg is missing\)/);
  const tx = await apply(paths, p.actions);
  assert.ok(tx.steps.some((s) => s.op === "restore" && s.path === paths.venv), "old venv kept in the trash");
  assert.deepEqual((await plan(paths)).actions, []);

  const [sp] = await Array.fromAsync(Deno.readDir(join(paths.venv, "lib")));
  await Deno.remove(
    join(paths.venv, "lib", sp.name, "site-packages", "zeta_pkg-3.0.0.dist-info", "METADATA"),
  );
  p = await plan(paths);
  assert.equal(p.actions[0].kind, "update");
  assert.match(p.actions[0].reason, /1 broken install \(zeta-pkg\)/);
  await converge(paths);

  // The interpreter the venv points at is gone (base Python uninstalled).
  await Deno.remove(join(paths.venv, "bin", "python"));
  await Deno.symlink(join(fileTmp, "no-such-python"), join(paths.venv, "bin", "python"));
  p = await plan(paths);
  assert.equal(p.actions[0].kind, "replace");
  assert.match(p.actions[0].reason, /interpreter .*bin\/python is missing or broken/);
  await converge(paths);
});

testNeeds(
  OTHER ? null : `a second Python besides ${PY.minor} (pyenv install, or the OS's python3.X package)`,
  "venv made with another Python than pyproject asks for is replaced",
  async () => {
    const paths = await newEnv(pyproject({ python: OTHER!.minor }));
    const uv = await Uv.locate(paths.workspace, testSettings());
    await uv.venv(paths.venv, PY.path);
    const { actions } = await plan(paths);
    assert.equal(actions[0].kind, "replace");
    assert.equal(
      actions[0].reason,
      `the venv has Python ${PY.version} but pyproject asks for ${OTHER!.minor}: recreate it`,
    );
    await converge(paths);
  },
);

Deno.test("unsatisfiable requirement: PACKAGES_CONFLICT names packages and node groups; .cec untouched", async () => {
  const paths = await newEnv();
  await converge(paths);
  const before = [await Deno.readTextFile(paths.pyproject), await Deno.readTextFile(paths.uvLock)];
  const bad = pyproject({ groups: { "node-a": ["beta>=2"], "node-b": ["alpha<1.1"] }, deps: ["gamma"] });
  await assert.rejects(() => checkResolves(envCtx(paths), bad), (e) => {
    assert.ok(isCdError(e));
    assert.equal(e.code, "PACKAGES_CONFLICT");
    assert.match(e.message, /conflicting packages alpha, beta/);
    assert.match(e.message, /node groups node-a, node-b/);
    assert.match(e.message, /No solution found/, "uv's own text is kept");
    assert.match(e.hint ?? "", /pyproject\.toml was not changed/);
    return true;
  });
  assert.deepEqual([await Deno.readTextFile(paths.pyproject), await Deno.readTextFile(paths.uvLock)], before);
  const leftovers = [...Deno.readDirSync(paths.root)].filter((e) => e.name.startsWith(".cec-uv-"));
  assert.deepEqual(leftovers, [], "temp project copies are removed");

  // A plan over an unsatisfiable pyproject fails the same way instead of planning something half-true.
  await Deno.writeTextFile(paths.pyproject, bad);
  await assert.rejects(() => plan(paths), (e) => isCdError(e) && e.code === "PACKAGES_CONFLICT");
});

Deno.test("a node asking for another torch than the pin fails naming the node, its package and both torches", async () => {
  const paths = await newEnv();
  const text = pyproject({ deps: ["torch"], groups: { greedy: ["greedy-node-lib>=1"] } }).replace(
    "no-index = true",
    'no-index = true\nconstraint-dependencies = ["torch==2.4.1"]',
  );
  await assert.rejects(() => checkResolves(envCtx(paths), text), (e) => {
    assert.ok(isCdError(e) && e.code === "TORCH_CHANGE", String(e));
    assert.equal(
      e.message,
      "node 'greedy' needs greedy-node-lib>=1, which needs torch 2.5.0; the environment pins torch 2.4.1",
    );
    assert.match(e.hint ?? "", /--allow-torch-change/);
    return true;
  });
});

Deno.test("uv missing: UV_NOT_FOUND says how to install it", async () => {
  const paths = await newEnv();
  const saved = { uv: Deno.env.get("COMFYDOCK_UV"), path: Deno.env.get("PATH") };
  try {
    Deno.env.set("COMFYDOCK_UV", join(fileTmp, "no-such-uv"));
    await assert.rejects(() => Uv.locate(paths.workspace, testSettings()), (e) => {
      assert.ok(isCdError(e) && e.code === "UV_NOT_FOUND");
      assert.match(e.hint ?? "", /pip install uv/);
      return true;
    });
    Deno.env.delete("COMFYDOCK_UV");
    Deno.env.set("PATH", join(fileTmp, "empty-bin"));
    await assert.rejects(() => plan(paths), (e) => {
      assert.ok(isCdError(e) && e.code === "UV_NOT_FOUND");
      assert.match(e.message, /no 'uv' on PATH/);
      return true;
    });
  } finally {
    if (saved.uv) Deno.env.set("COMFYDOCK_UV", saved.uv);
    Deno.env.set("PATH", saved.path ?? "");
  }
});

Deno.test("a lost stamp falls back to a trial lock and still finds the lock current", async () => {
  const paths = await newEnv();
  await converge(paths);
  await Deno.remove(join(paths.state, "packages", "stamps.json"));
  const desired = await readDesired(paths);
  const first = await observePackagesDetailed(desired, envCtx(paths));
  assert.equal(first.observed.lock, "current");
  assert.equal(first.lockCheckedBy, "uv");
  const second = await observePackagesDetailed(desired, envCtx(paths));
  assert.equal(second.lockCheckedBy, "stamp", "the answer is remembered");
  assert.deepEqual(second.observed, first.observed);
});

Deno.test("a uv failure that is not a conflict stays UV_FAILED with uv's own message", async () => {
  const paths = await newEnv();
  const text = pyproject().replace(JSON.stringify(wheels), JSON.stringify(join(fileTmp, "gone")));
  await assert.rejects(() => checkResolves(envCtx(paths), text), (e) => {
    assert.ok(isCdError(e) && e.code === "UV_FAILED", String(e));
    assert.match(e.message, /Failed to read `--find-links` directory/);
    assert.ok(e.hint);
    return true;
  });
});
