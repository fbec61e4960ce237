/**
 * Import: a bundle file, or a git URL / local path of a `.cec` repository (GitOps), becomes a new
 * environment. The source is validated completely before anything is created under environments/; the new
 * environment is then built from its `.cec` by the apply engine (comfyui checkout, nodes, packages, models,
 * workflows, like any `apply`). Any failure removes everything the import created: an import either
 * produces a working environment or leaves the workspace as it was.
 *
 * `createEnvironmentFromCec` is "create from an existing .cec" (workspace/create.ts makes a fresh one).
 */
import { basename, dirname, join } from "node:path";
import { CdError, errorMessage } from "../lib/errors.ts";
import { joinSafe, within } from "../lib/safe_path.ts";
import { exists, listFiles, readTextIfExists, removeIfExists } from "../lib/fsx.ts";
import { findPython } from "../providers/packages/python.ts";
import { Uv } from "../providers/packages/uv.ts";
import { type DesiredState, parsePyproject, readDesired } from "../reconcile/desired.ts";
import type { Action, Plan } from "../reconcile/types.ts";
import { specEntryName } from "../reconcile/schema.ts";
import { type EnvPaths, envPaths, type WorkspacePaths } from "../reconcile/paths.ts";
import { newStagingPaths, validateEnvName } from "./workspace.ts";
import { removeDeadPidEntries } from "../lib/proc.ts";
import { logEnvEvent } from "./env_log.ts";
import { actionLines } from "../views/plan_text.ts";
import { type App, type ChangeResult, type Session, withSession } from "./session.ts";
import * as git from "../providers/git/git.ts";
import type { ArchiveLimits } from "../lib/archive_limits.ts";
import { BundleManager, DEV_NODES_PREFIX, devNodeDir, MODELS_PREFIX } from "../providers/bundles/bundle.ts";
import type { BundleManifest } from "../providers/bundles/manifest.ts";
import type { ReportLine } from "../providers/formats/report.ts";
import { extractTarGz } from "../providers/bundles/archive.ts";
import { convertLegacyCec } from "./convert_cec.ts";
import { finishMoves, moveBackSync } from "./moves.ts";

export interface ImportOptions {
  /** Environment name (default: the bundle's source environment, or the repo's project.name). */
  name?: string;
  /** For a `.cec` converted from another tool that names no torch index: `auto` (default), `cpu`, ... */
  torchBackend?: string;
  /** ComfyUI git repository for conversions and snapshots (default: the configured one). */
  comfyuiUrl?: string;
  limits?: Partial<ArchiveLimits>;
  /** false: create the environment's `.cec` only; build it later with `comfydock apply`. Default true. */
  apply?: boolean;
}

export interface MissingModel {
  key: string;
  name?: string;
  category: string;
  filename: string;
  hash?: string;
  sha256?: string;
  size?: number;
  /** What the user can do about it. */
  hint: string;
}

export type ImportSource =
  | { type: "bundle"; file: string; manifest: BundleManifest }
  | { type: "git"; url: string; commit: string | null }
  | { type: "snapshot"; file: string; format: "json" | "yaml" }
  | { type: "adopt"; path: string; moved: boolean }
  | { type: "create" };

export interface ImportResult {
  environment: string;
  root: string;
  source: ImportSource;
  /** Actions applied over all apply rounds. */
  applied: number;
  /** true when plan+apply ran to the end (false: declined or `apply: false`). */
  built: boolean;
  /** Remaining plan after the import (empty when built). */
  remaining: Plan | null;
  devNodes: string[];
  modelsPlaced: string[];
  missingModels: MissingModel[];
  notes: string[];
  /** What an import from another tool's format mapped, kept, or could not map (and why). */
  report: ReportLine[];
}

