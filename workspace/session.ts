/**
 * The application layer's one door (DESIGN §2, §6): every command that reads or changes an environment runs
 * inside a Session, which holds the environment's OS lock for its whole life and recovers what a crashed
 * command left before anything else.
 *
 * A change (`Session.change`) is one transaction:
 *   lock -> read -> edit -> validate -> relock -> write .cec (journaled) -> plan -> confirm -> apply ->
 *   commit -> log
 * Declined, interrupted (Ctrl-C), refused for lack of a terminal, or failed: the journal is rolled back, so
 * `.cec` (working tree and history) and the environment are exactly as before. After a kill -9 the next
 * command does the same rollback. The user's own uncommitted `.cec` edits are never swept into a commit: a
 * change that would have to commit a file the user edited is refused, saying what to do.
 */
import { relative, sep } from "node:path";
import { CdError, errorMessage } from "../lib/errors.ts";
import { readTextIfExists } from "../lib/fsx.ts";
import { deferInterrupts } from "../lib/proc.ts";
import { joinSafe, within } from "../lib/safe_path.ts";
import type { Settings } from "../lib/settings.ts";
import type { Progress } from "../lib/progress.ts";
import { type DesiredState, parsePyproject, readDesired } from "../reconcile/desired.ts";
import {
  type ApplyResult,
  type EngineOptions,
  finishJournal,
  type KeptAction,
  planFor,
  recoverJournal,
  runActions,
  stalePlanReason,
} from "../reconcile/engine.ts";
import { Journal } from "../reconcile/journal.ts";
import { acquireLock, type HeldLock, type LockMode } from "../reconcile/lock.ts";
import type { EnvPaths, WorkspacePaths } from "../reconcile/paths.ts";
import { editPyprojectText, type TomlEdit } from "../reconcile/pyproject_edit.ts";
import { rollBack, writeCecFiles } from "../reconcile/transaction.ts";
import { type Action, type Plan, type Provider, validateActions } from "../reconcile/types.ts";
import * as git from "../providers/git/git.ts";
import { logEnvEvent } from "./env_log.ts";
import { actionLines } from "../views/plan_text.ts";
import { loadProviders } from "./providers.ts";

/**
 * What the faces hand the application layer: where the workspace is, the settings of this run, and how to
 * talk to the user. Nothing below prints or reads the process environment.
 */
export interface App {
  ws: WorkspacePaths;
  settings: Settings;
  /** Progress lines (`==> cloning ComfyUI`); the face decides where they go. */
  log: (line: string) => void;
  /**
   * Amounts of long steps (downloads, hashing, clones, uv: lib/progress.ts); the face draws them (a bar on
   * a terminal, periodic lines in CI). Default: nothing shown.
   */
  progress?: Progress;
  /**
   * Asks a yes/no question. `destructive` questions default to No. The face refuses (throws) when nobody
   * can answer and --yes was not given.
   */
  confirm: (question: string, opts: { destructive: boolean }) => Promise<boolean>;
  /** Shows a plan before it is confirmed (the face renders it). */
  showPlan: (plan: Plan) => void;
  /** Wait this long for another command's lock (default: fail at once naming the holder). */
  lockTimeoutMs?: number;
  /** `--force`: see ObserveContext.force. */
  force?: boolean;
  /** Providers to use (tests); default: every resource kind. */
  providers?: Provider[];
}

export interface ChangeSpec {
  /** Commit message of `.cec`, and the title of the environment-log block (a function: made after `edit`). */
  message: string | (() => string);
  /**
   * The edit, computed under the lock from the current desired state (so concurrent changes never lose each
   * other's work). `files`: paths relative to `.cec`, content null removes the file.
   */
  edit: (desired: DesiredState) => Promise<CecEdit> | CecEdit;
  /** false (`--no-apply`): only edit and commit `.cec`. */
  apply: boolean;
  /** Only plan/apply these addresses (e.g. `workflow` for workflow sync). */
  targets?: string[];
  /**
   * How `.cec` history records the change: default, a commit of the files written; false, none (`rollback`
   * to HEAD: HEAD already is the result); a function, its own step (`pull`: a fast-forward), returning the
   * new HEAD.
   */
  commit?: boolean | (() => Promise<string | null>);
  /** The change replaces uncommitted edits on purpose (they were saved aside by the caller). */
  discardUncommitted?: boolean;
  /** The change may move the pinned torch family (`--allow-torch-change`, `comfyui update`). */
  allowTorchChange?: boolean;
}

