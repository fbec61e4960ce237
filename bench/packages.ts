/**
 * Packages provider figures on a venv with ~100 distributions (offline wheelhouse): observe with a stamp
 * hit (no subprocess), observe with a stamp miss (trial `uv lock` in a copy), `uv lock --check`,
 * a no-op `uv sync --frozen`, reading dist-info alone, and interpreter discovery.
 */
import { join } from "node:path";
import { buildWheelhouse, fillerWheels, STANDARD_WHEELS, wheelhouseUvToml } from "../fixtures/wheels.ts";
import { readDesired } from "../reconcile/desired.ts";
import { envPaths, workspacePaths } from "../reconcile/paths.ts";
import { findSitePackages, readInstalled } from "../providers/packages/distinfo.ts";
import { packageProvider } from "../providers/packages/provider.ts";
import { findPython } from "../providers/packages/python.ts";
import { testPython, useLocalUv } from "../fixtures/tools.ts";
import { lockPython } from "../providers/packages/resolve.ts";
import { Uv } from "../providers/packages/uv.ts";
import { timeMedian as median } from "./stats.ts";
import { testSettings } from "../fixtures/app.ts";

const ms = (x: number) => `${x.toFixed(1)} ms`;

export async function benchPackages(): Promise<string[]> {
  const tmp = await Deno.makeTempDir({ prefix: "comfydock-bench-pkg-" });
  await useLocalUv();
  const { minor } = await testPython();
  try {
    const fillers = fillerWheels(100);
    const wheels = await buildWheelhouse(join(tmp, "wheels"), [...STANDARD_WHEELS, ...fillers]);
    const paths = envPaths(workspacePaths(join(tmp, "ws")), "bench");
    await Deno.mkdir(paths.cec, { recursive: true });
    await Deno.writeTextFile(
      paths.pyproject,
      `[project]\nname = "bench"\nversion = "0.1.0"\nrequires-python = ">=${minor}"\n` +
        `dependencies = ["beta", "gamma", "delta[fast]"]\n\n[dependency-groups]\n` +
        `fillers = [${fillers.map((f) => JSON.stringify(f.name)).join(", ")}]\n` + wheelhouseUvToml(wheels) +
        `\n[tool.comfydock]\ncomfyui_version = "v0"\ncomfyui_commit = "${
          "0".repeat(40)
        }"\npython_version = "${minor}"\n`,
    );
    const settings = testSettings();
    const ctx = { paths, settings, readOnly: true };
    const plan = async () => {
      const desired = await readDesired(paths);
      return packageProvider.diff(desired, await packageProvider.observe(desired, ctx)).actions;
    };
    const tx = {
      stagingDir: () => Deno.makeTempDir({ dir: tmp }),
      trash: async () => {},
      place: async () => {},
      created: async () => {},
      recordUndo: async () => {},
      log: () => {},
    };
    const tCreate = performance.now();
    for (const a of await plan()) await packageProvider.apply(a, tx, { ...ctx, readOnly: false });
    const createMs = performance.now() - tCreate;
    const sp = await findSitePackages(paths.venv);
    const dists = Object.keys((await readInstalled(sp)).dists).length;
    const uv = await Uv.locate(paths.workspace, settings);
    const py = await lockPython({ paths, settings }, await Deno.readTextFile(paths.pyproject));

    const readMs = await median(20, () => readInstalled(sp));
    const hitMs = await median(20, plan);
    const stamps = join(paths.state, "packages", "stamps.json");
    // Each miss records the stamp again (a current lock is remembered): drop it before every run.
    const missMs = await median(5, async () => {
      await Deno.remove(stamps);
      await plan();
    });
    const checkMs = await median(5, () => uv.lockIsCurrent(paths.cec, { python: py }));
    const syncMs = await median(5, () => uv.sync(paths.cec, paths.venv, { frozen: true }));
    const findMs = await median(5, () => findPython(settings.system, minor));
    return [
      `packages: venv with ${dists} dists; first create (venv + lock + sync) ${ms(createMs)}`,
      `packages: read dist-info METADATA: ${ms(readMs)}`,
      `packages: plan (readDesired + observe + diff), stamp hit, no subprocess: ${ms(hitMs)}`,
      `packages: plan, stamp miss (trial uv lock in a copy): ${ms(missMs)}`,
      `packages: uv lock --check (reference): ${ms(checkMs)}`,
      `packages: no-op uv sync --frozen --all-groups: ${ms(syncMs)}`,
      `packages: findPython(settings.system, "${minor}"): ${ms(findMs)}`,
    ];
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  for (const line of await benchPackages()) console.log(line);
}
