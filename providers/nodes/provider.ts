/**
 * The custom-node provider of the reconciler: observe custom_nodes, diff against `[tool.comfydock.nodes]`,
 * apply one `node.<id>` action. Apply never writes into a live node folder: the new copy is built in the
 * transaction's staging dir (archive extracted, git checkout, or link), the old folder goes to the trash,
 * then the staged one is renamed into place. Enabling or disabling a node whose content already matches
 * is a journaled move between `custom_nodes/<dir>` and its disabled place. Python requirements are not
 * installed here: they live in `[dependency-groups].<id>` and the packages provider syncs them after all
 * node folders are in place.
 */
import { dirname, join } from "node:path";
import { z } from "zod";
import { CdError } from "../../lib/errors.ts";
import { exists, writeFileAtomic } from "../../lib/fsx.ts";
import { joinSafe, relPathProblem, segmentProblem, within } from "../../lib/safe_path.ts";
import { NodeSpec } from "../../reconcile/schema.ts";
import type { NetSettings } from "../../lib/http.ts";
import type { Action, Kept, ObserveContext, Provider, Transaction } from "../../reconcile/types.ts";
import type { EnvPaths } from "../../reconcile/paths.ts";
import { extractZip, fetchArchive, readStoredArchive } from "./archive.ts";
import { diffDesiredNodes, keepHint, type NodeActionAfter } from "./diff.ts";
import { nodeFileBytes } from "./file_node.ts";
import { describeDirty, dirtyFiles, excludeFromGit } from "../git/git.ts";
import { checkoutInto, ensureMirror, resolveRef } from "../git/mirror.ts";
import { devPath, MARKER, type ObservedNodes, observeNodes, statManifest, writeMarker } from "./observe.ts";
import { RegistryClient } from "./registry.ts";

/** The network settings of an apply's downloads, stopped by its interrupt. */
function netOf(ctx: ObserveContext): NetSettings {
  return { http: ctx.settings.http, download: ctx.settings.download, signal: ctx.signal };
}

/**
 * A path of a plan (relative to custom_nodes; a plan is untrusted) made of plain names, proven to stay
 * inside the environment once the links of its parents are resolved (a ComfyUI checkout from a hostile URL
 * could make custom_nodes a link): a name from .cec or a plan file never reaches outside. A dev node's own
 * folder is only ever linked to: what is moved is the link.
 */
function nodePath(paths: EnvPaths, rel: string, what: string): Promise<string> {
  return within([paths.root], joinSafe(paths.customNodes, rel, what), what);
}

function actionTarget(action: Action): NodeActionAfter & { spec: NodeSpec } {
  const after = action.after as NodeActionAfter | null;
  if (!after) throw new CdError("PLAN_INVALID", `${action.address}: ${action.kind} action without 'after'`);
  return { ...after, spec: NodeSpec.parse(after.spec) };
}

/** Builds the node's new folder at `staged` (which does not exist yet). */
export async function stageNode(
  ctx: ObserveContext,
  id: string,
  spec: NodeSpec,
  staged: string,
  log: (line: string) => void = () => {},
): Promise<void> {
  const ws = ctx.paths.workspace;
  switch (spec.source) {
    case "registry": {
      const registryId = spec.registry_id ?? id;
      const label = `node '${id}' ${spec.version}`;
      const stored = spec.sha256 ? await readStoredArchive(ws.nodeStore, spec.sha256) : null;
      let archive = stored && spec.sha256 ? { bytes: stored, sha256: spec.sha256 } : null;
      if (!archive) {
        const url = spec.download_url ??
          (await RegistryClient.fromSettings(ctx.settings).getVersion(registryId, spec.version)).downloadUrl;
        log(`downloading ${label}`);
        archive = await fetchArchive(ws.nodeStore, { url, sha256: spec.sha256, label, net: netOf(ctx) });
      }
      const files = await extractZip(archive.bytes, staged, label);
      await writeMarker(staged, {
        format: 1,
        id,
        source: "registry",
        version: spec.version,
        repository: spec.repository,
        sha256: archive.sha256,
        files,
        stats: statManifest(staged, files),
      });
      return;
    }
    case "git": {
      const mirror = await ensureMirror(ws.gitMirrors, spec.repository, { progress: ctx.progress });
      // Resolving the pinned sha fetches the mirror only when it does not have the commit yet.
      const commit = await resolveRef(mirror, spec.commit);
      log(`checking out ${spec.repository} @ ${commit.slice(0, 12)}`);
      await checkoutInto(mirror, commit, staged, { submodules: true });
      await writeMarker(staged, {
        format: 1,
        id,
        source: "git",
        commit,
        repository: spec.repository,
        files: {},
      });
      await excludeFromGit(staged, MARKER);
      return;
    }
    case "file":
      await writeFileAtomic(staged, await nodeFileBytes(ctx.paths, id, spec, netOf(ctx)));
      return;
    default:
      await Deno.symlink(devPath(ctx.paths.root, spec.path), staged);
  }
}

