/**
 * `validate`: checks `.cec` on its own, without an environment (what CI runs on a pull request): the schema,
 * that tracked workflow files exist, that every pinned node can be fetched (registry version published and
 * not banned; git commit present in its repository), that `uv.lock` is what uv would lock from
 * pyproject.toml, and that every model can be obtained on a fresh machine.
 * Errors make the desired state unusable; warnings are worth a look (e.g. a check that needs the network).
 */
import { join } from "node:path";
import { errorMessage, isCdError } from "../lib/errors.ts";
import { exists } from "../lib/fsx.ts";
import type { EnvPaths } from "../reconcile/paths.ts";
import type { EnvContext } from "../reconcile/types.ts";
import { type DesiredState, readDesired } from "../reconcile/desired.ts";
import { USER_GROUP } from "../providers/packages/diff.ts";

export interface Validation {
  errors: string[];
  warnings: string[];
}

export interface ValidateOptions {
  /** Skip the checks that need the network (registry, git remotes). */
  offline?: boolean;
  /** `--no-build`: the trial lock runs no build backend (untrusted `.cec`, e.g. a pull request). */
  noBuild?: boolean;
  log?: (line: string) => void;
}

function describe(e: unknown): string {
  return isCdError(e) ? e.message + (e.hint ? ` (${e.hint})` : "") : errorMessage(e);
}

async function checkFiles(paths: EnvPaths, desired: DesiredState, v: Validation): Promise<void> {
  for (const [name, wf] of Object.entries(desired.workflows)) {
    if (!await exists(join(paths.cec, wf.file))) {
      v.errors.push(
        `${paths.pyproject}: tool.comfydock.workflows.tracked.${name}.file: '${wf.file}' does not exist in .cec`,
      );
    }
  }
  // Single-file nodes without a url are rebuilt from their copy in .cec: it must be there, as pinned.
  const { fileNodeProblems } = await import("../providers/nodes/file_node.ts");
  for (const p of await fileNodeProblems(paths, desired.nodes)) v.errors.push(`${paths.pyproject}: ${p}`);
  for (const id of Object.keys(desired.pyproject["dependency-groups"])) {
    // `user` holds the packages the user adds by hand (providers/packages/README.md).
    if (id !== USER_GROUP && !(id in desired.nodes)) {
      v.errors.push(
        `${paths.pyproject}: dependency-groups.${id}: no node '${id}' in tool.comfydock.nodes (left over from a removed node?)`,
      );
    }
  }
}

async function checkLock(
  ctx: EnvContext,
  desired: DesiredState,
  v: Validation,
  opts: ValidateOptions,
): Promise<void> {
  const paths = ctx.paths;
  const needsLock = desired.pyproject.project.dependencies.length > 0 ||
    Object.keys(desired.pyproject["dependency-groups"]).length > 0;
  if (desired.lockText === null) {
    if (needsLock) {
      v.errors.push(
        `${paths.uvLock} is missing: Python packages are not locked (run 'comfydock apply' to lock them)`,
      );
    }
    return;
  }
  try {
    const { relock } = await import("../providers/packages/resolve.ts");
    const fresh = await relock(ctx, desired.pyprojectText, { noBuild: opts.noBuild });
    if (fresh !== desired.lockText) {
      v.errors.push(
        `${paths.uvLock} is out of date with pyproject.toml (run 'comfydock apply' to re-lock, then commit)`,
      );
    }
  } catch (e) {
    if (isCdError(e) && (e.code === "UV_NOT_FOUND" || e.code === "PYTHON_NOT_FOUND")) {
      v.warnings.push(`could not check uv.lock: ${describe(e)}`);
    } else if (isCdError(e) && e.code === "NO_BUILD_BLOCKED") {
      v.warnings.push(describe(e));
    } else v.errors.push(`pyproject.toml does not lock: ${describe(e)}`);
  }
}

async function checkNodes(ctx: EnvContext, desired: DesiredState, v: Validation): Promise<void> {
  const paths = ctx.paths;
  const registryNodes = Object.fromEntries(
    Object.entries(desired.nodes).filter(([, s]) => s.source === "registry"),
  );
  if (Object.keys(registryNodes).length > 0) {
    const { RegistryClient } = await import("../providers/nodes/registry.ts");
    const { pinnedVersionWarnings } = await import("../providers/nodes/add.ts");
    try {
      // A pinned version that is gone or banned cannot be installed on a machine without the cached archive.
      for (const w of await pinnedVersionWarnings(registryNodes, RegistryClient.fromSettings(ctx.settings))) {
        v.errors.push(w);
      }
    } catch (e) {
      v.warnings.push(`could not check registry nodes: ${describe(e)}`);
    }
  }
  const { ensureMirror, fetchMirror } = await import("../providers/git/mirror.ts");
  const { hasCommit, showFile } = await import("../providers/git/git.ts");
  const { groupMismatch, nodeRequirements } = await import("../providers/nodes/requirements.ts");
  for (const [id, spec] of Object.entries(desired.nodes)) {
    if (spec.source === "git") {
      try {
        const mirror = await ensureMirror(paths.workspace.gitMirrors, spec.repository);
        await fetchMirror(mirror);
        if (!await hasCommit(mirror.dir, spec.commit)) {
          v.errors.push(`tool.comfydock.nodes.${id}.commit: ${spec.commit} is not in ${spec.repository}`);
          continue;
        }
        // A commit edited by hand leaves the group at the old commit's requirements: the group must follow.
        const reqs = await nodeRequirements(id, (name) => showFile(mirror.dir, spec.commit, name), id);
        const group = desired.pyproject["dependency-groups"][id];
        const mismatch = groupMismatch(id, spec.commit, group, reqs.requirements);
        if (mismatch) v.errors.push(`node ${id}: ${mismatch}`);
      } catch (e) {
        v.errors.push(`tool.comfydock.nodes.${id}.repository: ${describe(e)}`);
      }
    }
  }
}

function checkPortability(desired: DesiredState, v: Validation): void {
  for (const [id, spec] of Object.entries(desired.nodes)) {
    if (spec.source === "local" || spec.source === "dev") {
      v.warnings.push(
        `node ${id} is a ${spec.source} node (${spec.path}): another machine needs that code at the same path`,
      );
    }
  }
  for (const [key, m] of Object.entries(desired.models)) {
    if (m.sources.length === 0) {
      v.warnings.push(
        `model ${key} (${m.filename}) has no download source: a fresh machine cannot get it ` +
          `('comfydock model sources ${key} --write' may find one)`,
      );
    }
  }
}

export async function validateCec(ctx: EnvContext, opts: ValidateOptions = {}): Promise<Validation> {
  const paths = ctx.paths;
  const v: Validation = { errors: [], warnings: [] };
  let desired: DesiredState;
  try {
    desired = await readDesired(paths);
  } catch (e) {
    if (isCdError(e)) return { errors: [describe(e)], warnings: [] };
    throw e;
  }
  await checkFiles(paths, desired, v);
  opts.log?.("checking that uv.lock matches pyproject.toml");
  await checkLock(ctx, desired, v, opts);
  if (opts.offline) v.warnings.push("--offline: pinned nodes were not checked against the registry and git");
  else {
    opts.log?.("checking that every pinned node can be fetched");
    await checkNodes(ctx, desired, v);
  }
  checkPortability(desired, v);
  return v;
}
