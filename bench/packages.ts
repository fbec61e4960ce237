/**
 * Packages provider figures.
 *
 * 1. A no-op plan on an environment shaped like a real one: 200 distributions with the file counts of a
 *    real ComfyUI + 8 node packs venv (measured: 52,983 RECORD lines, from 15,389 files down to 7), built
 *    offline from fixture wheels and converged with the CLI. Timed in process (the engine, every
 *    provider) and as the CLI, then with `--deep` (content hashes). This is the figure issue 18 bounds
 *    (RECORD checks within 1.5x of a plan that read METADATA only).
 * 2. The provider's parts on that venv: reading METADATA, the RECORD check, a stamp hit, a trial lock.
 *
 * `COMFYDOCK_BENCH_VENV=/path/to/.venv` adds the RECORD check of a real venv (e.g. one built from PyPI).
 */
import { join } from "node:path";
import { cli } from "../fixtures/cli.ts";
import { useLocalUv } from "../fixtures/tools.ts";
import { buildComfyUIRepo } from "../fixtures/comfyui_repo.ts";
import { buildWheelhouse, STANDARD_WHEELS, wheelhouseUvConfig, type WheelSpec } from "../fixtures/wheels.ts";
import { testApp, testSettings } from "../fixtures/app.ts";
import { readDesired } from "../reconcile/desired.ts";
import { makePlan } from "../reconcile/engine.ts";
import { findSitePackages, readInstalled } from "../providers/packages/distinfo.ts";
import { observePackagesDetailed } from "../providers/packages/provider.ts";
import { verifyRecords } from "../providers/packages/record.ts";
import { createEnvironment } from "../workspace/create.ts";
import { envPaths, workspacePaths } from "../reconcile/paths.ts";
import { loadProviders } from "../workspace/providers.ts";
import { initWorkspace } from "../workspace/workspace.ts";
import { median, record, timeMedian } from "./stats.ts";

/** RECORD lines per distribution of a real ComfyUI v0.3.64-era venv with 8 node packs (torch from PyPI). */
export const REAL_FILE_COUNTS = (
  "15389 11616 2961 1706 1573 1427 1372 1046 1010 825 667 635 603 603 519 514 392 390 352 338 326 311 " +
  "279 278 263 225 216 203 195 179 177 177 176 168 168 153 151 147 143 141 136 135 114 107 107 106 97 " +
  "96 94 90 88 88 87 78 77 75 69 66 66 65 64 63 62 59 56 55 53 51 47 47 46 46 46 45 44 44 43 42 42 41 " +
  "40 39 39 38 37 35 34 33 33 33 33 33 32 32 31 30 30 29 29 29 28 28 28 26 26 25 24 24 24 24 23 23 23 " +
  "22 21 21 21 20 20 19 19 19 19 19 18 18 18 18 18 18 18 17 17 17 16 16 16 16 15 15 15 15 15 14 14 14 " +
  "14 14 13 13 13 13 13 13 13 13 13 12 12 12 12 12 12 12 12 11 11 11 11 10 10 10 10 10 10 10 10 10 9 9 " +
  "9 9 9 9 9 9 9 9 9 9 8 8 8 8 8 8 7 7 7 7"
).split(" ").map(Number);

/** Wheels with those file counts (each wheel has 4 files of its own: __init__, METADATA, WHEEL, RECORD). */
export function realisticWheels(): WheelSpec[] {
  return REAL_FILE_COUNTS.map((n, i) => ({
    name: `bench-dist-${i}`,
    version: "1.0.0",
    fileCount: Math.max(0, n - 4),
  }));
}

const ms = (x: number) => `${x.toFixed(0)} ms`;

/** The CLI as a subprocess (fixtures/cli.ts), timed; exit 2 ("changes") is not a failure. */
async function timedCli(args: string[], env: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  const r = await cli(args, { env });
  if (r.code !== 0 && r.code !== 2) throw new Error(`comfydock ${args.join(" ")}: ${r.stderr}`);
  return performance.now() - t0;
}