export interface CecEdit {
  edits: TomlEdit[];
  files?: { path: string; content: string | null }[];
}

export interface ChangeResult {
  /** The `.cec` commit made, or null (nothing changed, or declined). */
  commit: string | null;
  /** The plan shown (null with `--no-apply`). */
  plan: Plan | null;
  applied: Action[];
  /** Actions left undone on purpose (a git checkout with uncommitted changes, without --force). */
  kept: KeptAction[];
  /** false when the user declined: nothing changed. */
  accepted: boolean;
  trashDir: string | null;
}

const DECLINED = Symbol("declined");

/** Before a change commits: a signal that came while it ran (after its last check) rolls it back instead. */
function stopIfInterrupted(signal: AbortSignal): void {
  if (signal.aborted) {
    throw new CdError("INTERRUPTED", "interrupted; everything was rolled back", { exitCode: 130 });
  }
}

function isDestructive(plan: Plan): boolean {
  return plan.actions.some((a) => a.kind === "delete" || a.kind === "replace");
}

export class Session {
  private constructor(
    readonly app: App,
    readonly paths: EnvPaths,
    readonly lock: HeldLock,
    readonly providers: Provider[],
    readonly command: string,
  ) {}

  /**
   * Opens a session on `paths`: the lock (shared for `read`, exclusive for `write`; a reader that finds an
   * interrupted change takes it exclusive to roll it back first).
   */
  static async open(app: App, paths: EnvPaths, command: string, mode: "read" | "write"): Promise<Session> {
    const providers = app.providers ?? await loadProviders();
    const want: LockMode = mode === "write" || await hasJournal(paths) ? "exclusive" : "shared";
    const lock = await acquireLock(paths.state, command, { mode: want, timeoutMs: app.lockTimeoutMs });
    const session = new Session(app, paths, lock, providers, command);
    try {
      if (want === "exclusive") {
        const recovered = await recoverJournal(lock, paths, {
          ...session.engine(),
          completed: (j) => committed(paths, j),
        });
        if (recovered) {
          app.log(recovered);
          await logEnvEvent(paths, `repair: ${recovered}`, [], app.log);
        }
      }
    } catch (e) {
      await lock.release();
      throw e;
    }
    return session;
  }

  close(): Promise<void> {
    return this.lock.release();
  }

  engine(): EngineOptions {
    return {
      providers: this.providers,
      settings: this.app.settings,
      log: this.app.log,
      progress: this.app.progress,
      force: this.app.force,
    };
  }

  /**
   * The plan of `.cec` as it is (or of `desired`, e.g. a pull request's, read from its own folder) against
   * the disk. `untrusted`: see ObserveContext.untrusted.
   */
  async plan(
    opts: { targets?: string[]; desired?: DesiredState; deep?: boolean; untrusted?: boolean } = {},
  ): Promise<{ plan: Plan; desired: DesiredState }> {
    const desired = opts.desired ?? await readDesired(this.paths);
    const engine = { ...this.engine(), targets: opts.targets, deep: opts.deep, untrusted: opts.untrusted };
    return { plan: await planFor(this.paths, desired, engine), desired };
  }

