/**
 * Tracked workflows as reconciler resources (`workflow.<name>`). Forward only where it is safe: a workflow
 * missing from ComfyUI, or changed in `.cec` since the last sync, is restored from `.cec` (the replaced
 * file goes to the apply's trash). A workflow changed in ComfyUI is the user's work: apply never
 * overwrites it; the plan notes say how to capture it. Untracked workflows are never touched.
 */
import { basename, join } from "node:path";
import { z } from "zod";
import { CdError } from "../../lib/errors.ts";
import { sha256Hex } from "../../lib/fsx.ts";
import { within } from "../../lib/safe_path.ts";
import type { DesiredState } from "../../reconcile/desired.ts";
import type { Action, ObserveContext, Provider, Transaction, UndoStep } from "../../reconcile/types.ts";
import { checkRel, readSynced, recordSynced } from "./files.ts";
import { classifyWorkflows, observeWorkflows, type WorkflowObservation } from "./status.ts";

type WorkflowTarget = { file: string; hash: string | null };

function diffWorkflows(_desired: DesiredState, observed: WorkflowObservation): Action[] {
  const actions: Action[] = [];
  for (const e of classifyWorkflows(observed)) {
    if (e.state !== "missing-in-comfyui" && e.state !== "changed-in-cec") continue;
    const before: WorkflowTarget | null = e.hashes.comfyui ? { file: e.file, hash: e.hashes.comfyui } : null;
    const after: WorkflowTarget = { file: e.file, hash: e.hashes.cec };
    actions.push({
      address: `workflow.${e.name}`,
      type: "workflow",
      kind: e.state === "missing-in-comfyui" ? "create" : "update",
      reason: e.state === "missing-in-comfyui" ? "missing in ComfyUI" : "changed in .cec since the last sync",
      before,
      after,
      details: [
        `copy .cec/workflows/${e.file} to ComfyUI/user/default/workflows/${e.file}`,
        ...(before ? ["the current file in ComfyUI goes to the trash of this apply"] : []),
      ],
    });
  }
  return actions;
}

function notesOf(_desired: DesiredState, observed: WorkflowObservation): string[] {
  const notes: string[] = [];
  let untracked = 0;
  for (const e of classifyWorkflows(observed)) {
    const addr = `workflow.${e.name}`;
    if (e.state === "changed-in-comfyui") {
      notes.push(
        `${addr}: changed in ComfyUI; run 'comfydock capture' or 'comfydock workflow sync' to keep it`,
      );
    } else if (e.state === "changed-in-both") {
      notes.push(
        `${addr}: changed in ComfyUI and in .cec (conflict); run 'comfydock workflow sync' to keep both versions, ` +
          `or 'workflow sync --strategy ours|theirs'`,
      );
    } else if (e.state === "missing-in-cec") {
      notes.push(`${addr}: .cec/workflows/${e.file} is missing; run 'comfydock workflow sync' to capture it`);
    } else if (e.state === "untracked") untracked++;
  }
  if (untracked > 0) {
    notes.push(`${untracked} untracked workflow(s) in ComfyUI; 'comfydock workflow track NAME' to track one`);
  }
  return notes;
}

async function applyWorkflow(action: Action, tx: Transaction, ctx: ObserveContext): Promise<void> {
  const after = action.after as WorkflowTarget;
  const before = action.before as WorkflowTarget | null;
  const rel = checkRel(after.file);
  const bytes = await Deno.readFile(
    await within([ctx.paths.cec], join(ctx.paths.cecWorkflows, rel), action.address),
  );
  if (sha256Hex(bytes) !== after.hash) {
    throw new CdError("WORKFLOW_CHANGED", `.cec/workflows/${rel} changed since the plan was made`, {
      hint: "run 'comfydock plan' again",
    });
  }
  const target = await within([ctx.paths.root], join(ctx.paths.userWorkflows, rel), action.address);
  let current: string | null = null;
  try {
    current = sha256Hex(await Deno.readFile(target));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (current !== (before?.hash ?? null)) {
    throw new CdError("WORKFLOW_CHANGED", `ComfyUI's ${rel} changed since the plan was made`, {
      hint: "it was saved in the UI meanwhile; run 'comfydock plan' again (nothing was overwritten)",
    });
  }
  const staged = join(await tx.stagingDir(`workflow-${basename(rel)}`), basename(rel));
  await Deno.writeFile(staged, bytes);
  await tx.trash(target);
  await tx.place(staged, target);
  const previous = (await readSynced(ctx.paths))[rel] ?? null;
  await tx.recordUndo({ op: "custom", type: "workflow", data: { rel, previous } });
  await recordSynced(ctx.paths, { [rel]: after.hash });
}

async function undoWorkflow(step: Extract<UndoStep, { op: "custom" }>, ctx: ObserveContext): Promise<void> {
  const { rel, previous } = step.data as { rel: string; previous: string | null };
  await recordSynced(ctx.paths, { [rel]: previous });
}

export const workflowProvider: Provider<WorkflowObservation> = {
  type: "workflow",
  observe: (desired, ctx) => observeWorkflows(ctx.paths, desired),
  payload: z.object({
    kind: z.enum(["create", "update"]),
    before: z.object({ file: z.string(), hash: z.string().nullable() }).nullable(),
    after: z.object({ file: z.string(), hash: z.string().nullable() }),
  }),
  diff: (desired, observed) => ({
    actions: diffWorkflows(desired, observed),
    notes: notesOf(desired, observed),
  }),
  apply: applyWorkflow,
  undo: undoWorkflow,
};
