/**
 * GitOps (DESIGN §9): the desired state comes from a checkout of the repository that holds `.cec` folders (a
 * CI job's working copy, cleaned and replaced before every job), while the environment lives in the
 * machine's workspace, outside the checkout, and survives between jobs.
 *
 * - plan: the checkout's `.cec`, read where it is, planned against the environment under a read lock: the
 *   environment, its `.cec` and the checkout are left exactly as they were. An environment that does not
 *   exist yet is planned as an empty one, built in a scratch folder of the workspace that is removed after.
 * - apply: the first one creates the environment from a copy of the checkout's `.cec` (the import path);
 *   later ones bring the environment's own `.cec` to the checkout's files as one change (like `pull`: files
 *   written through `Session.change`, planned, applied, committed with the source revision in the message),
 *   so the environment's `.cec` history records each applied revision. Nothing is written into the checkout.
 * - `locked`: a uv.lock that is missing or out of date with pyproject.toml fails before anything changes.
 * - `approve`: the plan is shown to it before anything changes, and the plan being applied must be the same.
 */
import { join } from "node:path";
import { CdError } from "../lib/errors.ts";
import { exists, listFiles, removeIfExists, writeFileAtomic } from "../lib/fsx.ts";
import { joinSafe } from "../lib/safe_path.ts";
import { type DesiredState, readDesired } from "../reconcile/desired.ts";
import { actionDifferences } from "../reconcile/engine.ts";
import { type EnvPaths, withDesiredCec } from "../reconcile/paths.ts";
import type { Action, Plan } from "../reconcile/types.ts";
import type { PackagesAfter } from "../providers/packages/diff.ts";
import * as git from "../providers/git/git.ts";
import { type App, withSession } from "./session.ts";
import { cecStagingDir, createEnvironmentFromCec, dropStaging } from "./import.ts";
import { initWorkspace, newStagingPaths } from "./workspace.ts";
import { validateCec, type Validation } from "./validate.ts";

/** A `.cec` folder of a checkout: the desired state of one environment. */
export interface CheckoutCec {
  /** The folder (absolute). */
  dir: string;
  /** How messages and the environment's history name it: `envs/prod/.cec`. */
  label: string;
  /** `owner/repo@sha` (or the checkout's commit) it was read at, recorded in the environment's history. */
  revision: string | null;
}

export interface GitOpsOptions {
  /** `--locked`: refuse a uv.lock that is missing or out of date with pyproject.toml, before any change. */
  locked?: boolean;
  /** The desired state is someone else's (a pull request from a fork): see ObserveContext.untrusted. */
  untrusted?: boolean;
  /** Sees the plan before anything changes; throws to refuse it (approved plans). */
  approve?: (plan: Plan) => void;
}

export interface GitOpsApplyResult {
  /** What was planned and applied. */
  plan: Plan;
  applied: Action[];
  /** The environment's `.cec` commit recording the applied revision (null: its files were already those). */
  commit: string | null;
  /** The environment was created by this apply. */
  created: boolean;
}

/**
 * `--locked`: the plan may not re-lock. Throws LOCK_STALE (or LOCK_MISSING) naming the file and the fix; the
 * plan was made read-only, so nothing has changed yet.
 */
export function requireLocked(plan: Plan, desired: DesiredState): void {
  const packages = plan.actions.find((a) => a.type === "packages");
  if (!(packages?.after as PackagesAfter | null | undefined)?.relock) return;
  const fix = "run 'comfydock apply' locally (or 'uv lock') and commit uv.lock";
  const hint = `--locked (the Action's default) never re-locks: what is committed is what gets installed; ` +
    `nothing was changed`;
  if (desired.lockText === null) {
    throw new CdError("LOCK_MISSING", `${desired.paths.uvLock} is missing: ${fix}`, { hint });
  }
  throw new CdError("LOCK_STALE", `${desired.paths.uvLock} is out of date with pyproject.toml: ${fix}`, {
    hint,
  });
}

/**
 * Runs `fn` on an empty environment named `name` in a scratch folder of the workspace (never listed, removed
 * afterwards; swept by the next create or import if this process dies): the plan of an environment that
 * does not exist yet, or a validation without any environment.
 */
async function withScratchEnv<T>(app: App, name: string, fn: (paths: EnvPaths) => Promise<T>): Promise<T> {
  const scratch = await newStagingPaths(app.ws, name);
  try {
    return await fn({ ...scratch, name });
  } finally {
    await removeIfExists(scratch.root);
  }
}

/**
 * The plan of the checkout's `.cec` against environment `paths`; changes nothing. `exists: false`: there is
 * no such environment here yet, and the plan is the one its first apply would carry out.
 */
export async function planFromCheckout(
  app: App,
  paths: EnvPaths,
  cec: CheckoutCec,
  opts: GitOpsOptions = {},
): Promise<{ plan: Plan; desired: DesiredState; exists: boolean }> {
  const planIn = (target: EnvPaths) =>
    withSession(app, target, `plan ${cec.label}`, "read", async (s) => {
      const desired = await readDesired(withDesiredCec(target, cec.dir));
      const { plan } = await s.plan({ desired, untrusted: opts.untrusted });
      if (opts.locked) requireLocked(plan, desired);
      return { plan, desired };
    });
  if (await exists(paths.pyproject)) return { ...await planIn(paths), exists: true };
  return { ...await withScratchEnv(app, paths.name, planIn), exists: false };
}

