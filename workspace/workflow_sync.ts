/**
 * Workflow use cases on a Session: `track`, `untrack` (one change each) and `sync`, both directions at
 * once. UI edits are captured into `.cec` (committed), `.cec` versions are restored into ComfyUI (through
 * plan/apply, so replaced files go to the trash). A conflict keeps both files unless a strategy says which
 * side wins: `ours` = the `.cec` version, `theirs` = ComfyUI's.
 */
import { join } from "node:path";
import { exists, removeIfExists } from "../lib/fsx.ts";
import { joinSafe } from "../lib/safe_path.ts";
import { readDesired } from "../reconcile/desired.ts";
import { recordSynced } from "../providers/workflows/files.ts";
import type { NodePackResolver } from "../providers/workflows/node_map.ts";
import { workflowStatus } from "../providers/workflows/status.ts";
import {
  captureWorkflows,
  conflictRel,
  preferCec,
  trackWorkflows,
  untrackWorkflow,
  type WorkflowChange,
  workflowFromImage,
} from "../providers/workflows/track.ts";
import type { ChangeResult, Session } from "./session.ts";

export type SyncStrategy = "ours" | "theirs";

export interface SyncResult {
  captured: string[];
  restored: string[];
  /** Conflicts left for the user, with the file that holds `.cec`'s version beside ComfyUI's. */
  conflicts: { name: string; file: string; conflictFile: string }[];
  commit: string | null;
}

/**
 * One workflow change (track, untrack, capture) through the session's change path; the last-sync hashes
 * move only when the change was committed. `build` makes the change from the desired state under the lock.
 */
async function workflowChange(
  session: Session,
  message: (c: WorkflowChange) => string,
  build: (
    desired: import("../reconcile/desired.ts").DesiredState,
  ) => Promise<WorkflowChange> | WorkflowChange,
  apply: boolean,
): Promise<{ change: WorkflowChange; result: ChangeResult }> {
  let change: WorkflowChange = { edits: [], files: [], names: [], synced: {} };
  const result = await session.change({
    message: () => message(change),
    apply,
    edit: async (desired) => {
      change = await build(desired);
      return { edits: change.edits, files: change.files };
    },
  });
  if (result.commit) await recordSynced(session.paths, change.synced);
  return { change, result };
}

/**
 * `workflow track`. A name that is a PNG/WebP ComfyUI saved is tracked by the workflow embedded in it: that
 * is written into ComfyUI's workflows folder first (a new file), and removed again when the change does not
 * happen (declined, failed), so the environment is left as it was. `fromImage` names the workflow written.
 */
export async function track(
  session: Session,
  opts: { names?: string[]; all?: boolean; pattern?: string; resolver: NodePackResolver; apply: boolean },
): Promise<{ change: WorkflowChange; result: ChangeResult; fromImage: string | null }> {
  const image = opts.names?.length === 1 ? await workflowFromImage(session.paths, opts.names[0]) : null;
  const names = image ? [image.name] : opts.names;
  try {
    const { change, result } = await workflowChange(
      session,
      (c) => `workflow track: ${c.names.join(", ")}`,
      (desired) => trackWorkflows(session.paths, desired, { ...opts, names }),
      opts.apply,
    );
    if (image && !result.accepted) await removeIfExists(image.file);
    return { change, result, fromImage: image?.name ?? null };
  } catch (e) {
    if (image) await removeIfExists(image.file);
    throw e;
  }
}

export function untrack(session: Session, name: string, apply: boolean) {
  return workflowChange(
    session,
    (c) => `workflow untrack: ${c.names[0]}`,
    (desired) => untrackWorkflow(desired, name),
    apply,
  );
}

export async function syncWorkflows(
  session: Session,
  opts: { strategy?: SyncStrategy; resolver: NodePackResolver; now?: Date },
): Promise<SyncResult> {
  const paths = session.paths;
  const result: SyncResult = { captured: [], restored: [], conflicts: [], commit: null };
  let skipped: Awaited<ReturnType<typeof captureWorkflows>>["skipped"] = [];
  const captured = await workflowChange(
    session,
    (c) => `workflow sync: capture ${c.names.join(", ")}`,
    async (desired) => {
      const capture = await captureWorkflows(paths, desired, {
        resolver: opts.resolver,
        takeConflicts: opts.strategy === "theirs",
        status: await workflowStatus(paths, desired),
      });
      skipped = capture.skipped;
      return capture;
    },
    false,
  );
  result.commit = captured.result.commit;
  result.captured = captured.result.commit ? captured.change.names : [];

  const conflicts = skipped.filter((e) => e.state === "changed-in-both");
  if (opts.strategy === "ours") await recordSynced(paths, preferCec(conflicts));
  else if (!opts.strategy) {
    for (const e of conflicts) {
      const rel = conflictRel(e.file, opts.now ?? new Date());
      const target = joinSafe(paths.userWorkflows, rel, `workflow.${e.name} conflict copy`);
      if (!await exists(target)) await Deno.copyFile(join(paths.cecWorkflows, e.file), target);
      result.conflicts.push({ name: e.name, file: e.file, conflictFile: rel });
    }
  }

  const { plan } = await session.plan({ targets: ["workflow"], desired: await readDesired(paths) });
  if (plan.actions.length > 0) {
    await session.apply(plan, { title: "workflow sync" });
    result.restored = plan.actions.map((a) => a.address.slice("workflow.".length));
  }
  return result;
}
