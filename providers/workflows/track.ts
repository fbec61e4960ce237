/**
 * The backward direction and the edits of tracking: what `workflow track`, `untrack` and `capture` change
 * in `.cec` (pyproject entries with their `requires` sub-table, and the tracked copies), returned as data
 * for reconcile/change.ts. The caller commits them with changeDesired and then records the new last-sync
 * hashes with `recordSynced` (only once the commit has happened).
 */
import { basename } from "node:path";
import picomatch from "picomatch";
import { parse } from "smol-toml";
import { CdError } from "../../lib/errors.ts";
import { sha256Hex } from "../../lib/fsx.ts";
import type { DesiredState } from "../../reconcile/desired.ts";
import type { TomlEdit } from "../../reconcile/pyproject_edit.ts";
import type { WorkflowSpec } from "../../reconcile/schema.ts";
import type { EnvPaths } from "../../reconcile/paths.ts";
import { joinSafe } from "../../lib/safe_path.ts";
import { analyzeWorkflow, parseWorkflowText, requirements, type WorkflowAnalysis } from "./analyze.ts";
import { findDesiredModel, findDesiredNode } from "./bundle.ts";
import { CEC_PREFIX, checkRel, envResolver, nameOfRel } from "./files.ts";
import type { NodePackResolver } from "./node_map.ts";
import { workflowStatus, type WorkflowStatusEntry } from "./status.ts";

export interface WorkflowChange {
  edits: TomlEdit[];
  /** Paths relative to `.cec`; content null removes the file. */
  files: { path: string; content: string | null }[];
  /** Workflow names the change concerns. */
  names: string[];
  /** Last-sync hashes to record after the commit (null forgets one). */
  synced: Record<string, string | null>;
  /** What the tracked workflows need that `.cec` does not provide (track warns, never refuses). */
  warnings?: string[];
}

/**
 * What a workflow needs that `.cec` does not give: custom packs it has no entry for, node types nothing
 * can place, and models it has no entry for (pure). Optional models (only bypassed nodes load them) are
 * left out.
 */
function missingRequirements(
  name: string,
  analysis: WorkflowAnalysis,
  desired: DesiredState,
): string[] {
  const req = requirements(analysis);
  const out: string[] = [];
  const packs = req.packages.filter((p) => !findDesiredNode(p, desired));
  if (packs.length) {
    out.push(
      `'${name}' needs node pack(s) not in .cec: ${packs.join(", ")} ('comfydock node add ${packs[0]}', ` +
        `or 'comfydock workflow import' to add what a workflow needs)`,
    );
  }
  if (req.unknownTypes.length) {
    out.push(
      `'${name}' uses node types no installed pack or node index provides: ${req.unknownTypes.join(", ")} ` +
        `('comfydock node find TYPE')`,
    );
  }
  for (const a of req.ambiguous) {
    out.push(`'${name}' uses ${a.type}, which several packs provide: ${a.candidates.join(", ")}`);
  }
  const models = req.models.filter((m) => !m.optional && !findDesiredModel(m, desired));
  if (models.length) {
    out.push(
      `'${name}' needs model(s) not in .cec: ${models.map((m) => `${m.category}/${m.name}`).join(", ")} ` +
        `('comfydock model add ... --category C', or 'comfydock workflow import')`,
    );
  }
  return out;
}

export const TRACKED = ["tool", "comfydock", "workflows", "tracked"];

/** `requires` of a tracked workflow: custom packs, model keys (or `category/file` when not in .cec yet). */
export function requiresOf(
  analysis: WorkflowAnalysis,
  desired: DesiredState,
): NonNullable<WorkflowSpec["requires"]> {
  const req = requirements(analysis);
  const models = req.models.filter((m) => !m.optional).map((m) => {
    const file = basename(m.name);
    const key = Object.entries(desired.models).find(([, s]) =>
      basename(s.filename) === file && (s.category === m.category || !s.category)
    )?.[0];
    return key ?? `${m.category}/${m.name}`;
  });
  return { nodes: req.packages, models: [...new Set(models)].sort(), python: [] };
}

/** The text of one ComfyUI workflow and its analysis (errors name the file). */
async function readAndAnalyze(
  paths: EnvPaths,
  rel: string,
  resolver: NodePackResolver,
): Promise<{ text: string; hash: string; analysis: WorkflowAnalysis }> {
  const path = `${paths.userWorkflows}/${rel}`;
  const text = await Deno.readTextFile(path);
  const analysis = analyzeWorkflow(parseWorkflowText(text, path), resolver, path);
  return { text, hash: sha256Hex(text), analysis };
}

