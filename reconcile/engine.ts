/**
 * Plan and apply (DESIGN §1, §5, §6). makePlan reads `.cec` and the disk and diffs them with pure functions;
 * applyPlan carries a plan out under the environment's lock, journaled, undone in reverse on failure.
 */
import { CdError, errorMessage } from "../lib/errors.ts";
import { exists, readTextIfExists } from "../lib/fsx.ts";
import { commit, isRepo } from "../providers/git/git.ts";
import type { EnvPaths } from "../workspace/paths.ts";
import { type DesiredState, readDesired } from "./desired.ts";
import { fingerprint } from "./fingerprint.ts";
import { Journal, pruneTrash } from "./journal.ts";
import { acquireLock, describeLock, type HeldLock, inspectLock } from "./lock.ts";
import { loadProviders } from "./providers.ts";
import { JournaledTransaction, rollBack } from "./transaction.ts";
import {
  type Action,
  APPLY_ORDER,
  type Json,
  type ObserveContext,
  type Plan,
  type Provider,
} from "./types.ts";

export interface EngineOptions {
  /** Providers to use (tests); default: every resource kind of reconcile/providers.ts. */
  providers?: Provider[];
  /** Progress sink for long steps (the CLI passes lib/ui.ts step). */
  log?: (line: string) => void;
  /** See ObserveContext.force. */
  force?: boolean;
}

export interface PlanOptions extends EngineOptions {
  /** Only actions whose address is one of these, or starts with one of these followed by '.'. */
  targets?: string[];
}

async function providersOf(opts: EngineOptions): Promise<Provider[]> {
  return opts.providers ?? await loadProviders();
}

function matchesTarget(address: string, targets?: string[]): boolean {
  if (!targets || targets.length === 0) return true;
  return targets.some((t) => address === t || address.startsWith(`${t}.`));
}

async function observeAll(
  desired: DesiredState,
  providers: Provider[],
  ctx: ObserveContext,
): Promise<Map<Provider, Json>> {
  const observed = new Map<Provider, Json>();
  // Observation is read-only and independent per kind: run the kinds in parallel.
  await Promise.all(providers.map(async (p) => observed.set(p, await p.observe(desired, ctx))));
  return observed;
}