/** FILE (a bundle), GIT_URL or PATH (a `.cec` git repository, or an environment dir that has one). */
export async function importEnvironment(
  app: App,
  source: string,
  opts: ImportOptions = {},
): Promise<ImportResult> {
  if (git.isRemoteUrl(source)) return await importFromGit(app, source, opts);
  const st = await Deno.stat(source).catch(() => null);
  if (st?.isFile) {
    // A file named like a bundle is read as one (a damaged bundle gets the bundle reader's error).
    if (!/\.(tar\.gz|tgz)$/i.test(source) && !await isGzip(source)) {
      throw new CdError(
        "IMPORT_UNKNOWN_FILE",
        `${source} is neither a bundle (a .tar.gz made by 'comfydock export') nor a ComfyUI-Manager snapshot ` +
          "(.json/.yaml)",
        { hint: "pass a bundle, a snapshot, a git URL, or the path of a .cec repository" },
      );
    }
    try {
      return await importBundle(app, source, opts);
    } catch (e) {
      // No manifest first: maybe a ComfyGit export (a tarball of its .cec), which is converted.
      if (e instanceof CdError && e.code === "BUNDLE_NO_MANIFEST") {
        return await importLegacyExport(app, source, opts, e);
      }
      throw e;
    }
  }
  if (st?.isDirectory) {
    for (const candidate of [join(source, ".cec"), source]) {
      if (await exists(join(candidate, ".git")) && await exists(join(candidate, "pyproject.toml"))) {
        return await importFromGit(app, await Deno.realPath(candidate), opts);
      }
    }
    throw new CdError("IMPORT_NOT_A_CEC_REPO", `${source} is not a .cec git repository`, {
      hint: "pass a directory holding .git and pyproject.toml (or an environment dir with such a .cec), " +
        "a git URL, or a bundle file made by 'comfydock export'",
    });
  }
  throw new CdError("IMPORT_SOURCE_NOT_FOUND", `${source} does not exist and is not a git URL`, {
    hint: "pass a bundle file, a path to a .cec repository, or a git URL (https://..., git@host:...)",
  });
}

/** gzip's magic number: what every bundle starts with. */
async function isGzip(file: string): Promise<boolean> {
  using f = await Deno.open(file);
  const b = new Uint8Array(2);
  return (await f.read(b)) === 2 && b[0] === 0x1f && b[1] === 0x8b;
}

/**
 * Paths an import in progress would leave behind if the process were interrupted now (its staging dir, the
 * environment it is building under its staging name). The CLI removes them on SIGINT/SIGTERM; after a
 * kill -9 the next import or create removes them (both kinds of staging dirs carry the dead process's pid).
 */
const pendingImportPaths: Set<string> = new Set();

/** For signal handlers: synchronously removes what in-progress imports of this process have made. */
export function removePendingImportsSync(): string[] {
  const stuck: string[] = [];
  for (const p of pendingImportPaths) {
    // Folders an adopt --move brought in go back first; one that cannot keeps its dir (nothing deleted).
    const kept = moveBackSync(join(p, ".comfydock"));
    if (kept.length > 0) {
      stuck.push(...kept);
      continue;
    }
    try {
      Deno.removeSync(p, { recursive: true });
    } catch { /* already gone */ }
    // The shared staging parent goes too when this was the last import using it.
    if (basename(dirname(p)) === "staging") {
      try {
        Deno.removeSync(dirname(p));
      } catch { /* not empty or gone */ }
    }
  }
  pendingImportPaths.clear();
  return stuck;
}

/** A fresh dir to unpack or write a `.cec` in before it becomes an environment's (`kind`: import, create). */
export async function cecStagingDir(ws: WorkspacePaths, kind = "import"): Promise<string> {
  // Inside the workspace so the final move into environments/ is a rename on one file system.
  const parent = join(ws.metadata, "staging");
  await Deno.mkdir(parent, { recursive: true });
  await removeDeadPidEntries(parent, /^(?:import|create)-(\d+)-/);
  const dir = join(parent, `${kind}-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`);
  await Deno.mkdir(dir);
  pendingImportPaths.add(dir);
  return dir;
}