function entryEdit(
  name: string,
  rel: string,
  requires: WorkflowSpec["requires"],
  old?: WorkflowSpec,
): TomlEdit {
  return { path: [...TRACKED, name], value: { ...old, file: CEC_PREFIX + rel, requires } };
}

/**
 * From this many entry edits on, they become one edit of the whole tracked table. The TOML editor re-parses
 * the file for every edit (200 entries: ~390 ms one by one, ~40 ms as one table); the price is that the
 * tracked section is rewritten in the editor's layout (comments inside it are lost, the rest of the file
 * keeps its comments and layout).
 */
export const BATCH_MIN_EDITS = 8;

/** Folds many `tracked.<name>` edits into one edit of `tracked` (few edits stay as they are). */
export function batchTrackedEdits(pyprojectText: string, edits: TomlEdit[]): TomlEdit[] {
  const isEntry = (e: TomlEdit) =>
    e.path.length === TRACKED.length + 1 && TRACKED.every((k, i) => e.path[i] === k);
  const entries = edits.filter(isEntry);
  if (entries.length < BATCH_MIN_EDITS) return edits;
  // The raw table, not the schema-defaulted one: untouched entries keep exactly the keys they have.
  // deno-lint-ignore no-explicit-any -- a path walk over parsed TOML; the result is re-validated on write
  const raw = parse(pyprojectText) as any;
  const table: Record<string, unknown> = { ...(raw?.tool?.comfydock?.workflows?.tracked ?? {}) };
  for (const e of entries) {
    const name = e.path[TRACKED.length];
    if (e.value === undefined) delete table[name];
    else table[name] = e.value;
  }
  return [...edits.filter((e) => !isEntry(e)), { path: TRACKED, value: table }];
}

/**
 * `workflow track IMAGE.png|.webp`: the workflow ComfyUI embedded in an image it saved is written into
 * ComfyUI's workflows folder as `<image name>.json` (never over an existing file), ready to be tracked.
 * Returns the workflow's name and the file written, or null when `arg` is not an image file.
 */
