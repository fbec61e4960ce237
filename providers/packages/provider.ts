/**
 * The `packages` resource: the venv holds exactly what `.cec/uv.lock` says, and uv.lock is current with
 * `.cec/pyproject.toml`.
 *
 * observe: the venv read from disk (pyvenv.cfg, dist-info METADATA; no subprocess), every installed file
 *   checked against its distribution's RECORD (record.ts: existence and size; hashes with `deep`), lock
 *   freshness from a
 *   stamp (sha256 of pyproject's dependency-relevant tables + uv.lock, written whenever ComfyDock locked or
 *   synced that pair; no subprocess), and only on a stamp miss (fresh clone, git pull, hand edit) a trial
 *   `uv lock` in a copy beside .cec, which both answers "stale?" and gives the packages the plan will install.
 * apply: journal a custom undo step (the uv.lock before, and the pyproject+lock the venv was last synced
 *   from), create the venv if needed, re-lock in a copy and write .cec/uv.lock atomically, `uv sync --frozen`.
 * undo: restore the previous uv.lock and re-sync the venv to the previous lock with `--frozen`.
 *
 * Files under `<env>/.comfydock/packages/`: `stamps.json`, `records.json` (what the last RECORD check saw),
 * `synced/{pyproject.toml,uv.lock}`, `undo/<id>/`.
 */
import { join } from "node:path";
import { parse } from "smol-toml";
import { z } from "zod";
import { stableStringify } from "../../reconcile/fingerprint.ts";
import { errorMessage, isCdError } from "../../lib/errors.ts";
import {
  exists,
  readJsonIfExists,
  readTextIfExists,
  removeIfExists,
  sha256Hex,
  writeFileAtomic,
} from "../../lib/fsx.ts";
import type { DesiredState } from "../../reconcile/desired.ts";
import type {
  Action,
  EnvContext,
  ObserveContext,
  Provider,
  Transaction,
  UndoStep,
} from "../../reconcile/types.ts";
import type { EnvPaths } from "../../reconcile/paths.ts";
import type { Progress } from "../../lib/progress.ts";
import { diffPackages, packageNotes, type PackagesAfter, type PackagesObserved } from "./diff.ts";
import { inspectVenv, readInstalled } from "./distinfo.ts";
import { parseLock, requiredPackages } from "./lockfile.ts";
import { markerEnv } from "./markers.ts";
import { findPython } from "./python.ts";
import { verifyRecordsCached } from "./record.ts";
import { relock, withProjectCopy } from "./resolve.ts";
import { Uv } from "./uv.ts";

const MAX_STAMPS = 20;
const MAX_UNDO_DIRS = 10;

function stateDir(paths: EnvPaths): string {
  return join(paths.state, "packages");
}

/**
 * What uv reads from pyproject (project deps, groups, [tool.uv]) as canonical JSON: two texts with the same
 * input lock the same, whatever their comments, layout or other tables.
 */
export function uvInput(pyprojectText: string): string {
  // deno-lint-ignore no-explicit-any -- arbitrary TOML; only its uv-relevant parts are kept
  const data = parse(pyprojectText) as any;
  const p = data.project ?? {};
  return stableStringify({
    project: {
      name: p.name,
      "requires-python": p["requires-python"],
      dependencies: p.dependencies,
      "optional-dependencies": p["optional-dependencies"],
    },
    "dependency-groups": data["dependency-groups"],
    uv: data.tool?.uv,
  });
}

/** Hash of the uv input together with the lock text. */
export function lockStamp(pyprojectText: string, lockText: string): string {
  return sha256Hex(uvInput(pyprojectText) + "\n" + lockText);
}

/**
 * Records that `lockText` is what uv locks from `pyprojectText` (the change path has just locked it), so
 * the plan that follows needs no second trial lock.
 */
export async function rememberFreshLock(
  paths: EnvPaths,
  pyprojectText: string,
  lockText: string,
): Promise<void> {
  await addStamp(paths, lockStamp(pyprojectText, lockText));
}

async function stampKnown(paths: EnvPaths, key: string): Promise<boolean> {
  const stamps = await readJsonIfExists<string[]>(join(stateDir(paths), "stamps.json")).catch(() => null);
  return Array.isArray(stamps) && stamps.includes(key);
}

async function addStamp(paths: EnvPaths, key: string): Promise<void> {
  const file = join(stateDir(paths), "stamps.json");
  const stamps = (await readJsonIfExists<string[]>(file).catch(() => null)) ?? [];
  const next = [key, ...stamps.filter((s) => s !== key)].slice(0, MAX_STAMPS);
  await writeFileAtomic(file, JSON.stringify(next));
}

/** Remembers the pyproject+lock the venv now matches (for undo) and that this pair is consistent. */
async function recordSynced(paths: EnvPaths, pyprojectText: string, lockText: string): Promise<void> {
  const dir = join(stateDir(paths), "synced");
  await writeFileAtomic(join(dir, "pyproject.toml"), pyprojectText);
  await writeFileAtomic(join(dir, "uv.lock"), lockText);
  await addStamp(paths, lockStamp(pyprojectText, lockText));
}

