/**
 * Plan and apply (DESIGN §1, §5, §6), the core of the reconciler. It is handed its providers and settings
 * and does no sequencing of its own beyond one plan or one run of actions: the application layer
 * (workspace/) holds the lock, writes `.cec`, asks, commits and logs around it.
 *
 * - `planFor` observes through every provider and diffs with their pure functions.
 * - `runActions` carries actions out under an open journal; on failure it undoes the WHOLE journal
 *   (including `.cec` files a change wrote first) and throws APPLY_FAILED.
 * - `recoverJournal` rolls back what a crashed process left.
 * - `applyPlan` is the standalone form (`apply PLANFILE`, the library, tests): lock, recover, check that the
 *   plan is still exactly what would be done now, run, finish.
 */
import { CdError, errorMessage } from "../lib/errors.ts";
import { exists } from "../lib/fsx.ts";
import type { Settings } from "../lib/settings.ts";
import { type Progress, withTask } from "../lib/progress.ts";
import { type DesiredState, readDesired } from "./desired.ts";
import { fingerprint, stableStringify } from "./fingerprint.ts";
import { Journal, pruneTrash } from "./journal.ts";
import { acquireLock, type HeldLock } from "./lock.ts";
import type { EnvPaths } from "./paths.ts";
import { JournaledTransaction, rollBack } from "./transaction.ts";
import {
  type Action,
  APPLY_ORDER,
  type Json,
  type ObserveContext,
  type Plan,
  type Provider,
  validateActions,
} from "./types.ts";

export interface EngineOptions {
  providers: Provider[];
  settings: Settings;
  /** Progress sink for long steps (the faces pass their progress printer). */
  log?: (line: string) => void;
  /** Amounts of long steps (see ObserveContext.progress). */
  progress?: Progress;
  /** See ObserveContext.force. */
  force?: boolean;
  /** See ObserveContext.deep. */
  deep?: boolean;
  /** See ObserveContext.untrusted. */
  untrusted?: boolean;
}

export interface PlanOptions extends EngineOptions {
  /** Only actions whose address is one of these, or starts with one of these followed by '.'. */
  targets?: string[];
}