export async function workflowFromImage(
  paths: EnvPaths,
  arg: string,
): Promise<{ name: string; file: string } | null> {
  if (!/\.(png|webp)$/i.test(arg)) return null;
  const st = await Deno.stat(arg).catch(() => null);
  if (!st?.isFile) return null;
  const { workflowFromBytes } = await import("./embedded.ts");
  const { json } = workflowFromBytes(await Deno.readFile(arg), arg);
  const rel = relOfName(basename(arg).replace(/\.(png|webp)$/i, ""));
  const file = joinSafe(paths.userWorkflows, rel, "a workflow file");
  await Deno.mkdir(paths.userWorkflows, { recursive: true });
  try {
    // Pretty-printed as ComfyUI's own export, so the tracked copy diffs well in git; createNew: an existing
    // workflow of that name is never overwritten, not even by a race.
    await Deno.writeTextFile(file, JSON.stringify(json, null, 2) + "\n", { createNew: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    throw new CdError("WORKFLOW_EXISTS", `${file} already exists; the image's workflow was not written`, {
      hint: "rename the image, or track the existing workflow by its name",
    });
  }
  return { name: nameOfRel(rel), file };
}

/** A name as typed by the user -> its file in the workflows folder. */
export function relOfName(name: string): string {
  return checkRel(name.toLowerCase().endsWith(".json") ? name : `${name}.json`);
}

/**
 * Tracks workflows: by name (ignored files too: naming one is explicit), or every untracked one with `all`,
 * optionally filtered by a glob on the path. Already tracked names are refreshed (copy and requires).
 */
export async function trackWorkflows(
  paths: EnvPaths,
  desired: DesiredState,
  opts: { names?: string[]; all?: boolean; pattern?: string; resolver: NodePackResolver },
): Promise<WorkflowChange> {
  const status = await workflowStatus(paths, desired);
  const inComfy = new Map(status.filter((e) => e.hashes.comfyui !== null).map((e) => [e.file, e]));
  let rels: string[];
  if (opts.all) {
    const match = opts.pattern ? picomatch(opts.pattern) : () => true;
    rels = status.filter((e) => e.state === "untracked" && (match(e.file) || match(e.name))).map((e) =>
      e.file
    );
  } else {
    if (!opts.names?.length) {
      throw new CdError("WORKFLOW_NAME_MISSING", "name a workflow to track, or pass --all", {
        hint: "'comfydock workflow status' lists the workflows in ComfyUI",
      });
    }
    rels = opts.names.map(relOfName);
    for (const rel of rels) {
      if (!inComfy.has(rel)) {
        throw new CdError("WORKFLOW_NOT_FOUND", `no workflow '${nameOfRel(rel)}' in ${paths.userWorkflows}`, {
          hint: "save it in ComfyUI first; 'comfydock workflow status' lists the workflows",
        });
      }
    }
  }
  const change: WorkflowChange = { edits: [], files: [], names: [], synced: {}, warnings: [] };
  for (const rel of rels) {
    const { text, hash, analysis } = await readAndAnalyze(paths, rel, opts.resolver);
    const entry = inComfy.get(rel)!;
    const name = entry.tracked ? entry.name : nameOfRel(rel);
    change.warnings!.push(...missingRequirements(name, analysis, desired));
    change.edits.push(entryEdit(name, rel, requiresOf(analysis, desired), desired.workflows[name]));
    change.files.push({ path: CEC_PREFIX + rel, content: text });
    change.names.push(name);
    change.synced[rel] = hash;
  }
  change.edits = batchTrackedEdits(desired.pyprojectText, change.edits);
  return change;
}

/** Stops tracking: removes the entry and the `.cec` copy; ComfyUI's file stays where it is. */
export function untrackWorkflow(desired: DesiredState, name: string): WorkflowChange {
  const spec = desired.workflows[name] ?? desired.workflows[name.replace(/\.json$/i, "")];
  const key = desired.workflows[name] ? name : name.replace(/\.json$/i, "");
  if (!spec) {
    throw new CdError("WORKFLOW_NOT_TRACKED", `workflow '${name}' is not tracked`, {
      hint: "'comfydock workflow status' lists the tracked workflows",
    });
  }
  const rel = checkRel(spec.file.startsWith(CEC_PREFIX) ? spec.file.slice(CEC_PREFIX.length) : spec.file);
  return {
    edits: [{ path: [...TRACKED, key], value: undefined }],
    files: [{ path: CEC_PREFIX + rel, content: null }],
    names: [key],
    synced: { [rel]: null },
  };
}

export interface CaptureResult extends WorkflowChange {
  /** Tracked workflows left alone, with why (conflicts unless `takeConflicts`). */
  skipped: WorkflowStatusEntry[];
}

/**
 * Copies workflows edited in the UI back into `.cec` and refreshes their `requires`. Conflicts (changed on
 * both sides) are skipped unless `takeConflicts` (ComfyUI's version wins: `sync --strategy theirs`).
 */
export async function captureWorkflows(
  paths: EnvPaths,
  desired: DesiredState,
  opts: { resolver?: NodePackResolver; takeConflicts?: boolean; status?: WorkflowStatusEntry[] } = {},
): Promise<CaptureResult> {
  const status = opts.status ?? await workflowStatus(paths, desired);
  const resolver = opts.resolver ?? (await envResolver(paths)).resolver;
  const result: CaptureResult = { edits: [], files: [], names: [], synced: {}, skipped: [] };
  for (const e of status) {
    if (!e.tracked) continue;
    const take = e.state === "changed-in-comfyui" ||
      e.state === "missing-in-cec" && e.hashes.comfyui !== null ||
      e.state === "changed-in-both" && opts.takeConflicts;
    if (!take) {
      if (e.state === "changed-in-both" || e.state === "missing-in-cec") result.skipped.push(e);
      continue;
    }
    const { text, hash, analysis } = await readAndAnalyze(paths, e.file, resolver);
    const old = desired.workflows[e.name];
    const requires = requiresOf(analysis, desired);
    if (JSON.stringify(old?.requires) !== JSON.stringify(requires)) {
      result.edits.push(entryEdit(e.name, e.file, requires, old));
    }
    result.files.push({ path: CEC_PREFIX + e.file, content: text });
    result.names.push(e.name);
    result.synced[e.file] = hash;
  }
  result.edits = batchTrackedEdits(desired.pyprojectText, result.edits);
  return result;
}

/**
 * Sets a conflict up so that `.cec` wins on the next apply: recording ComfyUI's current hash as the last
 * sync turns "changed in both" into "changed in .cec" (and apply trashes the replaced file, never deletes).
 */
export function preferCec(conflicts: WorkflowStatusEntry[]): Record<string, string> {
  return Object.fromEntries(
    conflicts.filter((e) => e.hashes.comfyui).map((e) => [e.file, e.hashes.comfyui!]),
  );
}

/** The file name that keeps `.cec`'s version of a conflicting workflow beside ComfyUI's. */
export function conflictRel(rel: string, now: Date): string {
  const ts = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  return `${nameOfRel(rel)}.conflict-${ts}.json`;
}