/** How lock freshness was decided; kept out of the observed data so the plan fingerprint stays stable. */
export type LockCheck = "stamp" | "uv" | "none";

async function observePackages(desired: DesiredState, ctx: ObserveContext): Promise<PackagesObserved> {
  return (await observePackagesDetailed(desired, ctx)).observed;
}

export async function observePackagesDetailed(
  desired: DesiredState,
  ctx: Omit<ObserveContext, "readOnly">,
): Promise<{ observed: PackagesObserved; lockCheckedBy: LockCheck }> {
  const { paths } = ctx;
  const wanted = desired.pyproject.tool.comfydock.python_version;
  const venv = await inspectVenv(paths.venv);
  const { dists, broken, infos } = venv.state === "ok"
    ? await readInstalled(venv.sitePackages)
    : { dists: {}, broken: [], infos: [] };
  const { damaged, shared } = venv.state === "ok"
    ? await verifyRecordsCached(
      await Deno.realPath(paths.venv),
      infos,
      join(stateDir(paths), "records.json"),
      {
        deep: ctx.deep,
      },
    )
    : { damaged: {}, shared: {} };
  const usable = venv.state === "ok" && venv.python !== undefined &&
    (venv.python === wanted || venv.python.startsWith(`${wanted}.`));

  let python: PackagesObserved["python"] = null;
  if (!usable) {
    python = await findPython(ctx.settings.system, wanted).catch((e) => ({ error: errorMessage(e) }));
  }

  let lock: PackagesObserved["lock"] = "missing";
  let lockCheckedBy: LockCheck = "none";
  let unchecked: string | null = null;
  let targetLock = desired.lockText;
  const stamp = desired.lockText === null ? null : lockStamp(desired.pyprojectText, desired.lockText);
  if (stamp !== null && await stampKnown(paths, stamp)) {
    lock = "current";
    lockCheckedBy = "stamp";
  } else {
    // Trial lock in a copy: same answer as `uv lock --check` (from the desired lock, which may be a pull
    // request's rather than the environment's), plus the lock the plan would install.
    try {
      targetLock = await relock(ctx, desired.pyprojectText, {
        lockText: desired.lockText,
        noBuild: ctx.untrusted,
      });
    } catch (e) {
      if (!(isCdError(e) && e.code === "NO_BUILD_BLOCKED")) throw e;
      // Untrusted mode: what cannot be locked without building is reported, not built.
      unchecked = e.message;
      targetLock = desired.lockText;
    }
    if (desired.lockText !== null && unchecked === null) {
      lock = targetLock === desired.lockText ? "current" : "stale";
      lockCheckedBy = "uv";
      // A cache, not state: the next plan over the same pair skips the trial lock.
      if (lock === "current" && stamp !== null) await addStamp(paths, stamp).catch(() => {});
    }
  }
  const envVersion = usable ? venv.python! : python && "version" in python ? python.version : wanted;
  const required = requiredPackages(parseLock(targetLock ?? "", paths.uvLock), markerEnv(envVersion));
  const target = Object.fromEntries(Object.entries(required).map(([n, p]) => [n, p.version]));
  const observed: PackagesObserved = {
    venv: { state: venv.state, problem: venv.problem ?? null, python: venv.python ?? null },
    lock,
    target,
    installed: dists,
    broken,
    damaged,
    shared,
    python,
    unchecked,
  };
  return { observed, lockCheckedBy };
}

async function newUndoDir(paths: EnvPaths): Promise<string> {
  const root = join(stateDir(paths), "undo");
  await Deno.mkdir(root, { recursive: true });
  const old = (await Array.fromAsync(Deno.readDir(root))).map((e) => e.name).sort();
  for (const name of old.slice(0, Math.max(0, old.length - MAX_UNDO_DIRS + 1))) {
    await removeIfExists(join(root, name));
  }
  const dir = join(
    root,
    `${new Date().toISOString().replace(/[:.]/g, "-")}-${crypto.randomUUID().slice(0, 8)}`,
  );
  await Deno.mkdir(dir);
  return dir;
}

interface UndoData {
  [k: string]: string | boolean;
  dir: string;
  /** `dir/uv.lock` holds .cec/uv.lock as it was before the action (false: there was none). */
  hadLock: boolean;
  /** `dir/synced/` holds the pyproject+lock the venv was synced from (re-sync to it on undo). */
  resync: boolean;
}

async function prepareUndo(paths: EnvPaths, resync: boolean): Promise<UndoData> {
  const dir = await newUndoDir(paths);
  const lockBefore = await readTextIfExists(paths.uvLock);
  if (lockBefore !== null) await writeFileAtomic(join(dir, "uv.lock"), lockBefore);
  const synced = join(stateDir(paths), "synced");
  let canResync = false;
  if (resync && await exists(join(synced, "uv.lock")) && await exists(join(synced, "pyproject.toml"))) {
    await Deno.copyFile(join(synced, "uv.lock"), join(dir, "synced.uv.lock"));
    await Deno.copyFile(join(synced, "pyproject.toml"), join(dir, "synced.pyproject.toml"));
    canResync = true;
  }
  return { dir, hadLock: lockBefore !== null, resync: canResync };
}