/** Removes a staging dir, and its parent when no other import or create is using it. */
export async function dropStaging(dir: string): Promise<void> {
  await removeIfExists(dir);
  pendingImportPaths.delete(dir);
  await Deno.remove(dirname(dir)).catch(() => {});
}

export async function importBundle(
  app: App,
  file: string,
  opts: ImportOptions = {},
): Promise<ImportResult> {
  const staging = await cecStagingDir(app.ws);
  try {
    // extractBundle makes its own folder: the staging dir only holds it.
    const unpacked = join(staging, "bundle");
    const info = await new BundleManager().extractBundle(file, unpacked, { limits: opts.limits });
    if (info.manifest.kind !== "environment" || !info.cecDir) {
      throw new CdError(
        "BUNDLE_WRONG_KIND",
        `${file} is a ${info.manifest.kind} bundle, not an environment`,
        {
          hint: "import a workflow bundle into an environment with 'comfydock workflow import FILE'",
        },
      );
    }
    const name = opts.name ?? info.manifest.source_environment;
    const packed = (prefix: string) =>
      info.files.some((f) => f.path.startsWith(prefix)) ? join(unpacked, prefix) : null;
    return await createEnvironmentFromCec(app, name, info.cecDir, {
      ...opts,
      source: { type: "bundle", file, manifest: info.manifest },
      commitMessage: `Import from bundle ${
        basename(file)
      } (environment '${info.manifest.source_environment}')`,
      devNodesDir: packed(DEV_NODES_PREFIX),
      modelsDir: packed(MODELS_PREFIX),
    });
  } finally {
    await dropStaging(staging);
  }
}

/** A ComfyGit export tarball (its `.cec` files at the root, no manifest), converted to this schema. */
async function importLegacyExport(
  app: App,
  file: string,
  opts: ImportOptions,
  notABundle: CdError,
): Promise<ImportResult> {
  const staging = await cecStagingDir(app.ws);
  try {
    const cec = join(staging, "cec");
    await extractTarGz(file, cec, { limits: opts.limits });
    const converted = await convertLegacyCec(app, cec, opts);
    // Not ComfyGit's either: the bundle's own error says what is wrong with it.
    if (!converted) throw notABundle;
    return await createEnvironmentFromCec(app, converted.name, cec, {
      ...opts,
      name: converted.name,
      source: { type: "git", url: file, commit: null },
      commitMessage: `Import ${converted.kind === "comfygit" ? "ComfyGit" : "ComfyDock 1.x"} export ${
        basename(file)
      }`,
      devNodesDir: null,
      modelsDir: null,
      report: converted.report,
    });
  } finally {
    await dropStaging(staging);
  }
}

export async function importFromGit(
  app: App,
  url: string,
  opts: ImportOptions = {},
): Promise<ImportResult> {
  const staging = await cecStagingDir(app.ws);
  try {
    const cec = join(staging, "cec");
    await git.git(null, ["clone", "--quiet", url, cec], {
      errorCode: "IMPORT_CLONE_FAILED",
      hint:
        `check that ${url} is reachable and is a git repository holding a .cec (pyproject.toml at its root)`,
    });
    if (!await exists(join(cec, "pyproject.toml"))) {
      throw new CdError("IMPORT_NOT_A_CEC_REPO", `${url} has no pyproject.toml at its root`, {
        hint: "point at the repository of an environment's .cec (the one 'comfydock push' publishes)",
      });
    }
    const commit = await git.revParse(cec, "HEAD");
    const converted = await convertLegacyCec(app, cec, opts);
    const text = (await readTextIfExists(join(cec, "pyproject.toml")))!;
    const name = opts.name ?? converted?.name ?? parsePyproject(text, `${url}:pyproject.toml`).project.name;
    return await createEnvironmentFromCec(app, name, cec, {
      ...opts,
      source: { type: "git", url, commit },
      commitMessage: null,
      devNodesDir: null,
      modelsDir: null,
      report: converted?.report,
    });
  } finally {
    await dropStaging(staging);
  }
}

