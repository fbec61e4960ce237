/**
 * Locking an installed set (an adopted venv, a snapshot's pips) with real uv on a local wheelhouse: the
 * installed versions are kept though newer ones exist, what nothing requires lands in the `user` group, the
 * temporary pins are gone from pyproject, and a version that conflicts with a requirement is named.
 */
import assert from "node:assert/strict";
import { testPython, useLocalUv } from "../../fixtures/tools.ts";
import { join } from "node:path";
import { parse } from "smol-toml";
import { buildWheelhouse, STANDARD_WHEELS, wheelhouseUvToml } from "../../fixtures/wheels.ts";
import { testSettings } from "../../fixtures/app.ts";
import { basePyproject } from "../../fixtures/env_skeleton.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { workspacePaths } from "../../reconcile/paths.ts";
import { type InstalledPackage, lockKeepingVersions } from "../../providers/packages/keep_versions.ts";
import { parseLock } from "../../providers/packages/lockfile.ts";
import { Uv } from "../../providers/packages/uv.ts";

await useLocalUv();

const project = (deps: string[], wheels: string) =>
  basePyproject("k").replace("dependencies = []", `dependencies = ${JSON.stringify(deps)}`) +
  wheelhouseUvToml(wheels);

/** lockKeepingVersions of a project with `deps` on the standard wheelhouse, as `installed` says the venv is. */
async function lockIn(tmp: string, deps: string[], installed: InstalledPackage[]) {
  const wheels = await buildWheelhouse(join(tmp, "wheels"), STANDARD_WHEELS);
  const python = await testPython();
  return await lockKeepingVersions({
    uv: await Uv.locate(workspacePaths(tmp), testSettings()),
    python: python.path,
    pythonVersion: python.minor,
    workDir: tmp,
    pyprojectText: project(deps, wheels),
    installed,
  });
}

Deno.test("installed versions are kept, extras go to the user group, no pins are left behind", async () => {
  await withTempDir(async (tmp) => {
    const r = await lockIn(tmp, ["beta"], [
      { name: "alpha", version: "1.0.0", requirement: "alpha==1.0.0" },
      { name: "beta", version: "1.0.0", requirement: "beta==1.0.0" },
      { name: "zeta-pkg", version: "3.0.0", requirement: "zeta-pkg==3.0.0" },
    ]);
    const versions = Object.fromEntries(parseLock(r.lockText).package.map((p) => [p.name, p.version]));
    assert.equal(versions.alpha, "1.0.0", "not the newest alpha 2.0.0");
    assert.equal(versions.beta, "1.0.0");
    assert.equal(versions["zeta-pkg"], "3.0.0");
    assert.deepEqual(r.user, ["zeta-pkg==3.0.0"]);
    assert.deepEqual(r.changed, []);
    // deno-lint-ignore no-explicit-any -- a test reads two keys
    const data = parse(r.pyprojectText) as any;
    assert.deepEqual({ ...data["dependency-groups"] }, { user: ["zeta-pkg==3.0.0"] });
    assert.equal(data.tool.uv["constraint-dependencies"], undefined, "the temporary pins are gone");
    assert.deepEqual(data.project.dependencies, ["beta"]);
  });
});

Deno.test("an installed version that conflicts with a requirement is not kept, and is named", async () => {
  await withTempDir(async (tmp) => {
    const r = await lockIn(tmp, ["alpha>=1.1", "gamma"], [
      { name: "alpha", version: "1.0.0", requirement: "alpha==1.0.0" },
      { name: "gamma", version: "1.0.0", requirement: "gamma==1.0.0" },
    ]);
    assert.deepEqual(r.changed.map((c) => [c.name, c.installed, c.locked]), [["alpha", "1.0.0", "2.0.0"]]);
    assert.match(r.changed[0].reason, /conflicts with a requirement/);
    assert.deepEqual(r.user, []);
  });
});
