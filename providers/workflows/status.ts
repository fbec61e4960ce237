/**
 * Where each workflow stands. A tracked workflow compares three hashes: ComfyUI's file, the `.cec` copy,
 * and the content at the last sync; the last-sync hash tells which side moved, so nothing is ever
 * overwritten on a guess. Untracked files in ComfyUI are listed (or ignored by `.comfydockignore`), never
 * touched.
 */
import type { DesiredState } from "../../reconcile/desired.ts";
import type { EnvPaths } from "../../reconcile/paths.ts";
import { hashWorkflowDir, loadIgnore, readSynced, relOfFile, type SyncedHashes } from "./files.ts";

export type WorkflowState =
  | "in-sync"
  | "changed-in-comfyui"
  | "changed-in-cec"
  | "changed-in-both"
  | "missing-in-comfyui"
  | "missing-in-cec"
  | "untracked"
  | "ignored";

export interface WorkflowStatusEntry {
  /** Tracked: the name in pyproject; untracked: the file path without `.json`. */
  name: string;
  /** Path relative to the workflows folders. */
  file: string;
  tracked: boolean;
  state: WorkflowState;
  hashes: { comfyui: string | null; cec: string | null; synced: string | null };
}

/** Everything the classification needs, as plain JSON (the provider's observed state). */
export type WorkflowObservation = {
  /** Tracked name -> path relative to the workflows folders. */
  tracked: Record<string, string>;
  cec: Record<string, string>;
  comfyui: Record<string, string>;
  synced: SyncedHashes;
  /** Untracked ComfyUI files that `.comfydockignore` matches. */
  ignored: string[];
};

export const STATE_TEXT: Record<WorkflowState, string> = {
  "in-sync": "in sync",
  "changed-in-comfyui": "changed in ComfyUI",
  "changed-in-cec": "changed in .cec",
  "changed-in-both": "changed in both (conflict)",
  "missing-in-comfyui": "missing in ComfyUI",
  "missing-in-cec": "missing in .cec",
  "untracked": "untracked",
  "ignored": "ignored",
};

/** The three-way comparison of one tracked file. */
export function trackedState(ui: string | null, cec: string | null, synced: string | null): WorkflowState {
  if (cec === null) return "missing-in-cec";
  if (ui === null) return "missing-in-comfyui";
  if (ui === cec) return "in-sync";
  if (synced === cec) return "changed-in-comfyui";
  if (synced === ui) return "changed-in-cec";
  return "changed-in-both";
}

export function classifyWorkflows(o: WorkflowObservation): WorkflowStatusEntry[] {
  const out: WorkflowStatusEntry[] = [];
  const trackedRels = new Set<string>();
  for (const [name, rel] of Object.entries(o.tracked)) {
    trackedRels.add(rel);
    const hashes = {
      comfyui: o.comfyui[rel] ?? null,
      cec: o.cec[rel] ?? null,
      synced: o.synced[rel] ?? null,
    };
    out.push({
      name,
      file: rel,
      tracked: true,
      state: trackedState(hashes.comfyui, hashes.cec, hashes.synced),
      hashes,
    });
  }
  const ignored = new Set(o.ignored);
  for (const [rel, hash] of Object.entries(o.comfyui)) {
    if (trackedRels.has(rel)) continue;
    out.push({
      name: rel.replace(/\.json$/i, ""),
      file: rel,
      tracked: false,
      state: ignored.has(rel) ? "ignored" : "untracked",
      hashes: { comfyui: hash, cec: null, synced: null },
    });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Reads what the classification needs from disk (hashes of both folders, the ignore rules, the sync state). */
export async function observeWorkflows(paths: EnvPaths, desired: DesiredState): Promise<WorkflowObservation> {
  const [comfyui, synced, isIgnored] = await Promise.all([
    hashWorkflowDir(paths.userWorkflows),
    readSynced(paths),
    // The ignore rules are desired state: a pull request's own .comfydockignore when planning one.
    loadIgnore(desired.paths),
  ]);
  const tracked = Object.fromEntries(
    Object.entries(desired.workflows).map(([name, spec]) => [name, relOfFile(spec.file)]),
  );
  const trackedRels = new Set(Object.values(tracked));
  const ignored = Object.keys(comfyui).filter((rel) => !trackedRels.has(rel) && isIgnored(rel));
  return { tracked, cec: desired.workflowFiles, comfyui, synced, ignored };
}

export async function workflowStatus(paths: EnvPaths, desired: DesiredState): Promise<WorkflowStatusEntry[]> {
  return classifyWorkflows(await observeWorkflows(paths, desired));
}
