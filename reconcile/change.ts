/**
 * Every everyday command that changes the desired state (node add, model add, workflow track, comfyui
 * update, ...) goes through here: edit `.cec` (validated and verified first), commit it, then plan+apply
 * that one change. If anything fails before the commit, every `.cec` file is put back as it was.
 */
import { dirname, join } from "node:path";
import { CdError } from "../lib/errors.ts";
import { readTextIfExists, removeIfExists, writeFileAtomic } from "../lib/fsx.ts";
import { commit } from "../providers/git/git.ts";
import type { EnvPaths } from "../workspace/paths.ts";
import { applyPlan, type EngineOptions, makePlan } from "./engine.ts";
import { editPyprojectText, type TomlEdit } from "./pyproject_edit.ts";
import { parsePyproject } from "./desired.ts";
import { stableStringify } from "./fingerprint.ts";
import type { Pyproject } from "./schema.ts";
import type { Plan } from "./types.ts";

export interface DesiredChange {
  edits: TomlEdit[];
  /** Files in `.cec` to write (path relative to `.cec`); content null removes the file. */
  files?: { path: string; content: string | null }[];
  /** Commit message for `.cec`. */
  message: string;
  /** Plan and apply after committing (false: only edit and commit `.cec`). */
  apply: boolean;
  /** Asked before applying a non-empty plan; returning false leaves `.cec` committed and the disk as it is. */
  confirm?: (plan: Plan) => Promise<boolean>;
}

export interface ChangeResult {
  commit: string | null;
  plan: Plan | null;
  applied: boolean;
}

function insideCec(paths: EnvPaths, rel: string): string {
  const full = join(paths.cec, rel);
  if (rel.startsWith("/") || rel.split(/[\\/]/).includes("..") || !full.startsWith(paths.cec + "/")) {
    throw new CdError("BAD_CEC_PATH", `refusing to write '${rel}' outside ${paths.cec}`);
  }
  return full;
}

/**
 * A change to what uv resolves (dependencies, node groups, [tool.uv]) carries its own uv.lock in the same
 * commit: history stays one reviewed commit per change, and a conflict fails here, before anything is written.
 */
async function relockIfDependenciesChanged(
  paths: EnvPaths,
  before: Pyproject,
  after: Pyproject,
  newText: string,
  log?: (line: string) => void,
): Promise<string | null> {
  const relevant = (p: Pyproject) =>
    stableStringify([
      p.project.dependencies,
      p.project["requires-python"],
      p["dependency-groups"],
      p.tool.uv,
    ]);
  if (relevant(before) === relevant(after)) return null;
  log?.("checking that the environment still resolves (uv lock)");
  const { relock } = await import("../providers/packages/resolve.ts");
  return await relock(paths, newText);
}

export async function changeDesired(
  paths: EnvPaths,
  change: DesiredChange,
  opts: EngineOptions = {},
): Promise<ChangeResult> {
  const before = await readTextIfExists(paths.pyproject);
  if (before === null) {
    throw new CdError("PYPROJECT_MISSING", `${paths.pyproject} does not exist`, {
      hint: `create the environment first: 'comfydock create ${paths.name}'`,
    });
  }
  const { text, data } = await editPyprojectText(before, change.edits, paths.pyproject);
  const lock = await relockIfDependenciesChanged(
    paths,
    parsePyproject(before, paths.pyproject),
    data,
    text,
    opts.log,
  );

  const files = [
    ...(change.files ?? []),
    ...(lock === null ? [] : [{ path: "uv.lock", content: lock }]),
  ].map((f) => ({ ...f, full: insideCec(paths, f.path) }));
  const backups = await Promise.all(
    files.map(async (f) => ({ full: f.full, text: await readTextIfExists(f.full) })),
  );
  let sha: string | null;
  try {
    for (const f of files) {
      if (f.content === null) await removeIfExists(f.full);
      else {
        await Deno.mkdir(dirname(f.full), { recursive: true });
        await writeFileAtomic(f.full, f.content);
      }
    }
    await writeFileAtomic(paths.pyproject, text);
    // Only what this change wrote: the user's other uncommitted .cec edits stay theirs.
    const written = files.filter((f, i) => f.content !== null || backups[i].text !== null).map((f) => f.path);
    sha = await commit(paths.cec, change.message, { paths: ["pyproject.toml", ...written] });
  } catch (e) {
    for (const b of backups) {
      if (b.text === null) await removeIfExists(b.full);
      else await writeFileAtomic(b.full, b.text);
    }
    await writeFileAtomic(paths.pyproject, before);
    throw e;
  }
  if (!change.apply) return { commit: sha, plan: null, applied: false };
  const { plan } = await makePlan(paths, opts);
  if (plan.actions.length === 0) return { commit: sha, plan, applied: false };
  if (change.confirm && !await change.confirm(plan)) return { commit: sha, plan, applied: false };
  const { withApplyLog } = await import("../workspace/env_log.ts");
  await withApplyLog(paths, plan, () => applyPlan(paths, plan, opts), change.message);
  return { commit: sha, plan, applied: true };
}