interface FromCecOptions extends ImportOptions {
  source: ImportSource;
  /** Commit message for a `.cec` that is not a git repo yet (null: it must already be one). */
  commitMessage: string | null;
  /** `<dir>/<node id>/...`: dev node sources to place into custom_nodes once ComfyUI exists. */
  devNodesDir: string | null;
  /** `<dir>/<category>/<filename>`: model files to place into the models folders. */
  modelsDir: string | null;
  /** Show each plan and ask before applying it (import: yes; create: no, the command was the request). */
  ask?: boolean;
  /** Stops the build at the next action; everything made so far is removed. */
  signal?: AbortSignal;
  /** The environment-log block (default: `import: <source>`). */
  logTitle?: string;
  logLines?: string[];
  /** The mapping report of a conversion from another tool's format (carried into the result and the log). */
  report?: ReportLine[];
  /**
   * Things that already exist, put into the environment being built (adopt) instead of being rebuilt:
   * `before` runs before the build (the venv, a moved ComfyUI), `afterComfyUI` once ComfyUI/ exists (custom
   * nodes, user files). On failure `undo` gives back what is not ours; it returns false when something could
   * not be given back, and the half-built environment is then kept rather than deleted with it.
   */
  place?: {
    before?: (paths: EnvPaths) => Promise<void>;
    afterComfyUI?: (paths: EnvPaths) => Promise<void>;
    undo?: (paths: EnvPaths) => Promise<boolean>;
  };
}

/**
 * Creates environment `name` whose `.cec` is the directory `cecDir` (moved, not copied), builds it with
 * plan+apply through a Session in `environments/.staging-<name>-<pid>-<rand>` (never listed) and renames it
 * into place as the last step. On any failure the staging directory is removed: nothing is left behind.
 */
