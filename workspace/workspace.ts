/**
 * WorkspaceManager (seed): the workspace layout, the list of environments, the active one, and deleting
 * environments without ever leaving half of one behind.
 *
 * `.metadata/workspace.json` = `{ version: 1, active_environment: string | null, settings: {...} }`.
 * Environments are the directories of `environments/` that hold `.cec/`; names starting with a dot are
 * ComfyDock's own (`.staging-*` of a create or import in progress, `.trash-*` of a delete in progress), never
 * listed. Each environment's history is appended to `logs/<name>.log` (workspace/env_log.ts).
 */
import { join } from "node:path";
import { z } from "zod";
import { CdError } from "../lib/errors.ts";
import { exists, listFiles, readTextIfExists, removeIfExists, writeFileAtomic } from "../lib/fsx.ts";
import { parsePyproject } from "../reconcile/desired.ts";
import { installedTorch } from "../providers/packages/distinfo.ts";
import * as git from "../providers/git/git.ts";
import { acquireLock } from "../reconcile/lock.ts";
import { moveBack } from "./moves.ts";
import { removeDeadPidEntries } from "../lib/proc.ts";
import { type EnvPaths, envPaths, type WorkspacePaths, workspacePaths } from "../reconcile/paths.ts";
import { appendEnvLog, cecHistoryLines } from "./env_log.ts";

export const WorkspaceMeta = z.object({
  version: z.number().int().default(1),
  active_environment: z.string().nullable().default(null),
  settings: z.record(z.string(), z.unknown()).default({}),
});
export type WorkspaceMeta = z.infer<typeof WorkspaceMeta>;

const NAME_RE = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$/;

/**
 * Environment names become directory names and the `[project].name` of `.cec/pyproject.toml`, so they must
 * be safe for both: letters, digits, `.`, `_`, `-`, starting and ending with a letter or digit, <= 64.
 */
export function validateEnvName(name: string): string {
  let problem: string | null = null;
  if (!name) problem = "is empty";
  else if (name.length > 64) problem = `is ${name.length} characters long (at most 64)`;
  else if (/[\\/]/.test(name)) problem = "contains a path separator";
  else if (name.includes("..")) problem = "contains '..'";
  else if (name.startsWith(".")) problem = "starts with a dot (reserved for ComfyDock's own folders)";
  else if (!NAME_RE.test(name)) {
    problem = /[^A-Za-z0-9._-]/.test(name)
      ? `contains '${name.match(/[^A-Za-z0-9._-]/)![0]}'`
      : "must start and end with a letter or digit";
  }
  if (problem) {
    throw new CdError("INVALID_ENV_NAME", `environment name '${name}' ${problem}`, {
      hint: "use letters, digits, '.', '_' and '-' (e.g. 'sdxl-work'), at most 64 characters",
    });
  }
  return name;
}

/** A valid environment name made from any text (a file or folder name): other characters become '-'. */
export function envNameFrom(text: string): string {
  const cleaned = text.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, "");
  return cleaned.slice(0, 64).replace(/[^A-Za-z0-9]+$/, "") || "env";
}