export function matchesTarget(address: string, targets?: string[]): boolean {
  if (!targets || targets.length === 0) return true;
  return targets.some((t) => address === t || address.startsWith(`${t}.`));
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
    const d = p.diff(desired, o);
    actions.push(...d.actions.filter((a) => matchesTarget(a.address, targets)));
    notes.push(...d.notes);
  }
  const rank = (a: Action) => APPLY_ORDER.indexOf(a.type);
  actions.sort((a, b) => rank(a) - rank(b) || (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  return { actions, notes };
}

/** Observes the disk through every provider (in parallel: read-only and independent) and diffs. */
export async function planFor(paths: EnvPaths, desired: DesiredState, opts: PlanOptions): Promise<Plan> {
  const ctx: ObserveContext = {
    paths,
    settings: opts.settings,
    readOnly: true,
    force: opts.force,
    deep: opts.deep,
    untrusted: opts.untrusted,
    log: opts.log,
    progress: opts.progress,
  };
  const observed = new Map<Provider, Json>();
  // One task for the whole observation: shown only when it is slow, naming what is still being read.
  const results = await withTask(opts.progress, `reading environment '${paths.name}'`, (task) => {
    const pending = new Set(opts.providers.map((p) => p.type));
    return Promise.all(opts.providers.map(async (p) => {
      const o = await p.observe(desired, ctx);
      pending.delete(p.type);
      task.advance(1, pending.size ? `still reading: ${[...pending].join(", ")}` : "");
      return [p, o] as const;
    }));
  }, { total: opts.providers.length });
  for (const [p, o] of results) observed.set(p, o);
  const { actions, notes } = diffAll(desired, observed, opts.targets);
  return {
    format_version: 1,
    environment: paths.name,
    created_at: new Date().toISOString(),
    fingerprints: {
      desired: desired.fingerprint,
      observed: fingerprint(opts.providers.map((p) => [p.type, observed.get(p) ?? null])),
    },
    ...(opts.targets?.length ? { targets: opts.targets } : {}),
    actions,
    notes,
  };
}

/** Reads `.cec` and plans. No lock, no recovery: the application layer decides those. */
export async function makePlan(
  paths: EnvPaths,
  opts: PlanOptions,
): Promise<{ plan: Plan; desired: DesiredState }> {
  const desired = await readDesired(paths);
  return { plan: await planFor(paths, desired, opts), desired };
}

/**
 * Why a saved plan may not be applied now, or null when it may: it must be for this environment, made from
 * the same `.cec` and the same disk, and carry exactly the actions a fresh plan would (a hand-edited plan
 * file is refused as stale, whatever its fingerprints say).
 */
export function stalePlanReason(saved: Plan, fresh: Plan): string | null {
  if (fresh.fingerprints.desired !== saved.fingerprints.desired) {
    return "Saved plan is stale: .cec changed since the plan was made";
  }
  if (fresh.fingerprints.observed !== saved.fingerprints.observed) {
    return "Saved plan is stale: the environment on disk changed since the plan was made";
  }
  if (stableStringify(fresh.actions) !== stableStringify(saved.actions)) {
    return "Saved plan is stale: its actions are not the ones a plan made now would carry out";
  }
  return null;
}

/**
 * What an action does, for comparing plans (a stale plan, an approved one): its resource, kind and payload,
 * not the words that explain it.
 */
export function actionKey(
  a: Pick<Action, "address" | "type" | "kind"> & { before: unknown; after: unknown },
): string {
  return stableStringify({
    address: a.address,
    type: a.type,
    kind: a.kind,
    before: a.before,
    after: a.after,
  });
}

/**
 * How the actions of `fresh` differ from those of `expected` (`what`: an approved plan, a plan checked before
 * applying), one line per resource; empty when both do exactly the same.
 */
export function actionDifferences(expected: Action[], fresh: Action[], what = "the approved plan"): string[] {
  const byAddress = (actions: Action[]) => new Map(actions.map((a) => [a.address, a]));
  const want = byAddress(expected), now = byAddress(fresh);
  const lines: string[] = [];
  for (const a of fresh) {
    const e = want.get(a.address);
    if (!e) lines.push(`${a.address}: ${a.kind} (${a.reason}) is not in ${what}`);
    else if (actionKey(e) !== actionKey(a)) {
      lines.push(
        e.kind === a.kind
          ? `${a.address}: ${a.kind} now does something else (${a.reason})`
          : `${a.address}: ${e.kind} in ${what}, now ${a.kind} (${a.reason})`,
      );
    }
  }
  for (const e of expected) {
    if (!now.has(e.address)) lines.push(`${e.address}: ${e.kind} is in ${what} but not needed any more`);
  }
  return lines;
}

export interface ApplyResult {
  applied: Action[];
  /** Actions a provider left undone on purpose (see Provider.apply), with its reason: still drift. */
  kept: KeptAction[];
  /** Where replaced or removed things went (kept for the last few applies). */
  trashDir: string | null;
  /** What the user should know about the result (e.g. a re-lock left for them to commit). */
  notes?: string[];
}

function parseFault(raw: string | null): { index: number; mode: "error" | "exit" } | null {
  if (!raw) return null;
  const m = /^(\d+):(error|exit)$/.exec(raw);
  if (!m) {
    throw new CdError("BAD_FAULT", `COMFYDOCK_FAULT='${raw}' is not '<action-index>:error|exit'`, {
      hint: "unset COMFYDOCK_FAULT (it is for tests)",
    });
  }
  return { index: Number(m[1]), mode: m[2] as "error" | "exit" };
}

export interface KeptAction {
  address: string;
  reason: string;
}

/**
 * Carries `actions` out under `journal`, each payload first checked against its provider's schema. On any
 * failure the whole journal is rolled back (so also `.cec` files written into it) and APPLY_FAILED is thrown.
 * Returns what was applied, and what a provider left undone on purpose (`kept`, logged with its reason).
 */
export async function runActions(
  journal: Journal,
  paths: EnvPaths,
  actions: Action[],
  opts: EngineOptions & { signal?: AbortSignal },
): Promise<{ applied: Action[]; kept: KeptAction[] }> {
  const byType = new Map<string, Provider>(opts.providers.map((p) => [p.type, p]));
  const fault = parseFault(opts.settings.faults.apply);
  const ctx: ObserveContext = {
    paths,
    settings: opts.settings,
    readOnly: false,
    force: opts.force,
    deep: opts.deep,
    log: opts.log,
    progress: opts.progress,
    signal: opts.signal,
  };
  const log = opts.log ?? (() => {});
  const applied: Action[] = [];
  const kept: KeptAction[] = [];
  try {
    validateActions(actions, byType);
    for (const [index, action] of actions.entries()) {
      if (opts.signal?.aborted) {
        throw new CdError("INTERRUPTED", "interrupted", { exitCode: 130 });
      }
      const provider = byType.get(action.type)!;
      const entry = await journal.startEntry(index, action.address);
      log(`${action.address}: ${action.kind}`);
      const outcome = await provider.apply(action, new JournaledTransaction(journal, entry, log), ctx);
      if (outcome) log(`${action.address}: left as it is: ${outcome.kept}`);
      if (fault?.index === index) {
        if (fault.mode === "exit") Deno.exit(99); // a hard crash: no cleanup, the journal stays behind
        throw new CdError("FAULT_INJECTED", `fault injected at action ${index} (${action.address})`);
      }
      entry.status = "done";
      await journal.save();
      if (outcome) kept.push({ address: action.address, reason: outcome.kept });
      else applied.push(action);
    }
    // A signal during the last action (to this process alone, so its tools ran on) stops the change too.
    if (opts.signal?.aborted) throw new CdError("INTERRUPTED", "interrupted", { exitCode: 130 });
  } catch (e) {
    const failed = actions[applied.length + kept.length];
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
    if (e instanceof CdError && e.code === "INTERRUPTED") {
      throw new CdError(
        "INTERRUPTED",
        `interrupted; rolled back ${undone} step(s): everything is as it was`,
        {
          exitCode: 130,
        },
      );
    }
    throw new CdError(
      "APPLY_FAILED",
      `apply failed at ${failed?.address ?? "the start"}: ${
        errorMessage(e)
      }\nrolled back ${undone} step(s); the environment and .cec are as they were`,
      {
        hint: e instanceof CdError && e.hint ? e.hint : "fix the cause above and run 'comfydock apply' again",
        cause: e,
      },
    );
  }
  return { applied, kept };
}

/** Ends a successful change: the journal goes, old trash is pruned; returns the trash dir if it was used. */
export async function finishJournal(journal: Journal): Promise<string | null> {
  await journal.finish();
  await pruneTrash(journal.stateDir);
  const used = await exists(journal.trashDir) &&
    (await Array.fromAsync(Deno.readDir(journal.trashDir))).length > 0;
  return used ? journal.trashDir : null;
}

/**
 * Finishes what a crashed process left (the caller holds the exclusive lock): a journal that was
 * `committing` when `completed` says the commit landed is just closed; any other is rolled back.
 * Returns a human sentence when something was recovered.
 */
export async function recoverJournal(
  lock: HeldLock,
  paths: EnvPaths,
  opts: EngineOptions & { completed?: (journal: Journal) => Promise<boolean> },
): Promise<string | null> {
  if (lock.mode !== "exclusive") throw new Error("recoverJournal needs the exclusive lock");
  const journal = await Journal.load(paths);
  if (!journal) return null;
  const what = `an interrupted ${journal.data.command ?? "apply"} (started ${journal.data.started_at})`;
  if (journal.data.status === "committing" && await opts.completed?.(journal)) {
    await finishJournal(journal);
    return `finished ${what}: it had completed`;
  }
  const byType = new Map<string, Provider>(opts.providers.map((p) => [p.type, p]));
  const n = await rollBack(journal, byType, {
    paths,
    settings: opts.settings,
    readOnly: false,
    log: opts.log,
    progress: opts.progress,
  });
  return `rolled back ${what}: ${n} step(s) undone`;
}

/**
 * Applies a plan on its own: takes the exclusive lock (or fails naming its holder), recovers what a crash
 * left, refuses a plan that is stale (see stalePlanReason), runs it and finishes. What `apply PLANFILE`, the
 * library and tests use; a change made through the application layer uses runActions inside its own lock.
 */
export async function applyPlan(
  paths: EnvPaths,
  plan: Plan,
  opts: EngineOptions & { lockTimeoutMs?: number; command?: string },
): Promise<ApplyResult> {
  if (plan.environment !== paths.name) {
    throw new CdError(
      "PLAN_WRONG_ENV",
      `the plan is for environment '${plan.environment}', not '${paths.name}'`,
      {
        hint: `run with -e ${plan.environment}, or make a new plan for '${paths.name}'`,
      },
    );
  }
  const byType = new Map<string, Provider>(opts.providers.map((p) => [p.type, p]));
  validateActions(plan.actions, byType);
  const lock = await acquireLock(paths.state, opts.command ?? "apply", { timeoutMs: opts.lockTimeoutMs });
  try {
    const recovered = await recoverJournal(lock, paths, opts);
    if (recovered) opts.log?.(recovered);
    const fresh = await planFor(paths, await readDesired(paths), { ...opts, targets: plan.targets });
    const stale = stalePlanReason(plan, fresh);
    if (stale) {
      throw new CdError("PLAN_STALE", stale, { hint: "run 'comfydock plan' again and review the new plan" });
    }
    if (plan.actions.length === 0) return { applied: [], kept: [], trashDir: null };
    const journal = await Journal.begin(lock, opts.command ?? "apply");
    const run = await runActions(journal, paths, plan.actions, opts);
    return { ...run, trashDir: await finishJournal(journal) };
  } finally {
    await lock.release();
  }
}