export async function createEnvironmentFromCec(
  app: App,
  name: string,
  cecDir: string,
  opts: FromCecOptions,
): Promise<ImportResult> {
  const ws = app.ws;
  validateEnvName(name);
  const final = envPaths(ws, name);
  const taken = () =>
    new CdError("ENV_EXISTS", `environment '${name}' already exists at ${final.root}`, {
      hint: "import under another name with --name NAME, or delete the existing one first",
    });
  if (await exists(final.root)) throw taken();
  await Deno.mkdir(ws.environments, { recursive: true });
  const paths = await newStagingPaths(ws, name);
  pendingImportPaths.add(paths.root);
  try {
    await Deno.rename(cecDir, paths.cec);
    if (!await exists(join(paths.cec, ".git"))) {
      await git.init(paths.cec);
      await git.commit(paths.cec, opts.commitMessage ?? "Import");
    }
    const desired = await readDesired(paths);
    const result: ImportResult = {
      environment: name,
      root: final.root,
      source: opts.source,
      applied: 0,
      built: false,
      remaining: null,
      devNodes: [],
      modelsPlaced: [],
      missingModels: [],
      notes: [],
      report: opts.report ?? [],
    };
    await opts.place?.before?.(paths);
    const hasExtras = opts.devNodesDir !== null || opts.modelsDir !== null || !!opts.place?.afterComfyUI;
    let extrasHandled = false;
    const appliedActions: Action[] = [];
    let built = false;
    if (opts.apply !== false) {
      await makeRelocatableVenv(app, paths, desired.pyproject.tool.comfydock.python_version);
      // Dev nodes and bundled models go inside ComfyUI/, which only the comfyui action creates: build that
      // first, place them, then apply the rest so the nodes/models providers find them in place.
      const rounds: (string[] | undefined)[] = hasExtras ? [["comfyui"], undefined] : [undefined];
      built = true;
      await withSession(app, paths, `import ${name}`, "write", async (session) => {
        for (const targets of rounds) {
          if (opts.signal?.aborted) throw new CdError("INTERRUPTED", "interrupted", { exitCode: 130 });
          if (targets === undefined && hasExtras) {
            if (await exists(join(paths.comfyui, ".git"))) {
              await placeExtras(paths, opts, desired.nodes, result);
              await opts.place?.afterComfyUI?.(paths);
            } else await keepExtras(paths, final, opts, result);
            extrasHandled = true;
          }
          const { plan } = await session.plan({ targets });
          if (plan.actions.length === 0) continue;
          if (opts.ask !== false) {
            // The plan is shown under the name the environment will have, not its staging name.
            const shown = { ...plan, environment: name };
            app.showPlan(shown);
            const q = `Apply these ${plan.actions.length} action(s) to '${name}'?`;
            if (!await app.confirm(q, { destructive: false })) {
              built = false;
              break;
            }
          }
          const { applied } = await session.apply(plan, { title: `import ${name}` });
          appliedActions.push(...applied);
        }
      });
    }
    if (hasExtras && !extrasHandled) await keepExtras(paths, final, opts, result);
    result.applied = appliedActions.length;
    result.missingModels = missingModels(desired.models, result.modelsPlaced, final);
    if (await exists(final.root)) throw taken();
    await Deno.rename(paths.root, final.root);
    pendingImportPaths.delete(paths.root);
    await finishMoves(final.state);
    // Planned again at the final path: whatever the move broke shows up here, not at the next 'plan'.
    if (built) {
      result.remaining = await withSession(
        app,
        final,
        `import ${name}`,
        "read",
        async (s) => (await s.plan()).plan,
      );
      result.built = result.remaining.actions.length === 0;
    }
    await logEnvEvent(final, opts.logTitle ?? `import: ${describeSource(opts.source)}`, [
      ...(opts.logLines ?? []),
      ...(opts.apply === false ? ["not built (--no-apply)"] : [
        `applied: ${appliedActions.length} action(s)`,
        ...actionLines(appliedActions).map((l) => `  ${l}`),
      ]),
      ...(result.remaining?.actions.length
        ? [`still to apply: ${result.remaining.actions.length} action(s)`]
        : []),
      ...result.notes,
      ...result.report.filter((l) => l.outcome === "not mapped").map((l) =>
        `not mapped: ${l.item}: ${l.detail}`
      ),
    ], app.log);
    return result;
  } catch (e) {
    const given = opts.place?.undo ? await opts.place.undo(paths).catch(() => false) : true;
    if (!given) {
      throw new CdError(
        "ADOPT_UNDO_INCOMPLETE",
        `${errorMessage(e)}\nand not everything could be put back: what is left is in ${paths.root}`,
        { hint: `move your folders back from ${paths.root} by hand (nothing was deleted)`, cause: e },
      );
    }
    await removeIfExists(paths.root);
    throw e;
  } finally {
    pendingImportPaths.delete(paths.root);
  }
}

/** `create`'s build: a fresh `.cec` made into an environment by the same engine path as an import. */
export async function buildFromCec(
  app: App,
  name: string,
  cecDir: string,
  opts: { signal?: AbortSignal; logTitle: string; logLines: string[] },
): Promise<{ cec: string }> {
  const r = await createEnvironmentFromCec(app, name, cecDir, {
    source: { type: "create" },
    commitMessage: null,
    devNodesDir: null,
    modelsDir: null,
    ask: false,
    ...opts,
  });
  if (r.remaining && r.remaining.actions.length > 0) {
    throw new CdError(
      "CREATE_INCOMPLETE",
      `the new environment still differs from its .cec: ${
        r.remaining.actions.map((a) => a.address).join(", ")
      }`,
      {
        hint: "run 'comfydock -e " + name + " plan' to see why",
      },
    );
  }
  return { cec: envPaths(app.ws, name).cec };
}

function describeSource(source: ImportSource): string {
  if (source.type === "create") return "a new .cec";
  if (source.type === "snapshot") return `ComfyUI-Manager snapshot ${source.file}`;
  if (source.type === "adopt") return `the folder ${source.path}${source.moved ? " (moved in)" : ""}`;
  return source.type === "bundle"
    ? `bundle ${source.file} (environment '${source.manifest.source_environment}', ` +
      `comfydock ${source.manifest.tool.version})`
    : `${source.url}${source.commit ? ` at ${source.commit}` : ""}`;
}