/**
 * The uncommitted changes of a git checkout at `dir` (empty for anything else). A link (dev node) is only
 * unlinked, so the code it points at is never looked at: it is never trashed, dirty or not.
 */
async function checkoutDirt(dir: string): Promise<string[]> {
  const st = await Deno.lstat(dir).catch(() => null);
  if (!st?.isDirectory || !(await exists(join(dir, ".git")))) return [];
  return await dirtyFiles(dir);
}

/** Moves `from` to `to` (what is in the way goes to the trash first); undo moves it back. */
async function moveEntry(tx: Transaction, from: string, to: string): Promise<void> {
  await tx.trash(to);
  await tx.recordUndo({ op: "restore", path: from, trashPath: to });
  await Deno.mkdir(dirname(to), { recursive: true });
  await Deno.rename(from, to);
}

/** A folder directly under custom_nodes/: one safe path segment, never a path. */
const NodeDir = z.string().refine((d) => segmentProblem(d) === null, "must be a plain folder name");
/** A place under custom_nodes/ (`x`, `.disabled/x`, `x.py.disabled`): plain relative segments only. */
const NodePlace = z.string().refine((p) => relPathProblem(p) === null, "must be a plain relative path");

export const nodeProvider: Provider<ObservedNodes> = {
  type: "node",
  payload: z.discriminatedUnion("kind", [
    z.object({
      kind: z.enum(["create", "update", "replace"]),
      before: z.unknown(),
      after: z.object({
        id: z.string(),
        dir: NodeDir,
        path: NodePlace,
        spec: NodeSpec,
        move: z.boolean().optional(),
      }),
    }),
    z.object({
      kind: z.literal("delete"),
      before: z.object({ path: z.string() }).passthrough(),
      after: z.null(),
    }),
  ]),

  observe(desired, ctx) {
    const dev = Object.entries(desired.nodes).flatMap(([id, s]) =>
      s.source === "local" || s.source === "dev" ? [{ id, path: devPath(ctx.paths.root, s.path) }] : []
    );
    return observeNodes(ctx.paths.customNodes, dev, ctx.force ?? false);
  },

  diff(desired, observed) {
    return diffDesiredNodes(desired, observed);
  },

  async apply(action: Action, tx: Transaction, ctx: ObserveContext): Promise<void | Kept> {
    const before = action.before as { path?: unknown } | null;
    const oldPath = typeof before?.path === "string"
      ? await nodePath(ctx.paths, before.path, `${action.address} installed path`)
      : null;
    // The last guard: a git checkout with uncommitted changes (seen by the plan, or made since) is left as
    // it is unless this apply runs with --force; the plan showed it as drift, this says how to keep them.
    if (oldPath && !ctx.force) {
      const dirt = await checkoutDirt(oldPath);
      if (dirt.length) {
        const id = action.kind === "delete" ? null : actionTarget(action).id;
        return {
          kept: `custom_nodes/${before!.path} has uncommitted changes (${describeDirty(dirt)}); ` +
            keepHint(id, String(before!.path)),
        };
      }
    }
    if (action.kind === "delete") {
      if (!oldPath) throw new CdError("PLAN_INVALID", `${action.address}: delete action without a path`);
      await tx.trash(oldPath);
      return;
    }
    const { id, dir, path, spec, move } = actionTarget(action);
    const finalPath = await nodePath(ctx.paths, path, `${action.address} path`);
    if (move) {
      if (!oldPath) throw new CdError("PLAN_INVALID", `${action.address}: move action without a path`);
      await moveEntry(tx, oldPath, finalPath);
      return;
    }
    const staging = await tx.stagingDir(`node-${id}`);
    const staged = join(staging, dir);
    await stageNode(ctx, id, spec, staged, (l) => tx.log(l));
    if (oldPath && oldPath !== finalPath) await tx.trash(oldPath);
    await tx.trash(finalPath);
    await tx.place(staged, finalPath);
  },
};
