/**
 * The contracts of the reconciler. A Plan is plain data (like Terraform's internal/plans): computed by pure
 * diff functions, saved as versioned JSON, rendered apart from it, carried out by the apply engine through
 * providers. Providers are the only code that touches the world.
 */
import type { DesiredState } from "./desired.ts";
import type { z } from "zod";
import { CdError } from "../lib/errors.ts";
import type { EnvPaths } from "./paths.ts";
import type { Settings } from "../lib/settings.ts";
import type { Progress } from "../lib/progress.ts";

export type ResourceType = "comfyui" | "node" | "packages" | "model" | "workflow";
export type ActionKind = "create" | "update" | "replace" | "delete";

/** JSON-safe values: plans are saved to disk and compared, so nothing else may go in them. */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export interface Action {
  /** `comfyui`, `node.<id>`, `packages`, `model.<key>`, `workflow.<name>` */
  address: string;
  type: ResourceType;
  kind: ActionKind;
  /** Why the action is needed, one human sentence ("not installed", "2 files changed by hand"). */
  reason: string;
  before: Json;
  after: Json;
  /** Extra lines shown under the action: what it will do (download size, packages, files moved). */
  details?: string[];
}

export interface Plan {
  format_version: 1;
  environment: string;
  created_at: string;
  /** sha256 of the desired files (pyproject.toml, uv.lock, workflows) and of the observed state. */
  fingerprints: { desired: string; observed: string };
  /** The `--target` addresses it was made with (absent: the whole environment). */
  targets?: string[];
  actions: Action[];
  /** Findings that are not actions (an untracked workflow, a dirty dev node): shown, never acted on. */
  notes: string[];
}

/** Order in which resource types are applied (DESIGN §5). */
export const APPLY_ORDER: readonly ResourceType[] = ["comfyui", "node", "packages", "model", "workflow"];

/** A step that undoes part of an action: journaled as data so `repair` can run it after a crash. */
export type UndoStep =
  /** `path` was moved to `trashPath`; undo moves it back. */
  | { op: "restore"; path: string; trashPath: string }
  /** `path` was created by the action; undo moves it to the trash (never deletes user data). */
  | { op: "remove"; path: string }
  /** Provider-specific undo (e.g. re-sync packages to a saved lock); the provider's `undo` runs it. */
  | { op: "custom"; type: ResourceType; data: Json };

/**
 * What an action gets to change the disk. Everything it removes or replaces goes through `trash`, every new
 * path it puts in place is recorded, so the engine can undo in reverse order and `repair` can finish the job.
 */
export interface Transaction {
  /** A fresh directory on the same file system as the environment, for staging before a rename. */
  stagingDir(label: string): Promise<string>;
  /** Moves `path` (file or dir) to the trash of this apply; no-op if it does not exist. */
  trash(path: string): Promise<void>;
  /** Renames `staged` into `finalPath` (which must not exist: trash it first). */
  place(staged: string, finalPath: string): Promise<void>;
  /** Records that `path` was created by this action (when not made through `place`). */
  created(path: string): Promise<void>;
  /** Records a provider-specific undo step before doing the work it undoes. */
  recordUndo(step: UndoStep): Promise<void>;
  /** Progress/log sink for long steps. */
  log(line: string): void;
}

/** Where an environment is and how to reach the outside: what every provider function needs. */
export interface EnvContext {
  paths: EnvPaths;
  /** URLs, tokens, binaries and timeouts, read once at the edge (lib/settings.ts). */
  settings: Settings;
}

export interface ObserveContext extends EnvContext {
  /** Progress lines of long steps (downloads, uv); nothing below the faces prints. */
  log?: (line: string) => void;
  /** Amounts of long steps (bytes downloaded or hashed, uv's latest line): lib/progress.ts. */
  progress?: Progress;
  /** True for `plan`/`status`: providers must not call counting or mutating endpoints. */
  readOnly: boolean;
  /**
   * `--force`: resources a provider normally refuses to touch (a git node with uncommitted changes) may be
   * replaced; what is replaced still goes to the trash. Providers record it in their observed state, so it
   * shows in the plan and in its fingerprint.
   */
  force?: boolean;
  /**
   * `--deep` (status, plan, apply): also verify content hashes (installed package files against their
   * RECORD's sha256), not only existence and size.
   */
  deep?: boolean;
  /**
   * The desired state is someone else's (`plan --no-build`, a pull request from a fork): run no code it
   * names. The packages provider's trial lock must then run no build backend (uv `--no-build`).
   */
  untrusted?: boolean;
  /** Aborted when the change is interrupted (apply only): downloads stop with it (NetSettings.signal). */
  signal?: AbortSignal;
}

/** What a provider's pure diff finds: actions to take, and findings shown but never acted on. */
export interface Diff {
  actions: Action[];
  notes: string[];
}

/** An action a provider left undone on purpose: one human sentence saying why and what the user can do. */
export interface Kept {
  kept: string;
}

/**
 * A resource kind, one shape for all: observe reads disk (and caches); diff is pure; apply makes one action
 * true on disk; undo reverses a custom undo step. `O` is the provider's observed state: plain JSON,
 * fingerprinted into the plan to detect stale plans. `payload` is the zod schema of its actions'
 * `{ kind, before, after }`: a plan read from a file is checked against it before anything runs.
 */
export interface Provider<O extends Json = Json> {
  readonly type: ResourceType;
  readonly payload: z.ZodType<unknown>;
  observe(desired: DesiredState, ctx: ObserveContext): Promise<O>;
  diff(desired: DesiredState, observed: O): Diff;
  /**
   * Resolves to `{ kept }` when the action was left undone on purpose (a git checkout with uncommitted
   * changes, without --force): `kept` says why and how to proceed; the engine reports it as kept, not applied.
   */
  apply(action: Action, tx: Transaction, ctx: ObserveContext): Promise<void | Kept>;
  undo?(step: Extract<UndoStep, { op: "custom" }>, ctx: ObserveContext): Promise<void>;
}

/**
 * Checks that every action has a provider and a payload its provider accepts (a saved plan is untrusted
 * input). Throws PLAN_INVALID_ACTION naming the action.
 */
export function validateActions(actions: Action[], providers: Map<string, Provider>): void {
  for (const a of actions) {
    const p = providers.get(a.type);
    if (!p) {
      throw new CdError("NO_PROVIDER", `no provider for resource type '${a.type}' (${a.address})`, {
        hint: "this plan was made by a newer ComfyDock; upgrade, or make a new plan",
      });
    }
    const r = p.payload.safeParse({ kind: a.kind, before: a.before, after: a.after });
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new CdError(
        "PLAN_INVALID_ACTION",
        `action ${a.address}: ${issue.path.join(".") || "(payload)"}: ${issue.message}`,
        {
          hint: "the plan was not made by this ComfyDock or was edited; make it again with 'comfydock plan'",
        },
      );
    }
  }
}