/**
 * The venv is made here, relocatable, before the packages action (which then only syncs into it): the
 * environment is built in its staging dir and renamed, and the venv's scripts must still work after that.
 * When the Python is missing the packages action reports it, so nothing is done here.
 */
async function makeRelocatableVenv(app: App, paths: EnvPaths, pythonVersion: string): Promise<void> {
  if (await exists(paths.venv)) return;
  let python;
  try {
    python = await findPython(app.settings.system, pythonVersion);
  } catch {
    return;
  }
  const uv = await Uv.locate(paths.workspace, app.settings);
  await uv.venv(paths.venv, python.path, { relocatable: true });
}

async function placeExtras(
  paths: EnvPaths,
  opts: FromCecOptions,
  nodes: DesiredState["nodes"],
  result: ImportResult,
): Promise<void> {
  if (opts.devNodesDir) {
    for (const entry of await Array.fromAsync(Deno.readDir(opts.devNodesDir))) {
      const spec = nodes[entry.name];
      if (!spec) {
        result.notes.push(`dev node '${entry.name}' is in the bundle but not in pyproject.toml: not placed`);
        continue;
      }
      const dest = await within(
        [paths.root],
        joinSafe(paths.customNodes, specEntryName(entry.name, spec), `dev node '${entry.name}' folder`),
        `dev node '${entry.name}'`,
      );
      if (await devNodeDir(paths, entry.name, spec)) {
        result.notes.push(`dev node '${entry.name}': ${dest} already exists, the bundled copy was not used`);
        continue;
      }
      await Deno.mkdir(dirname(dest), { recursive: true });
      await Deno.rename(join(opts.devNodesDir, entry.name), dest);
      result.devNodes.push(entry.name);
    }
  }
  if (opts.modelsDir) {
    for (const rel of await listFiles(opts.modelsDir)) {
      const dest = await within(
        [paths.root],
        joinSafe(paths.models, rel, "bundled model"),
        "bundled model",
      );
      if (await exists(dest)) {
        result.notes.push(`model file ${dest} already exists, the bundled copy was not used`);
        continue;
      }
      await Deno.mkdir(dirname(dest), { recursive: true });
      await Deno.rename(join(opts.modelsDir, rel), dest);
      result.modelsPlaced.push(rel);
    }
  }
}

/**
 * When the build did not run, bundled dev nodes and models are kept in the environment's state dir
 * (`paths`: where it is built; `final`: where it will be, named in the notes).
 */
async function keepExtras(
  paths: EnvPaths,
  final: EnvPaths,
  opts: FromCecOptions,
  result: ImportResult,
): Promise<void> {
  const keep = join(paths.state, "imported");
  await Deno.mkdir(keep, { recursive: true });
  for (const [dir, label] of [[opts.devNodesDir, "dev_nodes"], [opts.modelsDir, "models"]] as const) {
    if (!dir) continue;
    await Deno.rename(dir, join(keep, label));
    result.notes.push(
      `bundled ${label.replace("_", " ")} were kept in ${
        join(final.state, "imported", label)
      }: move them into ComfyUI/` +
        `${label === "models" ? "models" : "custom_nodes"}/ after 'comfydock apply' has created ComfyUI`,
    );
  }
}

function missingModels(
  models: DesiredState["models"],
  placed: string[],
  paths: EnvPaths,
): MissingModel[] {
  const out: MissingModel[] = [];
  for (const [key, m] of Object.entries(models)) {
    if (m.sources.length > 0 || placed.includes(`${m.category}/${m.filename}`)) continue;
    out.push({
      key,
      name: m.name,
      category: m.category,
      filename: m.filename,
      hash: m.hash,
      sha256: m.sha256,
      size: m.size,
      hint: `no download source is recorded: get the file from whoever made the bundle, then ` +
        `'comfydock model add PATH --key ${key}' or put it at ${
          join(paths.models, m.category, m.filename)
        } ` +
        `and run 'comfydock apply' (it is matched by hash)`,
    });
  }
  return out;
}