export async function readWorkspaceMeta(ws: WorkspacePaths): Promise<WorkspaceMeta> {
  const text = await readTextIfExists(ws.workspaceJson);
  if (text === null) {
    throw new CdError("NO_WORKSPACE", `no ComfyDock workspace at ${ws.root}`, {
      hint: "run 'comfydock init' (or set COMFYDOCK_HOME to an existing workspace)",
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CdError("WORKSPACE_JSON_INVALID", `${ws.workspaceJson} is not valid JSON: ${e}`, {
      hint: "fix or remove the file, then run 'comfydock init' again",
    });
  }
  const parsed = WorkspaceMeta.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CdError(
      "WORKSPACE_JSON_INVALID",
      `${ws.workspaceJson}: ${issue.path.join(".") || "(root)"}: ${issue.message}`,
      { hint: "fix the key named above (or remove the file and run 'comfydock init')" },
    );
  }
  return parsed.data;
}

export async function writeWorkspaceMeta(ws: WorkspacePaths, meta: WorkspaceMeta): Promise<void> {
  await writeFileAtomic(ws.workspaceJson, JSON.stringify(meta, null, 2) + "\n");
}

/** Read-modify-write of workspace.json. */
export async function updateWorkspaceMeta(
  ws: WorkspacePaths,
  fn: (meta: WorkspaceMeta) => void,
): Promise<WorkspaceMeta> {
  const meta = await readWorkspaceMeta(ws);
  fn(meta);
  await writeWorkspaceMeta(ws, meta);
  return meta;
}

export interface InitResult {
  root: string;
  /** False when the workspace already existed (nothing was overwritten). */
  created: boolean;
}

/** Creates the workspace layout; on an existing workspace only adds missing folders. */
export async function initWorkspace(root: string): Promise<InitResult> {
  const ws = workspacePaths(root);
  const had = await exists(ws.workspaceJson);
  if (had) await readWorkspaceMeta(ws); // a corrupt workspace.json is reported, never overwritten
  for (
    const dir of [
      ws.metadata,
      ws.cache,
      ws.nodeStore,
      ws.gitMirrors,
      ws.modelStore,
      ws.environments,
      ws.logs,
      ws.uvCache,
    ]
  ) {
    await Deno.mkdir(dir, { recursive: true });
  }
  if (!had) await writeWorkspaceMeta(ws, { version: 1, active_environment: null, settings: {} });
  return { root: ws.root, created: !had };
}

export interface EnvironmentInfo {
  name: string;
  path: string;
  active: boolean;
  comfyui_version: string | null;
  comfyui_commit: string | null;
  python_version: string | null;
  /** Where `.cec` takes torch from (`cpu`, `cu124`, `pypi`, `custom`). */
  torch_backend: string | null;
  /** The torch build installed in the venv (`2.5.1+cu124`), null when there is none. */
  torch: string | null;
  /** Why the environment's pyproject could not be read (it is still listed). */
  error?: string;
}

async function describe(ws: WorkspacePaths, name: string, active: string | null): Promise<EnvironmentInfo> {
  const paths = envPaths(ws, name);
  const base: EnvironmentInfo = {
    name,
    path: paths.root,
    active: name === active,
    comfyui_version: null,
    comfyui_commit: null,
    python_version: null,
    torch_backend: null,
    torch: await installedTorch(paths.venv).catch(() => null),
  };
  try {
    const text = await readTextIfExists(paths.pyproject);
    if (text === null) return { ...base, error: ".cec/pyproject.toml is missing" };
    const cd = parsePyproject(text, paths.pyproject).tool.comfydock;
    return {
      ...base,
      comfyui_version: cd.comfyui_version,
      comfyui_commit: cd.comfyui_commit,
      python_version: cd.python_version,
      torch_backend: cd.torch_backend ?? null,
    };
  } catch (e) {
    return { ...base, error: e instanceof Error ? e.message.split("\n")[0] : String(e) };
  }
}

export async function listEnvironments(ws: WorkspacePaths): Promise<EnvironmentInfo[]> {
  const meta = await readWorkspaceMeta(ws);
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(ws.environments)) {
      if (e.isDirectory && !e.name.startsWith(".") && await exists(join(ws.environments, e.name, ".cec"))) {
        names.push(e.name);
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  names.sort();
  return await Promise.all(names.map((n) => describe(ws, n, meta.active_environment)));
}

/** The environment's paths; UNKNOWN_ENVIRONMENT when it does not exist. */
export async function requireEnvironment(ws: WorkspacePaths, name: string): Promise<EnvPaths> {
  validateEnvName(name);
  const paths = envPaths(ws, name);
  if (!await exists(paths.cec)) {
    const known = (await listEnvironments(ws)).map((e) => e.name);
    throw new CdError("UNKNOWN_ENVIRONMENT", `no environment '${name}' in ${ws.environments}`, {
      hint: known.length
        ? `existing environments: ${known.join(", ")}`
        : "create one with 'comfydock create NAME'",
    });
  }
  return paths;
}

export async function getEnvironment(ws: WorkspacePaths, name: string): Promise<EnvironmentInfo> {
  await requireEnvironment(ws, name);
  return describe(ws, name, (await readWorkspaceMeta(ws)).active_environment);
}

export async function setActiveEnvironment(ws: WorkspacePaths, name: string): Promise<EnvironmentInfo> {
  await requireEnvironment(ws, name);
  await updateWorkspaceMeta(ws, (m) => {
    m.active_environment = name;
  });
  return describe(ws, name, name);
}

export async function getActiveEnvironment(ws: WorkspacePaths): Promise<EnvironmentInfo | null> {
  const active = (await readWorkspaceMeta(ws)).active_environment;
  if (!active || !await exists(envPaths(ws, active).cec)) return null;
  return describe(ws, active, active);
}

/** What deleting an environment would lose; computed before asking. */
export interface DeleteSummary {
  name: string;
  path: string;
  /** Tracked workflows whose ComfyUI copy differs from `.cec` (edited in the UI, not captured). */
  modifiedWorkflows: string[];
  /** Files of `.cec` with uncommitted changes. */
  uncommittedCec: string[];
  /** Workflows in ComfyUI/user/default/workflows that `.cec` does not track at all. */
  untrackedWorkflows: string[];
  /** Regular files (not links) under ComfyUI/models: their count and total bytes. */
  modelFiles: number;
  modelBytes: number;
}

async function sameFile(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([Deno.readFile(a).catch(() => null), Deno.readFile(b).catch(() => null)]);
  if (x === null || y === null) return x === y;
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** Files only this environment holds: not links, and not hard links shared with the model store. */
async function regularFilesUnder(dir: string): Promise<{ count: number; bytes: number }> {
  let count = 0, bytes = 0;
  for (const rel of await listFiles(dir)) {
    const st = await Deno.lstat(join(dir, rel));
    if (st.isFile && st.size > 0 && (st.nlink ?? 1) === 1) {
      count++;
      bytes += st.size;
    }
  }
  return { count, bytes };
}

export async function deleteSummary(paths: EnvPaths): Promise<DeleteSummary> {
  const tracked = new Map<string, string>(); // UI-relative path -> .cec-relative path
  const text = await readTextIfExists(paths.pyproject);
  if (text !== null) {
    try {
      const wf = parsePyproject(text, paths.pyproject).tool.comfydock.workflows.tracked;
      for (const spec of Object.values(wf)) tracked.set(spec.file.replace(/^workflows\//, ""), spec.file);
    } catch {
      // An invalid pyproject still leaves .cec/workflows to compare against (below).
    }
  }
  for (const rel of await listFiles(paths.cecWorkflows)) {
    if (rel.endsWith(".json") && !tracked.has(rel)) tracked.set(rel, `workflows/${rel}`);
  }
  const modifiedWorkflows: string[] = [];
  const untrackedWorkflows: string[] = [];
  for (const rel of await listFiles(paths.userWorkflows)) {
    if (!rel.endsWith(".json")) continue;
    const cecRel = tracked.get(rel);
    if (cecRel === undefined) untrackedWorkflows.push(rel);
    else if (!await sameFile(join(paths.userWorkflows, rel), join(paths.cec, cecRel))) {
      modifiedWorkflows.push(rel);
    }
  }
  const uncommittedCec = await git.isRepo(paths.cec) ? (await git.status(paths.cec)).map((e) => e.path) : [];
  const models = await regularFilesUnder(paths.models);
  return {
    name: paths.name,
    path: paths.root,
    modifiedWorkflows,
    uncommittedCec,
    untrackedWorkflows,
    modelFiles: models.count,
    modelBytes: models.bytes,
  };
}

export interface DeleteOptions {
  /** Delete even with workflow edits or `.cec` changes that are not committed. */
  force?: boolean;
  /** Asked with the summary before anything is removed; false cancels (nothing changes). */
  confirm?: (summary: DeleteSummary) => Promise<boolean>;
  /** Wait this long for a running command's lock (default: fail at once naming it). */
  lockTimeoutMs?: number;
}

/**
 * Deletes an environment. The directory is first renamed to `environments/.trash-<name>-<rand>` (atomic),
 * so an interruption leaves either the whole environment or none of it; the trash is then removed (a
 * leftover trash from a crash is removed by the next delete or create). Returns null when cancelled.
 */
export async function deleteEnvironment(
  ws: WorkspacePaths,
  name: string,
  opts: DeleteOptions = {},
): Promise<DeleteSummary | null> {
  const paths = await requireEnvironment(ws, name);
  // Never delete under a running command (a dead one holds no lock).
  const lock = await acquireLock(paths.state, "delete", { timeoutMs: opts.lockTimeoutMs });
  try {
    return await deleteLocked(ws, paths, opts);
  } finally {
    await lock.release();
  }
}

async function deleteLocked(
  ws: WorkspacePaths,
  paths: EnvPaths,
  opts: DeleteOptions,
): Promise<DeleteSummary | null> {
  const name = paths.name;
  const summary = await deleteSummary(paths);
  const unsaved = [
    ...summary.modifiedWorkflows.map((w) => `workflow ${w} (edited in ComfyUI, not in .cec)`),
    ...summary.uncommittedCec.map((f) => `.cec/${f} (not committed)`),
  ];
  if (unsaved.length && !opts.force) {
    throw new CdError(
      "ENV_HAS_UNSAVED_WORK",
      `environment '${name}' has unsaved work: ${unsaved.slice(0, 5).join("; ")}` +
        (unsaved.length > 5 ? `; and ${unsaved.length - 5} more` : ""),
      {
        hint: "save it first ('comfydock -e " + name + " capture' then 'commit -m ...'), " +
          "or pass --force to delete anyway",
      },
    );
  }
  if (opts.confirm && !await opts.confirm(summary)) return null;
  const history = await cecHistoryLines(paths).catch(() => []);
  await sweepTrash(ws);
  const trash = join(ws.environments, `.trash-${name}-${crypto.randomUUID().slice(0, 8)}`);
  await Deno.rename(paths.root, trash);
  const meta = await readWorkspaceMeta(ws);
  if (meta.active_environment === name) {
    meta.active_environment = null;
    await writeWorkspaceMeta(ws, meta);
  }
  // Deno.remove (Rust's remove_dir_all) unlinks symlinks without following them: model links into the
  // store or a user's model folder go, their targets stay (tests/e2e/env_delete_test.ts).
  await removeIfExists(trash);
  await appendEnvLog(ws, name, [
    `delete: environment removed${opts.force ? " (--force)" : ""}`,
    ...history,
    ...summary.modifiedWorkflows.map((w) => `lost uncaptured workflow edit: ${w}`),
    ...summary.uncommittedCec.map((f) => `lost uncommitted .cec file: ${f}`),
    ...summary.untrackedWorkflows.map((w) => `lost untracked workflow: ${w}`),
    `model files owned by the environment: ${summary.modelFiles} (${summary.modelBytes} bytes); ` +
    "linked models stay in the store",
  ]).catch(() => {});
  return summary;
}

/** Staging dirs are `.staging-<name>-<pid>-<rand>`: the pid tells whether their owner still runs. */
const STAGING_RE = /^\.staging-.+-(\d+)-[0-9a-f]{8}$/;

/**
 * A new `environments/.staging-<name>-<pid>-<rand>` (created) where create and import build an environment
 * before renaming it into place: never listed, and removed by the next create/import if its process died.
 */
export async function newStagingPaths(ws: WorkspacePaths, name: string): Promise<EnvPaths> {
  await sweepStaging(ws);
  const paths = envPaths(ws, `.staging-${name}-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`);
  await Deno.mkdir(paths.root, { recursive: true });
  return paths;
}

/** Removes staging dirs whose process is gone (a create or import killed with SIGKILL). */
export function sweepStaging(ws: WorkspacePaths): Promise<string[]> {
  // A dead `adopt --move` gives the user's folders back first; one whose place is taken keeps its dir.
  return removeDeadPidEntries(
    ws.environments,
    STAGING_RE,
    async (dir) => (await moveBack(join(dir, ".comfydock"))).length === 0,
  );
}

/** Removes `.trash-*` leftovers of interrupted deletes (already committed to deletion). */
export async function sweepTrash(ws: WorkspacePaths): Promise<void> {
  try {
    for await (const e of Deno.readDir(ws.environments)) {
      if (e.name.startsWith(".trash-")) await removeIfExists(join(ws.environments, e.name));
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}