/** Every file of the checkout's `.cec` (text, as a change writes it). */
async function checkoutFiles(cec: CheckoutCec): Promise<{ path: string; content: string }[]> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const rels = (await listFiles(cec.dir)).filter((r) => r !== ".git" && !r.startsWith(".git/"));
  const files: { path: string; content: string }[] = [];
  for (const rel of rels) {
    try {
      files.push({ path: rel, content: decoder.decode(await Deno.readFile(join(cec.dir, rel))) });
    } catch (e) {
      if (!(e instanceof TypeError)) throw e;
      throw new CdError("CEC_FILE_NOT_TEXT", `${cec.label}/${rel} is not UTF-8 text`, {
        hint: "a .cec holds text only (pyproject.toml, uv.lock, workflow JSON); remove the file from it",
      });
    }
  }
  return files;
}

function commitMessage(cec: CheckoutCec): string {
  return `apply ${cec.label}${cec.revision ? ` from ${cec.revision}` : ""}`;
}

/** Throws when the plan about to be applied is not the one that was checked (something moved meanwhile). */
function requireSame(checked: Plan, now: Plan): void {
  const diffs = actionDifferences(checked.actions, now.actions, "the plan checked before applying");
  if (diffs.length === 0) return;
  throw new CdError("PLAN_CHANGED", `the plan changed while it was being applied:\n${diffs.join("\n")}`, {
    hint: "something changed the environment meanwhile; nothing was applied: run the job again",
  });
}

/**
 * Makes environment `paths` what the checkout's `.cec` describes, creating it on first use. Refused up front
 * (nothing changed) by `locked` or `approve`; a failure rolls everything back.
 */
export async function applyFromCheckout(
  app: App,
  paths: EnvPaths,
  cec: CheckoutCec,
  opts: GitOpsOptions = {},
): Promise<GitOpsApplyResult> {
  if (!await exists(paths.pyproject)) return await createFromCheckout(app, paths, cec, opts);
  let shown: Plan | null = null;
  let checked: Plan | null = null;
  // The change path shows its plan and asks before applying: the answer is whether it is the plan checked.
  const gated: App = {
    ...app,
    showPlan: (p) => (shown = p),
    confirm: () => {
      if (checked && shown) requireSame(checked, shown);
      return Promise.resolve(true);
    },
  };
  return await withSession(gated, paths, `apply ${cec.label}`, "write", async (s) => {
    const desired = await readDesired(withDesiredCec(paths, cec.dir));
    checked = (await s.plan({ desired })).plan;
    if (opts.locked) requireLocked(checked, desired);
    opts.approve?.(checked);
    const files: { path: string; content: string | null }[] = await checkoutFiles(cec);
    // What the checkout no longer has goes from the environment's .cec too.
    const kept = new Set(files.map((f) => f.path));
    for (const rel of await git.lsFiles(paths.cec, "HEAD")) {
      if (!kept.has(rel)) files.push({ path: rel, content: null });
    }
    const r = await s.change({
      message: commitMessage(cec),
      apply: true,
      edit: () => ({ edits: [], files }),
    });
    if (r.plan) return { plan: r.plan, applied: r.applied, commit: r.commit, created: false };
    // The environment's .cec already holds these files: what is left is the disk.
    const { plan } = await s.plan();
    requireSame(checked, plan);
    const { applied } = await s.apply(plan);
    return { plan, applied, commit: null, created: false };
  });
}

async function createFromCheckout(
  app: App,
  paths: EnvPaths,
  cec: CheckoutCec,
  opts: GitOpsOptions,
): Promise<GitOpsApplyResult> {
  const { plan } = await planFromCheckout(app, paths, cec, opts);
  opts.approve?.(plan);
  // A fresh runner: the workspace is made here (safe to re-run), so the CLI finds it there afterwards.
  await initWorkspace(app.ws.root);
  const staging = await cecStagingDir(app.ws);
  try {
    const copy = join(staging, "cec");
    // The checkout is someone's desired state: its file names go through the path door, as a change's do.
    for (const f of await checkoutFiles(cec)) {
      await writeFileAtomic(joinSafe(copy, f.path, "a .cec file"), f.content);
    }
    const r = await createEnvironmentFromCec(app, paths.name, copy, {
      source: { type: "git", url: cec.label, commit: cec.revision },
      commitMessage: commitMessage(cec),
      devNodesDir: null,
      modelsDir: null,
      ask: false,
      logTitle: `apply (created) ${cec.label}${cec.revision ? ` from ${cec.revision}` : ""}`,
    });
    if (r.remaining && r.remaining.actions.length > 0) {
      throw new CdError(
        "APPLY_INCOMPLETE",
        `environment '${paths.name}' was created but still differs from ${cec.label}: ` +
          r.remaining.actions.map((a) => a.address).join(", "),
        { hint: `run 'comfydock -e ${paths.name} plan' on this machine to see why` },
      );
    }
    const commit = await git.revParse(paths.cec, "HEAD");
    return { plan, applied: plan.actions, commit, created: true };
  } finally {
    await dropStaging(staging);
  }
}

/** `validate` of a checkout's `.cec` with no environment (hosted runners): nothing outside a scratch folder. */
export async function validateCheckout(
  app: App,
  name: string,
  cec: CheckoutCec,
  opts: { offline?: boolean; noBuild?: boolean } = {},
): Promise<Validation> {
  return await withScratchEnv(
    app,
    name,
    (scratch) =>
      validateCec({ paths: withDesiredCec(scratch, cec.dir), settings: app.settings }, {
        offline: opts.offline,
        noBuild: opts.noBuild,
        log: app.log,
      }),
  );
}
