/**
 * Packages are verified, not just listed (issue 18): installed files against each distribution's RECORD,
 * with real uv, a real venv and the engine, offline (fixture wheels). The OpenCV family shares `cv2/`:
 * removing one member deletes the module for the others, which a METADATA-only observation called clean.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { makeEnvSkeleton } from "../../fixtures/env_skeleton.ts";
import { buildWheelhouse, OPENCV_WHEELS, STANDARD_WHEELS, wheelhouseUvToml } from "../../fixtures/wheels.ts";
import { useLocalUv } from "../../fixtures/tools.ts";
import { run } from "../../lib/proc.ts";
import { settingsFromEnv } from "../../lib/settings.ts";
import { applyPlan, makePlan } from "../../reconcile/engine.ts";
import type { Plan } from "../../reconcile/types.ts";
import { venvPython } from "../../providers/packages/distinfo.ts";
import { packageProvider } from "../../providers/packages/provider.ts";
import { Uv } from "../../providers/packages/uv.ts";
import type { EnvPaths } from "../../reconcile/paths.ts";
import { tempRoot } from "../../fixtures/tmp.ts";

await useLocalUv();
Deno.env.set("UV_OFFLINE", "1");
const settings = settingsFromEnv(Deno.env.toObject());
const fileTmp = await tempRoot("comfydock-record-");
const wheels = await buildWheelhouse(join(fileTmp, "wheels"), [
  ...STANDARD_WHEELS,
  ...OPENCV_WHEELS,
  { name: "tool-pkg", version: "1.0.0", scripts: { toolcmd: "#!python\nprint('tool')\n" } },
]);
const providers = [packageProvider];

function groupsToml(groups: Record<string, string[]>): string {
  return "\n[dependency-groups]\n" +
    Object.entries(groups).map(([g, r]) => `${g} = ${JSON.stringify(r)}`).join("\n") + "\n" +
    wheelhouseUvToml(wheels);
}

async function newEnv(groups: Record<string, string[]>): Promise<EnvPaths> {
  const root = await Deno.makeTempDir({ dir: fileTmp, prefix: "ws-" });
  const paths = await makeEnvSkeleton(root, "e1", groupsToml(groups));
  // One uv cache for the file: wheels are unpacked once.
  paths.workspace.uvCache = join(fileTmp, "uv_cache");
  return paths;
}

async function setGroups(paths: EnvPaths, groups: Record<string, string[]>): Promise<void> {
  const text = await Deno.readTextFile(paths.pyproject);
  await Deno.writeTextFile(
    paths.pyproject,
    text.slice(0, text.indexOf("\n[dependency-groups]")) + groupsToml(groups),
  );
}

const plan = async (paths: EnvPaths, deep = false): Promise<Plan> =>
  (await makePlan(paths, { providers, settings, deep })).plan;

async function converge(paths: EnvPaths, deep = false): Promise<Plan> {
  const first = await plan(paths, deep);
  await applyPlan(paths, first, { providers, settings, deep });
  const again = await plan(paths, deep);
  assert.deepEqual(again.actions, [], `not converged: ${JSON.stringify(again.actions, null, 1)}`);
  return first;
}

/** What `import cv2` gives in the venv: the variant whose files won, or the import error. */
async function importCv2(paths: EnvPaths): Promise<string> {
  const r = await run(venvPython(paths.venv), ["-c", "import cv2; print(cv2.VARIANT)"], { check: false });
  return r.code === 0 ? r.stdout.trim() : r.stderr.trim().split("\n").pop()!;
}

Deno.test("OpenCV family: a member removed by plain uv deletes cv2/ for the others; plan names the files, apply heals", async () => {
  const paths = await newEnv({
    a: ["opencv-python"],
    b: ["opencv-contrib-python"],
    c: ["opencv-python-headless"],
  });
  await converge(paths);
  assert.match(await importCv2(paths), /^(main|contrib with extra modules|headless)$/);

  // What uv does on its own (and what ComfyDock's apply did before): drop the group, lock, sync.
  await setGroups(paths, { a: ["opencv-python"], c: ["opencv-python-headless"] });
  const uv = await Uv.locate(paths.workspace, settings);
  await uv.lock(paths.cec, { python: venvPython(paths.venv) });
  await uv.sync(paths.cec, paths.venv, { frozen: true });
  // cv2/__init__.py is gone: what is left of cv2/ imports as an empty namespace package.
  assert.equal(await importCv2(paths), "AttributeError: module 'cv2' has no attribute 'VARIANT'");

  const broken = await plan(paths);
  assert.equal(broken.actions.length, 1, "a venv with cv2/ deleted is not clean");
  const a = broken.actions[0];
  assert.equal(a.address, "packages");
  assert.equal(
    a.reason,
    "opencv-python: 2 files missing (cv2/__init__.py, cv2/cv2_impl.py); " +
      "opencv-python-headless: 2 files missing (cv2/__init__.py, cv2/cv2_impl.py): " +
      "reinstall opencv-python, opencv-python-headless",
  );
  assert.deepEqual((a.after as { reinstall: string[] }).reinstall, [
    "opencv-python",
    "opencv-python-headless",
  ]);
  assert.ok(
    a.details!.includes("! reinstall opencv-python: 2 files missing (cv2/__init__.py, cv2/cv2_impl.py)"),
  );

  await applyPlan(paths, broken, { providers, settings });
  assert.match(await importCv2(paths), /^(main|headless)$/);
  assert.deepEqual((await plan(paths)).actions, []);
});