  /**
   * Applies `plan` (made in this session, or read from a file: then it must equal a fresh plan exactly),
   * commits a uv.lock that the packages action had to re-lock, logs. `title` names it in the log.
   */
  async apply(plan: Plan, opts: { title?: string; saved?: boolean } = {}): Promise<ApplyResult> {
    this.requireWriter();
    // A plan file is untrusted input: every payload is checked against its provider's schema first.
    validateActions(plan.actions, new Map(this.providers.map((p) => [p.type, p])));
    if (plan.environment !== this.paths.name) {
      throw new CdError(
        "PLAN_WRONG_ENV",
        `the plan is for environment '${plan.environment}', not '${this.paths.name}'`,
        { hint: `run with -e ${plan.environment}, or make a new plan for '${this.paths.name}'` },
      );
    }
    if (opts.saved) {
      const { plan: fresh } = await this.plan({ targets: plan.targets });
      const stale = stalePlanReason(plan, fresh);
      if (stale) {
        throw new CdError("PLAN_STALE", stale, {
          hint: "run 'comfydock plan' again and review the new plan",
        });
      }
    }
    if (plan.actions.length === 0) return { applied: [], kept: [], trashDir: null };
    const title = opts.title ?? "apply";
    return await this.logged(title, plan, () =>
      this.transaction(async (journal, signal) => {
        const lockBefore = await readTextIfExists(this.paths.uvLock);
        const run = await runActions(journal, this.paths, plan.actions, { ...this.engine(), signal });
        stopIfInterrupted(signal);
        const relocked = await readTextIfExists(this.paths.uvLock) !== lockBefore;
        // No commit the tool makes may fail `validate`: a lock made for uncommitted pyproject edits is left
        // for the user to commit with them.
        const notes: string[] = [];
        if (relocked && await this.isUncommitted("pyproject.toml")) {
          notes.push(
            "uv.lock was re-locked for the uncommitted edits of .cec/pyproject.toml: commit both with " +
              "'comfydock commit -m MSG'",
          );
        } else if (relocked) await this.commitCec(journal, "apply: re-lock uv.lock", ["uv.lock"]);
        return { ...run, trashDir: await finishJournal(journal), notes };
      }));
  }

  /** One desired-state change, atomic (see the module comment). */
  async change(spec: ChangeSpec): Promise<ChangeResult> {
    this.requireWriter();
    const paths = this.paths;
    const desired = await readDesired(paths);
    const { edits, files = [] } = await spec.edit(desired);
    const message = typeof spec.message === "string" ? spec.message : spec.message();
    const writes = new Map<string, string | null>();
    // `.cec` may come from someone else: a folder in it linked outside (`nodes/` -> elsewhere) is not written
    // through.
    for (const f of files) {
      writes.set(
        await within([paths.root], joinSafe(paths.cec, f.path, "a .cec file"), "a .cec file"),
        f.content,
      );
    }
    let text = writes.has(paths.pyproject) ? writes.get(paths.pyproject)! : desired.pyprojectText;
    if (text === null) {
      throw new CdError("PYPROJECT_MISSING", `a change may not remove ${paths.pyproject}`);
    }
    // Every result is validated before anything is written (edits are also checked against their intent).
    if (edits.length) text = (await editPyprojectText(text, edits, paths.pyproject)).text;
    else parsePyproject(text, paths.pyproject);
    writes.set(paths.pyproject, text);
    if (!writes.has(paths.uvLock)) {
      const locked = await this.relockIfNeeded(desired, text, spec.allowTorchChange);
      if (locked !== null) {
        // The torch pins of the new lock go into the same commit as the lock (torchPinEdit).
        text = locked.text;
        writes.set(paths.pyproject, text);
        writes.set(paths.uvLock, locked.lock);
      }
    }
    for (const [file, content] of [...writes]) {
      if (await readTextIfExists(file) === content) writes.delete(file);
    }
    const result: ChangeResult = {
      commit: null,
      plan: null,
      applied: [],
      kept: [],
      accepted: true,
      trashDir: null,
    };
    // Nothing to write: nothing to do, unless the history itself moves (a pull of a commit with equal files).
    if (writes.size === 0 && typeof spec.commit !== "function") return result;
    const rels = [...writes.keys()].map((f) => relative(paths.cec, f).split(sep).join("/"));
    if (!spec.discardUncommitted) await this.refuseUncommitted(rels);

    const run = async (journal: Journal, signal: AbortSignal) => {
      await writeCecFiles(journal, [...writes].map(([path, content]) => ({ path, content })));
      if (spec.apply) {
        const { plan } = await this.plan({ targets: spec.targets });
        result.plan = plan;
        if (plan.actions.length > 0) {
          this.app.showPlan(plan);
          const question = `Apply these ${plan.actions.length} action(s) to '${paths.name}'?`;
          if (!await this.app.confirm(question, { destructive: isDestructive(plan) })) throw DECLINED;
          const run = await runActions(journal, paths, plan.actions, { ...this.engine(), signal });
          result.applied = run.applied;
          result.kept = run.kept;
        }
      }
      stopIfInterrupted(signal);
      const relocked = result.applied.some((a) => a.type === "packages") &&
        await readTextIfExists(paths.uvLock) !== (writes.get(paths.uvLock) ?? desired.lockText);
      if (typeof spec.commit === "function") {
        await journal.markCommitting(await git.revParse(paths.cec, "HEAD"));
        result.commit = await spec.commit();
      } else if (spec.commit !== false) {
        result.commit = await this.commitCec(journal, message, [...rels, ...(relocked ? ["uv.lock"] : [])]);
      } else if (await git.isRepo(paths.cec)) {
        await git.git(paths.cec, ["reset", "--quiet", "--", ...rels]); // the index follows the restored files
      }
      result.trashDir = await finishJournal(journal);
    };
    try {
      await this.logged(message, null, async () => {
        await this.transaction(run);
        return result;
      });
    } catch (e) {
      if (e !== DECLINED) throw e;
      return { commit: null, plan: result.plan, applied: [], kept: [], accepted: false, trashDir: null };
    }
    return result;
  }