/**
 * `pull`: fetches `.cec`'s upstream and takes it as one change (DESIGN §6): the upstream's files are written
 * through the session's change path, planned, confirmed and applied, and only then is HEAD fast-forwarded.
 * A declined or failed apply leaves `.cec` (tree and history) and the environment as they were. Local commits
 * the upstream does not have, or uncommitted edits, are refused with what to do.
 */
export async function pullCec(
  session: Session,
  opts: { apply: boolean },
): Promise<{ before: string | null; after: string | null; result: ChangeResult | null }> {
  const paths = session.paths;
  await requireRemote(paths);
  const before = await git.revParse(paths.cec, "HEAD");
  const hint = "if .cec has local commits, merge or rebase them in " + paths.cec +
    " with git (or push them first), then run 'comfydock pull' again";
  await git.git(paths.cec, ["fetch", "--quiet"], { errorCode: "PULL_FAILED", hint });
  const target = await git.revParse(paths.cec, "@{upstream}");
  if (!target) {
    throw new CdError("PULL_FAILED", `${paths.cec}: the current branch has no upstream to pull from`, {
      hint: `set one with 'git -C ${paths.cec} branch --set-upstream-to origin/main'`,
    });
  }
  if (target === before) return { before, after: before, result: null };
  const ff = await git.git(paths.cec, ["merge-base", "--is-ancestor", "HEAD", target], { check: false });
  if (ff.code !== 0) {
    throw new CdError("PULL_FAILED", `${paths.cec} has commits that ${target.slice(0, 12)} does not have`, {
      hint,
    });
  }
  const atTarget = await git.lsFiles(paths.cec, target);
  const files: { path: string; content: string | null }[] = [];
  for (const rel of atTarget) files.push({ path: rel, content: await git.showFile(paths.cec, target, rel) });
  for (const rel of await git.lsFiles(paths.cec, "HEAD")) {
    if (!atTarget.includes(rel)) files.push({ path: rel, content: null });
  }
  const result = await session.change({
    message: `pull ${before?.slice(0, 12) ?? "(none)"}..${target.slice(0, 12)}`,
    apply: opts.apply,
    edit: () => ({ edits: [], files }),
    // The tree already holds the target's files (written by the change): move HEAD and the index there.
    // (Checked above to be a fast-forward; `git merge` would refuse a tree it did not write itself.)
    commit: async () => {
      await git.git(paths.cec, ["reset", "--quiet", "--mixed", target], { errorCode: "PULL_FAILED", hint });
      return await git.revParse(paths.cec, "HEAD");
    },
  });
  return { before, after: result.accepted ? target : before, result };
}

/** `git push` of the environment's `.cec` to its upstream. Uncommitted edits are reported, not pushed. */
export async function pushCec(paths: EnvPaths): Promise<{ pushed: string | null; uncommitted: boolean }> {
  await requireRemote(paths);
  await git.git(paths.cec, ["push", "--quiet"], {
    errorCode: "PUSH_FAILED",
    hint: "pull first ('comfydock pull') if the remote has newer commits; check your access to the remote",
  });
  return { pushed: await git.revParse(paths.cec, "HEAD"), uncommitted: await git.isDirty(paths.cec) };
}

async function requireRemote(paths: EnvPaths): Promise<void> {
  const remotes = (await git.git(paths.cec, ["remote"])).stdout.trim();
  if (!remotes) {
    throw new CdError("NO_REMOTE", `${paths.cec} has no git remote`, {
      hint: `add one with 'git -C ${paths.cec} remote add origin URL' and push once with ` +
        `'git -C ${paths.cec} push -u origin main'`,
    });
  }
}