/** The pure part: desired + observed -> ordered actions and notes. */
export function diffAll(
  desired: DesiredState,
  observed: Map<Provider, Json>,
  targets?: string[],
): { actions: Action[]; notes: string[] } {
  const actions: Action[] = [];
  const notes: string[] = [];
  for (const [p, o] of observed) {
    actions.push(...p.diff(desired, o).filter((a) => matchesTarget(a.address, targets)));
    notes.push(...(p.notes?.(desired, o) ?? []));
  }
  const rank = (a: Action) => APPLY_ORDER.indexOf(a.type);
  actions.sort((a, b) => rank(a) - rank(b) || (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  return { actions, notes };
}

async function computePlan(
  paths: EnvPaths,
  providers: Provider[],
  targets?: string[],
  force?: boolean,
): Promise<{ plan: Plan; desired: DesiredState }> {
  const desired = await readDesired(paths);
  const ctx: ObserveContext = { paths, readOnly: true, force };
  const observed = await observeAll(desired, providers, ctx);
  const { actions, notes } = diffAll(desired, observed, targets);
  const plan: Plan = {
    format_version: 1,
    environment: paths.name,
    created_at: new Date().toISOString(),
    fingerprints: {
      desired: desired.fingerprint,
      observed: fingerprint(providers.map((p) => [p.type, observed.get(p) ?? null])),
    },
    actions,
    notes,
  };
  return { plan, desired };
}

/**
 * Finishes what a crashed apply left: if a journal exists and its writer is gone, roll it back.
 * Returns a human sentence when something was recovered.
 */
export async function recover(
  paths: EnvPaths,
  opts: EngineOptions & { forceUnlock?: boolean } = {},
): Promise<string | null> {
  const lock = await inspectLock(paths.state);
  const journal = await Journal.load(paths.state);
  if (lock.state === "held" && !opts.forceUnlock) {
    throw new CdError("ENV_LOCKED", `environment '${paths.name}' is locked by ${describeLock(lock.info)}`, {
      hint: "wait for it to finish; if that process is gone, run 'comfydock repair --force-unlock'",
    });
  }
  if (!journal && lock.state === "free") return null;
  const held = await acquireLock(paths.state, "repair", { takeStale: true, force: opts.forceUnlock });
  try {
    if (!journal) {
      return `removed a stale lock left by ${lock.state !== "free" ? describeLock(lock.info) : "?"}`;
    }
    const providers = await providersOf(opts);
    const byType = new Map<string, Provider>(providers.map((p) => [p.type, p]));
    const n = await rollBack(journal, byType, { paths, readOnly: false });
    return `rolled back an interrupted apply (started ${journal.data.started_at}): ${n} action(s) undone`;
  } finally {
    await held.release();
  }
}

export async function makePlan(
  paths: EnvPaths,
  opts: PlanOptions = {},
): Promise<{ plan: Plan; desired: DesiredState }> {
  const recovered = await recover(paths, opts);
  if (recovered) opts.log?.(recovered);
  return computePlan(paths, await providersOf(opts), opts.targets, opts.force);
}

function parseFault(): { index: number; mode: "error" | "exit" } | null {
  const raw = Deno.env.get("COMFYDOCK_FAULT");
  if (!raw) return null;
  const m = /^(\d+):(error|exit)$/.exec(raw);
  if (!m) {
    throw new CdError("BAD_FAULT", `COMFYDOCK_FAULT='${raw}' is not '<action-index>:error|exit'`, {
      hint: "unset COMFYDOCK_FAULT (it is for tests)",
    });
  }
  return { index: Number(m[1]), mode: m[2] as "error" | "exit" };
}

/**
 * An apply that re-locked packages changed `.cec/uv.lock`: commit it (DESIGN §6), so `.cec` stays the
 * reviewed history of the environment and a later rollback does not find "uncommitted edits" it didn't make.
 * Only uv.lock: the user's own uncommitted edits of `.cec` stay theirs to commit.
 */
async function commitLockIfChanged(paths: EnvPaths, lockBefore: string | null): Promise<void> {
  if (await readTextIfExists(paths.uvLock) === lockBefore) return;
  if (await isRepo(paths.cec)) await commit(paths.cec, "apply: re-lock uv.lock", { paths: ["uv.lock"] });
}

export interface ApplyResult {
  applied: Action[];
  /** Where replaced or removed things went (kept for the last few applies). */
  trashDir: string | null;
}

/**
 * Applies a plan. The plan must still be current: it is refused as stale if `.cec` or the disk changed since
 * it was made (so applying a saved plan twice is refused the second time).
 */
export async function applyPlan(paths: EnvPaths, plan: Plan, opts: EngineOptions = {}): Promise<ApplyResult> {
  if (plan.environment !== paths.name) {
    throw new CdError(
      "PLAN_WRONG_ENV",
      `the plan is for environment '${plan.environment}', not '${paths.name}'`,
      {
        hint: `run with -e ${plan.environment}, or make a new plan for '${paths.name}'`,
      },
    );
  }
  const recovered = await recover(paths, opts);
  if (recovered) opts.log?.(recovered);
  const providers = await providersOf(opts);
  const lock: HeldLock = await acquireLock(paths.state, "apply");
  try {
    // Fingerprints cover the whole desired and observed state, whatever --target the plan was made with.
    const { plan: now, desired } = await computePlan(paths, providers, undefined, opts.force);
    if (now.fingerprints.desired !== plan.fingerprints.desired) {
      throw new CdError("PLAN_STALE", "Saved plan is stale: .cec changed since the plan was made", {
        hint: "run 'comfydock plan' again and review the new plan",
      });
    }
    if (now.fingerprints.observed !== plan.fingerprints.observed) {
      throw new CdError(
        "PLAN_STALE",
        "Saved plan is stale: the environment on disk changed since the plan was made",
        {
          hint: "run 'comfydock plan' again and review the new plan",
        },
      );
    }
    if (plan.actions.length === 0) return { applied: [], trashDir: null };
    const result = await runActions(paths, plan.actions, providers, opts);
    await commitLockIfChanged(paths, desired.lockText);
    return result;
  } finally {
    await lock.release();
  }
}

async function runActions(
  paths: EnvPaths,
  actions: Action[],
  providers: Provider[],
  opts: EngineOptions,
): Promise<ApplyResult> {
  const byType = new Map<string, Provider>(providers.map((p) => [p.type, p]));
  const fault = parseFault();
  const journal = await Journal.begin(paths.state);
  const ctx: ObserveContext = { paths, readOnly: false, force: opts.force };
  const log = opts.log ?? (() => {});
  const applied: Action[] = [];
  try {
    for (const [index, action] of actions.entries()) {
      const provider = byType.get(action.type);
      if (!provider) {
        throw new CdError(
          "NO_PROVIDER",
          `no provider for resource type '${action.type}' (${action.address})`,
          {
            hint: "this plan was made by a newer ComfyDock; upgrade, or make a new plan",
          },
        );
      }
      const entry = await journal.startEntry(index, action.address);
      log(`${action.address}: ${action.kind}`);
      await provider.apply(action, new JournaledTransaction(journal, entry, log), ctx);
      if (fault?.index === index) {
        if (fault.mode === "exit") Deno.exit(99); // a hard crash: no cleanup, the journal stays behind
        throw new CdError("FAULT_INJECTED", `fault injected at action ${index} (${action.address})`);
      }
      entry.status = "done";
      await journal.save();
      applied.push(action);
    }
  } catch (e) {
    const failed = actions[applied.length];
    let undone: number;
    try {
      undone = await rollBack(journal, byType, ctx);
    } catch (undoErr) {
      throw new CdError(
        "ROLLBACK_FAILED",
        `apply failed at ${failed?.address}: ${errorMessage(e)}\nand rolling back failed too: ${
          errorMessage(undoErr)
        }`,
        {
          hint: "run 'comfydock repair' to finish the rollback; removed files are kept in " +
            journal.trashDir,
        },
      );
    }
    throw new CdError(
      "APPLY_FAILED",
      `apply failed at ${failed?.address}: ${
        errorMessage(e)
      }\nrolled back ${undone} action(s); the environment is as it was`,
      {
        hint: e instanceof CdError && e.hint ? e.hint : "fix the cause above and run 'comfydock apply' again",
        cause: e,
      },
    );
  }
  await journal.finish();
  await pruneTrash(paths.state);
  const trashUsed = await exists(journal.trashDir) &&
    (await Array.fromAsync(Deno.readDir(journal.trashDir))).length > 0;
  return { applied, trashDir: trashUsed ? journal.trashDir : null };
}
