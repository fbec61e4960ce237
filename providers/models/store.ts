/**
 * The workspace side of models: where downloads are stored, which folders are scanned by default (the
 * store plus `model_paths` from `.metadata/workspace.json`), and opening/rebuilding the index.
 */
import { basename, join, resolve } from "node:path";
import { z } from "zod";
import { exists, readJsonIfExists, removeIfExists } from "../../lib/fsx.ts";
import { joinSafe } from "../../lib/safe_path.ts";
import type { WorkspacePaths } from "../../reconcile/paths.ts";
import { ModelIndex, type ScanOptions, type ScanResult } from "./index_db.ts";

const Paths = z.array(z.string()).optional();
const WorkspaceModelSettings = z.object({
  settings: z.object({ model_paths: Paths }).passthrough().optional(),
  model_paths: Paths,
}).passthrough();

/**
 * Folders the user keeps models in, as absolute paths: `settings.model_paths` in workspace.json (written by
 * `comfydock config set model_paths ...`), or a top-level `model_paths`.
 */
async function configuredModelPaths(ws: WorkspacePaths): Promise<string[]> {
  try {
    const parsed = WorkspaceModelSettings.safeParse(await readJsonIfExists(ws.workspaceJson));
    if (!parsed.success) return [];
    const all = [...(parsed.data.settings?.model_paths ?? []), ...(parsed.data.model_paths ?? [])];
    return [...new Set(all.map((p) => resolve(ws.root, p)))];
  } catch {
    return [];
  }
}

/** The store and the configured model folders that exist (a missing folder is not an error here). */
export async function defaultScanRoots(ws: WorkspacePaths, extra: string[] = []): Promise<string[]> {
  const out: string[] = [];
  for (const p of [ws.modelStore, ...await configuredModelPaths(ws), ...extra]) {
    const abs = resolve(p);
    if (out.includes(abs)) continue;
    const ok = await Deno.stat(abs).then((s) => s.isDirectory, () => false);
    if (ok) out.push(abs);
  }
  return out;
}

export function openModelIndex(ws: WorkspacePaths): ModelIndex {
  return ModelIndex.open(ws.modelIndexDb);
}

export function downloadsDir(ws: WorkspacePaths): string {
  return join(ws.modelStore, ".downloads");
}

/** Where a downloaded model goes: `<store>/<category>/<file>`, or under a hash folder if that name is taken. */
export async function storePathFor(
  ws: WorkspacePaths,
  category: string,
  filename: string,
  sha: string,
): Promise<string> {
  const name = basename(filename);
  const plain = joinSafe(ws.modelStore, `${category}/${name}`, "model store path");
  return await exists(plain)
    ? joinSafe(ws.modelStore, `${category}/${sha.slice(0, 12)}/${name}`, "model store path")
    : plain;
}

/** Scans the default roots (and any folders scanned before); unchanged files cost a stat. */
export async function rescanKnownRoots(
  index: ModelIndex,
  ws: WorkspacePaths,
  opts: ScanOptions = {},
): Promise<{ results: ScanResult[]; warnings: string[] }> {
  const roots = await defaultScanRoots(ws, index.roots());
  const results: ScanResult[] = [];
  const warnings: string[] = [];
  for (const root of roots) {
    const r = await index.scanDirectory(root, opts);
    results.push(r);
    warnings.push(...r.warnings);
  }
  return { results, warnings };
}

/** `model index rebuild`: drops the database and rebuilds it from the default and previously scanned folders. */
export async function rebuildModelIndex(
  ws: WorkspacePaths,
  opts: ScanOptions = {},
): Promise<{ index: ModelIndex; results: ScanResult[]; warnings: string[] }> {
  for (const suffix of ["", "-wal", "-shm"]) await removeIfExists(ws.modelIndexDb + suffix);
  const index = ModelIndex.open(ws.modelIndexDb);
  return { index, ...await rescanKnownRoots(index, ws, opts) };
}
