/**
 * The custom-node provider of the reconciler: observe custom_nodes, diff against `[tool.comfydock.nodes]`,
 * apply one `node.<id>` action. Apply never writes into a live node folder: the new copy is built in the
 * transaction's staging dir (archive extracted, git checkout, or link), the old folder goes to the trash,
 * then the staged one is renamed into place. Python requirements are not installed here: they live in
 * `[dependency-groups].<id>` and the packages provider syncs them after all node folders are in place.
 */
import { join } from "node:path";
import { z } from "zod";
import { segmentProblem } from "../../lib/safe_path.ts";
import { CdError } from "../../lib/errors.ts";
import { exists } from "../../lib/fsx.ts";
import { joinSafe, within } from "../../lib/safe_path.ts";
import { NodeSpec } from "../../reconcile/schema.ts";
import type { Action, ObserveContext, Provider, Transaction } from "../../reconcile/types.ts";
import { extractZip, fetchArchive, readStoredArchive } from "./archive.ts";
import { diffNodes, type NodeActionAfter } from "./diff.ts";
import { describeDirty, dirtyFiles, excludeFromGit } from "../git/git.ts";
import { checkoutInto, ensureMirror, resolveRef } from "../git/mirror.ts";
import { devPath, MARKER, type ObservedNodes, observeNodes, statManifest, writeMarker } from "./observe.ts";
import { RegistryClient } from "./registry.ts";

function actionTarget(action: Action): { id: string; dir: string; spec: NodeSpec } {
  const after = action.after as NodeActionAfter | null;
  if (!after) throw new CdError("PLAN_INVALID", `${action.address}: ${action.kind} action without 'after'`);
  return { id: after.id, dir: after.dir, spec: NodeSpec.parse(after.spec) };
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
        archive = await fetchArchive(ws.nodeStore, { url, sha256: spec.sha256, label, net: ctx.settings });
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
      const mirror = await ensureMirror(ws.gitMirrors, spec.repository);
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
    default:
      await Deno.symlink(devPath(ctx.paths.root, spec.path), staged);
  }
}

/**
 * The last guard before a node folder goes to the trash: a git checkout that has uncommitted changes now
 * (made after the plan, or a plan made without --force) is not touched unless this apply runs with --force.
 */
export async function assertNotDirty(dir: string, address: string, force: boolean): Promise<void> {
  if (force) return;
  // A link (dev node) is only unlinked: the code it points at is never trashed, dirty or not.
  const st = await Deno.lstat(dir).catch(() => null);
  if (!st?.isDirectory || !(await exists(join(dir, ".git")))) return;
  const dirty = await dirtyFiles(dir);
  if (!dirty.length) return;
  throw new CdError(
    "NODE_DIRTY",
    `${address}: ${dir} has uncommitted changes (${describeDirty(dirty)}); it was left as it is`,
    { hint: "commit and push them, or re-run with --force to move the edited checkout to the trash" },
  );
}

/** A folder directly under custom_nodes/: one safe path segment, never a path. */
const NodeDir = z.string().refine((d) => segmentProblem(d) === null, "must be a plain folder name");

export const nodeProvider: Provider<ObservedNodes> = {
  type: "node",
  payload: z.union([
    z.object({
      kind: z.enum(["create", "update", "replace"]),
      before: z.unknown(),
      after: z.object({ id: z.string(), dir: NodeDir, spec: NodeSpec }),
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
    return diffNodes(desired.nodes, desired.paths.root, desired.paths.customNodes, observed);
  },

  async apply(action: Action, tx: Transaction, ctx: ObserveContext) {
    const customNodes = ctx.paths.customNodes;
    // Every folder this moves is a plain name inside custom_nodes that stays inside the environment once
    // the links of its parents are resolved (a ComfyUI checkout from a hostile URL could make custom_nodes
    // a link): a name from .cec or a plan file never reaches outside. A dev node's own folder is only ever
    // linked to: what is moved is the link.
    const folder = async (rel: string) =>
      await within([ctx.paths.root], joinSafe(customNodes, rel, `${action.address} folder`), action.address);
    if (action.kind === "delete") {
      const before = action.before as { path?: string } | null;
      if (!before?.path) throw new CdError("PLAN_INVALID", `${action.address}: delete action without a path`);
      const target = await folder(before.path);
      await assertNotDirty(target, action.address, ctx.force ?? false);
      await tx.trash(target);
      return;
    }
    const { id, dir, spec } = actionTarget(action);
    const target = await folder(dir);
    const staging = await tx.stagingDir(`node-${id}`);
    const staged = join(staging, dir);
    await stageNode(ctx, id, spec, staged, (l) => tx.log(l));
    await Deno.mkdir(customNodes, { recursive: true });
    await assertNotDirty(target, action.address, ctx.force ?? false);
    await tx.trash(target);
    await tx.place(staged, target);
  },
};