  private requireWriter(): void {
    if (this.lock.mode !== "exclusive") {
      throw new Error(`${this.command}: a read session cannot change anything`);
    }
  }

  /**
   * Runs `fn` with a fresh journal; Ctrl-C is turned into a rollback instead of a dead process. Any throw
   * (including DECLINED) rolls the whole journal back, `.cec` files included.
   */
  private async transaction<T>(fn: (journal: Journal, signal: AbortSignal) => Promise<T>): Promise<T> {
    const journal = await Journal.begin(this.lock, this.command);
    return await deferInterrupts(async (signal) => {
      try {
        return await fn(journal, signal);
      } catch (e) {
        if (await Journal.load(this.paths)) {
          // runActions rolls back on its own failures; what remains is a failure before or after it.
          const byType = new Map<string, Provider>(this.providers.map((p) => [p.type, p]));
          await rollBack(journal, byType, { ...this.engine(), paths: this.paths, readOnly: false });
        }
        if (signal.aborted && e !== DECLINED && !(e instanceof CdError && e.code === "INTERRUPTED")) {
          throw new CdError("INTERRUPTED", "interrupted; everything was rolled back", { exitCode: 130 });
        }
        throw e;
      }
    });
  }

  /**
   * Commits `rels` of `.cec` (only those: the user's other edits stay theirs), marking the journal first so a
   * crash after the commit is recognised as a completed change.
   */
  private async commitCec(journal: Journal, message: string, rels: string[]): Promise<string | null> {
    if (rels.length === 0 || !await git.isRepo(this.paths.cec)) return null;
    await journal.markCommitting(await git.revParse(this.paths.cec, "HEAD"));
    return await git.commit(this.paths.cec, message, { paths: [...new Set(rels)] });
  }