export async function benchPackages(): Promise<string[]> {
  const tmp = await Deno.makeTempDir({ prefix: "comfydock-bench-pkg-" });
  await useLocalUv();
  try {
    const t0 = performance.now();
    const wheelSpecs = realisticWheels();
    const wheels = await buildWheelhouse(join(tmp, "wheels"), [...STANDARD_WHEELS, ...wheelSpecs]);
    const comfy = await buildComfyUIRepo(join(tmp, "ComfyUI"));
    const home = join(tmp, "home");
    await initWorkspace(home);
    const ws = workspacePaths(home);
    await createEnvironment(testApp(ws), "big", {
      comfyuiUrl: comfy.url,
      torchBackend: "cpu",
      use: true,
      uvSettings: wheelhouseUvConfig(wheels),
    });
    const paths = envPaths(ws, "big");
    await Deno.writeTextFile(
      paths.pyproject,
      (await Deno.readTextFile(paths.pyproject)) +
        `\n[dependency-groups]\nuser = [${wheelSpecs.map((w) => JSON.stringify(w.name)).join(", ")}]\n`,
    );
    const env: Record<string, string> = {
      COMFYDOCK_HOME: home,
      UV_PYTHON_DOWNLOADS: "never",
      PATH: Deno.env.get("PATH") ?? "",
      ...(Deno.env.get("COMFYDOCK_UV") ? { COMFYDOCK_UV: Deno.env.get("COMFYDOCK_UV")! } : {}),
    };
    await timedCli(["apply", "--yes"], env);
    const built = (performance.now() - t0) / 1000;
    const settings = testSettings();
    const providers = await loadProviders();
    const sp = await findSitePackages(paths.venv);
    const installed = await readInstalled(sp);
    const dists = Object.keys(installed.dists).length;

    const inProcess = await timeMedian(5, async () => {
      const { plan } = await makePlan(paths, { providers, settings });
      if (plan.actions.length) throw new Error(`not a no-op plan: ${JSON.stringify(plan.actions)}`);
    });
    const times: number[] = [];
    for (let i = 0; i < 5; i++) times.push(await timedCli(["plan", "--detailed-exitcode"], env));
    const viaCli = median(times);
    const deep = await timedCli(["plan", "--deep", "--detailed-exitcode"], env);

    const desired = await readDesired(paths);
    const venvReal = await Deno.realPath(paths.venv);
    const readMs = await timeMedian(10, () => readInstalled(sp));
    let files = 0;
    const verifyMs = await timeMedian(5, async () => {
      files = (await verifyRecords(venvReal, installed.infos)).files;
    });
    const hitMs = await timeMedian(10, () => observePackagesDetailed(desired, { paths, settings }));
    const stamps = join(paths.state, "packages", "stamps.json");
    // Each miss records the stamp again (a current lock is remembered): drop it before every run.
    const missMs = await timeMedian(5, async () => {
      await Deno.remove(stamps);
      await observePackagesDetailed(desired, { paths, settings });
    });
    record("packages.dists", dists);
    record("packages.files", files);
    record("packages.noop_in_process_ms", inProcess);
    record("packages.noop_cli_ms", viaCli);
    record("packages.deep_cli_ms", deep);
    record("packages.read_metadata_ms", readMs);
    record("packages.record_check_ms", verifyMs);
    record("packages.plan_stamp_hit_ms", hitMs);
    record("packages.plan_stamp_miss_ms", missMs);
    const lines = [
      `packages: environment with ${dists} dists, ${files} recorded files, built and converged in ${
        built.toFixed(1)
      } s`,
      `packages: no-op plan in process ${ms(inProcess)}, as the CLI ${ms(viaCli)} (median of 5); ` +
      `plan --deep as the CLI ${ms(deep)}`,
      `packages: read METADATA ${ms(readMs)}, RECORD check (exists + size) ${ms(verifyMs)}, ` +
      `observe with a stamp hit ${ms(hitMs)}, with a trial uv lock ${ms(missMs)}`,
    ];
    const realVenv = Deno.env.get("COMFYDOCK_BENCH_VENV");
    if (realVenv) {
      const realSp = await findSitePackages(realVenv);
      const real = await readInstalled(realSp);
      const root = await Deno.realPath(realVenv);
      let n = 0;
      const quick = await timeMedian(3, async () => {
        n = (await verifyRecords(root, real.infos)).files;
      });
      const t = performance.now();
      await verifyRecords(root, real.infos, { deep: true });
      record("packages.real_dists", Object.keys(real.dists).length);
      record("packages.real_files", n);
      record("packages.real_record_check_ms", quick);
      record("packages.real_deep_s", (performance.now() - t) / 1000);
      lines.push(
        `packages: real venv ${realVenv}: ${
          Object.keys(real.dists).length
        } dists, ${n} files: RECORD check ` +
          `${ms(quick)}, with hashes ${ms(performance.now() - t)}`,
      );
    }
    return lines;
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  for (const line of await benchPackages()) console.log(line);
}
