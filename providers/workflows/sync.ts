/**
 * `workflow sync`: both directions at once. UI edits are captured into `.cec` (committed), `.cec` versions
 * are restored into ComfyUI (through plan/apply, so replaced files go to the trash). A conflict keeps both
 * files unless a strategy says which side wins: `ours` = the `.cec` version, `theirs` = ComfyUI's.
 */
import { join } from "node:path";
import { exists } from "../../lib/fsx.ts";
import { changeDesired } from "../../reconcile/change.ts";
import { readDesired } from "../../reconcile/desired.ts";
import { applyPlan, type EngineOptions, makePlan } from "../../reconcile/engine.ts";
import type { EnvPaths } from "../../workspace/paths.ts";
import { recordSynced } from "./files.ts";
import type { NodePackResolver } from "./node_map.ts";
import { workflowStatus } from "./status.ts";
import { captureWorkflows, conflictRel, preferCec, type WorkflowChange } from "./track.ts";

export type SyncStrategy = "ours" | "theirs";

export interface SyncResult {
  captured: string[];
  restored: string[];
  /** Conflicts left for the user, with the file that holds `.cec`'s version beside ComfyUI's. */
  conflicts: { name: string; file: string; conflictFile: string }[];
  commit: string | null;
}

export async function syncWorkflows(
  paths: EnvPaths,
  opts: { strategy?: SyncStrategy; resolver: NodePackResolver; engine?: EngineOptions; now?: Date },
): Promise<SyncResult> {
  const desired = await readDesired(paths);
  const status = await workflowStatus(paths, desired);
  const result: SyncResult = { captured: [], restored: [], conflicts: [], commit: null };

  const capture = await captureWorkflows(paths, desired, {
    resolver: opts.resolver,
    takeConflicts: opts.strategy === "theirs",
    status,
  });
  if (capture.files.length > 0) {
    result.commit = await commitWorkflowChange(
      paths,
      capture,
      `workflow sync: capture ${capture.names.join(", ")}`,
      opts.engine,
    );
    result.captured = capture.names;
  }

  const conflicts = capture.skipped.filter((e) => e.state === "changed-in-both");
  if (opts.strategy === "ours") await recordSynced(paths, preferCec(conflicts));
  else if (!opts.strategy) {
    for (const e of conflicts) {
      const rel = conflictRel(e.file, opts.now ?? new Date());
      const target = join(paths.userWorkflows, rel);
      if (!await exists(target)) await Deno.copyFile(join(paths.cecWorkflows, e.file), target);
      result.conflicts.push({ name: e.name, file: e.file, conflictFile: rel });
    }
  }

  const { plan } = await makePlan(paths, { ...opts.engine, targets: ["workflow"] });
  if (plan.actions.length > 0) {
    await applyPlan(paths, plan, opts.engine);
    result.restored = plan.actions.map((a) => a.address.slice("workflow.".length));
  }
  return result;
}

/**
 * Commits a track/untrack/capture change to `.cec` (validated, restored on failure), then records the new
 * last-sync hashes: only a committed change may move the sync base. Returns the commit sha (null: no-op).
 */
export async function commitWorkflowChange(
  paths: EnvPaths,
  change: WorkflowChange,
  message: string,
  engine?: EngineOptions,
): Promise<string | null> {
  const { commit } = await changeDesired(paths, {
    edits: change.edits,
    files: change.files,
    message,
    apply: false,
  }, engine);
  await recordSynced(paths, change.synced);
  return commit;
}
