/**
 * The contracts of the reconciler. A Plan is plain data (like Terraform's internal/plans): computed by pure
 * diff functions, saved as versioned JSON, rendered apart from it, carried out by the apply engine through
 * providers. Providers are the only code that touches the world.
 */
import type { DesiredState } from "./desired.ts";
import type { EnvPaths } from "../workspace/paths.ts";

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

export interface ObserveContext {
  paths: EnvPaths;
  /** True for `plan`/`status`: providers must not call counting or mutating endpoints. */
  readOnly: boolean;
  /**
   * `--force`: resources a provider normally refuses to touch (a git node with uncommitted changes) may be
   * replaced; what is replaced still goes to the trash. Providers record it in their observed state, so it
   * shows in the plan and in its fingerprint.
   */
  force?: boolean;
}

/**
 * A resource kind. observe reads disk (and caches); diff is pure; apply makes one action true on disk.
 * `O` is the provider's observed state: plain JSON, fingerprinted into the plan to detect stale plans.
 */
export interface Provider<O extends Json = Json> {
  readonly type: ResourceType;
  observe(desired: DesiredState, ctx: ObserveContext): Promise<O>;
  diff(desired: DesiredState, observed: O): Action[];
  /** Pure: findings shown with the plan but never acted on (edited in the UI, dirty git node, ...). */
  notes?(desired: DesiredState, observed: O): string[];
  apply(action: Action, tx: Transaction, ctx: ObserveContext): Promise<void>;
  undo?(step: Extract<UndoStep, { op: "custom" }>, ctx: ObserveContext): Promise<void>;
}