Deno.test("OpenCV family: removing a member through ComfyDock reinstalls the others in the same apply; bringing one in says so", async () => {
  const paths = await newEnv({ a: ["opencv-python"] });
  await converge(paths);
  assert.equal(await importCv2(paths), "main");

  await setGroups(paths, { a: ["opencv-python"], b: ["opencv-contrib-python"] });
  const add = await plan(paths);
  assert.ok(
    add.actions[0].details!.includes(
      "! opencv-contrib-python, opencv-python all install cv2/: the one installed last provides it, and " +
        "removing one deletes it for the others (ComfyDock then reinstalls them)",
    ),
    add.actions[0].details!.join("\n"),
  );
  await applyPlan(paths, add, { providers, settings });
  assert.deepEqual((await plan(paths)).actions, [], "files overwritten by a sibling are not drift");

  await setGroups(paths, { a: ["opencv-python"] });
  const remove = await plan(paths);
  assert.ok(remove.actions[0].details!.includes("- opencv-contrib-python 4.10.0.84"));
  assert.ok(
    remove.actions[0].details!.includes(
      "! reinstall opencv-python: shares cv2/ with opencv-contrib-python, which this change removes",
    ),
    remove.actions[0].details!.join("\n"),
  );
  await applyPlan(paths, remove, { providers, settings });
  assert.equal(await importCv2(paths), "main");
  assert.deepEqual((await plan(paths)).actions, [], "one apply converges");
});

Deno.test("files replaced or removed by hand are drift; scripts outside site-packages are checked; RECORD paths outside the venv are never followed", async () => {
  const paths = await newEnv({ a: ["alpha==1.1.0", "tool-pkg"] });
  await converge(paths);
  const sp = join(
    paths.venv,
    "lib",
    (await Array.fromAsync(Deno.readDir(join(paths.venv, "lib"))))[0].name,
    "site-packages",
  );

  // An editor's save: a new file renamed over the old one.
  const init = join(sp, "alpha", "__init__.py");
  await Deno.writeTextFile(`${init}.tmp`, "# patched by hand\n__version__ = '1.1.0'\n");
  await Deno.rename(`${init}.tmp`, init);
  await Deno.remove(join(paths.venv, "bin", "toolcmd"));
  // A RECORD naming a path outside the venv (as a hostile wheel could): not followed, not reported.
  const record = join(sp, "alpha-1.1.0.dist-info", "RECORD");
  await Deno.writeTextFile(
    record,
    (await Deno.readTextFile(record)) +
      `../../../../../../../../../tmp/outside-${crypto.randomUUID()},sha256=x,5\n`,
  );

  const p = await plan(paths);
  assert.equal(p.actions.length, 1);
  assert.equal(
    p.actions[0].reason,
    "alpha: 1 file changed (alpha/__init__.py); tool-pkg: 1 file missing (../../../bin/toolcmd): " +
      "reinstall alpha, tool-pkg",
  );
  await applyPlan(paths, p, { providers, settings });
  assert.equal((await run(join(paths.venv, "bin", "toolcmd"), [])).stdout.trim(), "tool");
  assert.deepEqual((await plan(paths)).actions, []);
});

Deno.test("deep: content changed in place with the same size is found by its sha256", async () => {
  const paths = await newEnv({ a: ["alpha==1.1.0"] });
  await converge(paths);
  const lib = join(paths.venv, "lib");
  const sp = join(lib, (await Array.fromAsync(Deno.readDir(lib)))[0].name, "site-packages");
  const init = join(sp, "alpha", "__init__.py");
  const text = await Deno.readTextFile(init);
  using f = await Deno.open(init, { write: true });
  await f.write(new TextEncoder().encode(text.replace("1.1.0", "9.9.9")));
  f.close();

  const deep = await plan(paths, true);
  assert.equal(deep.actions[0]?.reason, "alpha: 1 file changed (alpha/__init__.py): reinstall alpha");
  await applyPlan(paths, deep, { providers, settings, deep: true });
  assert.equal(await Deno.readTextFile(init), text);
  assert.deepEqual((await plan(paths, true)).actions, []);
});

Deno.test("the last RECORD check is reused while no directory of recorded files changed; deep never reuses", async () => {
  const paths = await newEnv({ a: ["alpha==1.1.0"] });
  await converge(paths);
  const { findSitePackages, readInstalled } = await import("../../providers/packages/distinfo.ts");
  const { verifyRecordsCached } = await import("../../providers/packages/record.ts");
  const sp = await findSitePackages(paths.venv);
  const venv = await Deno.realPath(paths.venv);
  const snapshot = join(paths.state, "packages", "records.json");
  const check = async (deep = false) =>
    await verifyRecordsCached(venv, (await readInstalled(sp)).infos, snapshot, { deep });
  // Directories changed within the last 2 s are "racy" (coarse timestamps): wait that out, as a user would.
  await new Promise((r) => setTimeout(r, 2100));
  assert.equal((await check()).reused, false, "made by the apply just now: checked in full");
  assert.equal((await check()).reused, true, "nothing changed since: the last result stands");

  // The documented blind spot: an edit in place (same name, same directory) waits for --deep.
  const init = join(sp[0], "alpha", "__init__.py");
  await Deno.writeTextFile(init, "# edited in place\n", { append: true });
  assert.deepEqual((await check()).damaged, {});
  const deep = await check(true);
  assert.equal(deep.reused, false);
  assert.deepEqual(Object.keys(deep.damaged), ["alpha"]);

  // A file removed changes its directory: checked in full, and found.
  await Deno.remove(init);
  const after = await check();
  assert.equal(after.reused, false);
  assert.equal(after.damaged.alpha?.missing, 1);
});