  /**
   * A change to what uv resolves carries its own uv.lock: locked here once (a conflict, or a torch move
   * without `allowTorchChange`, fails before anything is written), with the locked torch family pinned in
   * the returned pyproject text, and remembered as fresh so the plan that follows runs no second lock.
   */
  private async relockIfNeeded(
    desired: DesiredState,
    text: string,
    allowTorchChange?: boolean,
  ): Promise<{ text: string; lock: string } | null> {
    const [{ uvInput, rememberFreshLock }, { lockChange }] = await Promise.all([
      import("../providers/packages/provider.ts"),
      import("../providers/packages/resolve.ts"),
    ]);
    if (uvInput(desired.pyprojectText) === uvInput(text)) return null;
    const locked = await lockChange({ paths: this.paths, settings: this.app.settings }, text, {
      allowTorchChange,
      progress: this.app.progress,
      label: "checking that the environment still resolves (uv lock)",
    });
    await rememberFreshLock(this.paths, locked.text, locked.lock);
    return locked;
  }

  private async isUncommitted(rel: string): Promise<boolean> {
    return await git.isRepo(this.paths.cec) &&
      (await git.status(this.paths.cec)).some((e) => e.path === rel);
  }

  private async refuseUncommitted(rels: string[]): Promise<void> {
    if (!await git.isRepo(this.paths.cec)) return;
    const dirty = (await git.status(this.paths.cec)).filter((e) => rels.includes(e.path)).map((e) => e.path);
    if (dirty.length === 0) return;
    throw new CdError(
      "CEC_UNCOMMITTED",
      `.cec has uncommitted edits in ${dirty.join(", ")}, which this change must commit`,
      {
        hint: "commit them first ('comfydock commit -m MSG'), or discard them ('comfydock rollback'), " +
          "then run the command again",
      },
    );
  }

  /** Runs an apply-like step and writes its block to the environment log, ok or FAILED. */
  private async logged<T extends { applied: Action[]; kept: KeptAction[]; plan?: Plan | null }>(
    title: string,
    plan: Plan | null,
    fn: () => Promise<T>,
  ): Promise<T> {
    const planned = (p: Plan | null | undefined) =>
      p ? [`plan: ${p.actions.length} action(s)`, ...actionLines(p.actions).map((l) => `  ${l}`)] : [];
    try {
      const r = await fn();
      const shown = plan ?? r.plan ?? null;
      await logEnvEvent(this.paths, `${title}: ok`, [
        ...planned(shown),
        shown === null
          ? ".cec committed, not applied (--no-apply)"
          : `result: ${r.applied.length} action(s) applied${
            r.kept.length ? `; left as they were: ${r.kept.map((k) => k.address).join(", ")}` : ""
          }`,
      ], this.app.log);
      return r;
    } catch (e) {
      if (e === DECLINED) {
        await logEnvEvent(this.paths, `${title}: declined, nothing changed`, [], this.app.log);
      } else {
        await logEnvEvent(this.paths, `${title}: FAILED`, [
          ...planned(plan),
          `result: failed: ${errorMessage(e).split("\n").join(" | ")}`,
        ], this.app.log);
      }
      throw e;
    }
  }
}

async function hasJournal(paths: EnvPaths): Promise<boolean> {
  return await readTextIfExists(Journal.path(paths.state)) !== null;
}

/** A journal marked `committing` completed when `.cec`'s HEAD moved past the parent it recorded. */
async function committed(paths: EnvPaths, j: Journal): Promise<boolean> {
  const head = await git.revParse(paths.cec, "HEAD").catch(() => null);
  return head !== null && head !== (j.data.commit_parent ?? null);
}

/** Opens a session, runs `fn`, always closes it. */
export async function withSession<T>(
  app: App,
  paths: EnvPaths,
  command: string,
  mode: "read" | "write",
  fn: (s: Session) => Promise<T>,
): Promise<T> {
  const s = await Session.open(app, paths, command, mode);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

/** An App for library callers and tests: no questions (everything confirmed), no output. */
export function quietApp(ws: WorkspacePaths, settings: Settings, extra: Partial<App> = {}): App {
  return {
    ws,
    settings,
    log: () => {},
    confirm: () => Promise.resolve(true),
    showPlan: () => {},
    ...extra,
  };
}