async function applyPackages(
  action: Action,
  tx: Transaction,
  ctx: EnvContext & Pick<ObserveContext, "progress">,
): Promise<void> {
  const { paths } = ctx;
  const after = action.after as PackagesAfter;
  const uv = await Uv.locate(paths.workspace, ctx.settings);
  const recreate = action.kind === "create" || action.kind === "replace";
  const undo = await prepareUndo(paths, !recreate);
  await tx.recordUndo({ op: "custom", type: "packages", data: undo });
  if (recreate) {
    const python = await findPython(ctx.settings.system, after.python);
    // `replace`, or a half-made venv left by a crashed apply: keep the old one restorable in the trash.
    if (await exists(paths.venv)) await tx.trash(paths.venv);
    await tx.created(paths.venv);
    tx.log(`creating venv with Python ${python.version} (${python.path})`);
    await uv.venv(paths.venv, python.path);
  }
  const pyprojectText = await Deno.readTextFile(paths.pyproject);
  let lockText = await readTextIfExists(paths.uvLock);
  if (after.relock || lockText === null) {
    const label = "locking Python requirements (uv lock)";
    const fresh = await relock(ctx, pyprojectText, { uv, progress: ctx.progress, label });
    if (fresh !== lockText) await writeFileAtomic(paths.uvLock, fresh);
    lockText = fresh;
  }
  if (after.refresh?.length) {
    tx.log(`uv cache clean ${after.refresh.join(" ")} (their files were changed in place)`);
    await uv.cacheClean(after.refresh);
  }
  await syncHealing(uv, paths, after, tx, ctx.progress);
  await recordSynced(paths, pyprojectText, lockText);
}

/**
 * `uv sync` of the lock, reinstalling the damaged distributions. uv's `--reinstall-package` implies a refresh,
 * so it downloads each wheel again (torch: ~850 MB) although uv's cache still holds its files: a file missing
 * from the venv is gone from the venv only. So those are reinstalled from the cache alone (which also heals a
 * machine that cannot reach its index); a wheel the cache lacks fails that attempt before the venv is
 * touched, and they join the download. Distributions changed in place (`refresh`) had their cache entries
 * dropped above: they are always downloaded.
 */
async function syncHealing(
  uv: Uv,
  paths: EnvPaths,
  after: PackagesAfter,
  tx: Transaction,
  progress: Progress | undefined,
): Promise<void> {
  const download = after.reinstall.filter((p) => after.refresh.includes(p));
  const fromCache = after.reinstall.filter((p) => !after.refresh.includes(p));
  if (fromCache.length) {
    try {
      await uv.sync(paths.cec, paths.venv, { frozen: true, reinstall: fromCache, offline: true, progress });
      tx.log(`reinstalled ${fromCache.join(", ")} from uv's cache`);
      if (!download.length) return;
    } catch (e) {
      if (!isCdError(e)) throw e;
      tx.log(`${fromCache.join(", ")}: not all in uv's cache, downloading`);
      download.push(...fromCache);
    }
  }
  await uv.sync(paths.cec, paths.venv, { frozen: true, reinstall: download, progress });
}

export async function undoPackages(
  step: Extract<UndoStep, { op: "custom" }>,
  ctx: EnvContext,
): Promise<void> {
  const { paths } = ctx;
  const d = step.data as UndoData;
  if (d.hadLock) await writeFileAtomic(paths.uvLock, await Deno.readTextFile(join(d.dir, "uv.lock")));
  else await removeIfExists(paths.uvLock);
  if (!d.resync || (await inspectVenv(paths.venv)).state !== "ok") return;
  const pyprojectText = await Deno.readTextFile(join(d.dir, "synced.pyproject.toml"));
  const lockText = await Deno.readTextFile(join(d.dir, "synced.uv.lock"));
  const uv = await Uv.locate(paths.workspace, ctx.settings);
  await withProjectCopy(
    paths,
    { "pyproject.toml": pyprojectText, "uv.lock": lockText },
    (dir) => uv.sync(dir, paths.venv, { frozen: true }),
  );
  await recordSynced(paths, pyprojectText, lockText);
}

export const packageProvider: Provider<PackagesObserved> = {
  type: "packages",
  observe: (desired: DesiredState, ctx: ObserveContext) => observePackages(desired, ctx),
  payload: z.object({
    kind: z.enum(["create", "update", "replace"]),
    before: z.unknown(),
    after: z.object({
      python: z.string(),
      relock: z.boolean(),
      recreate: z.boolean(),
      reinstall: z.array(z.string()),
      refresh: z.array(z.string()),
      packages: z.number(),
    }),
  }),
  diff: (desired: DesiredState, observed: PackagesObserved) => ({
    actions: diffPackages(desired.pyproject.tool.comfydock.python_version, observed),
    notes: packageNotes(observed),
  }),
  apply: (action: Action, tx: Transaction, ctx: ObserveContext) => applyPackages(action, tx, ctx),
  undo: (step, ctx) => undoPackages(step, ctx),
};
