/**
 * The backward direction for nodes: node packs installed outside ComfyDock (by hand, by ComfyUI-Manager)
 * are pinned into `.cec` as they are, so the next apply keeps them instead of moving them to the trash.
 * - a git checkout with an `origin`: a git node pinned to its HEAD commit (refused while it has uncommitted
 *   changes: those would not be reproducible from the pin);
 * - a pack whose markers name a registry id and version (ours, or ComfyUI-Manager's): a registry node;
 * - a single `.py` file: a file node pinned by its sha256, its bytes kept in `.cec/nodes/<file>` (nothing else
 *   knows where it came from; this way another machine rebuilds it from `.cec` alone);
 * - anything else (plain folder, git without a remote, a symlink): a local node used in place, never
 *   deleted or overwritten by apply.
 * A disabled node (`X.disabled`, `.disabled/X`, `x.py.disabled`) is recorded the same way with
 * `enabled = false`; when a node has an enabled copy and disabled ones (the Manager keeps old versions), the
 * enabled copy is the one recorded. Requirements go into `[dependency-groups].<id>` like `node add`.
 */
import { join, relative } from "node:path";
import type { DesiredState } from "../../reconcile/desired.ts";
import type { TomlEdit } from "../../reconcile/pyproject_edit.ts";
import type { NodeSpec } from "../../reconcile/schema.ts";
import type { EnvPaths } from "../../reconcile/paths.ts";
import { folderFor } from "./diff.ts";
import { cecCopy } from "./file_node.ts";
import { describeDirty, originUrl } from "../git/git.ts";
import { type ObservedNode, observeNodes, toNodeId } from "./observe.ts";
import { folderReader, nodeRequirements } from "./requirements.ts";

export interface NodeCapture {
  edits: TomlEdit[];
  /** Files to write into `.cec` (relative to it): the bytes of captured single-file nodes. */
  files: { path: string; content: string }[];
  names: string[];
  skipped: string[];
}

export type Captured = { spec: NodeSpec; file?: { path: string; content: string } };

/**
 * The spec that pins an installed node as it is. `dir`: where it is read (its bytes, its git origin); `path`:
 * what a local node's path is recorded as. `dirtyInPlace` (adopt): a git checkout with uncommitted changes
 * is recorded as a local node used in place instead of refused (its edits stay the user's, never reset).
 */
export async function specFor(
  o: ObservedNode,
  at: { dir: string; path: string; dirtyInPlace?: boolean },
): Promise<Captured | string> {
  const dir = at.dir;
  const disabled = o.disabled ? { enabled: false } : {};
  if (o.kind === "file") {
    const bytes = await Deno.readFile(dir);
    let content: string;
    try {
      content = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch {
      return "is not UTF-8 text, so it cannot be kept in .cec; move it away or convert it, then capture again";
    }
    return {
      spec: { source: "file", filename: o.dir, sha256: o.sha256!, ...disabled },
      file: { path: cecCopy(o.dir), content },
    };
  }
  if (o.kind === "git" && !(o.dirty.length > 0 && at.dirtyInPlace)) {
    if (o.dirty.length > 0) {
      return `has uncommitted changes (${
        describeDirty(o.dirty)
      }); commit and push them, then run capture again`;
    }
    const origin = await originUrl(dir);
    if (origin && o.commit) {
      // A Manager install of a registry node from git (`.git/.cnr-id`) keeps its registry id.
      const registry = o.installer === "manager" && o.id ? { registry_id: o.id } : {};
      return {
        spec: {
          source: "git",
          repository: origin,
          commit: o.commit,
          directory: o.dir,
          ...registry,
          ...disabled,
        },
      };
    }
  }
  if (o.kind === "archive" && o.id && o.version) {
    return {
      spec: {
        source: "registry",
        version: o.version,
        ...(o.dir !== o.id ? { directory: o.dir } : {}),
        ...disabled,
      },
    };
  }
  // Used in place where it is (disabled ones included: ComfyDock never moves code it does not own).
  const path = o.kind === "link" && o.linkTarget ? o.linkTarget : at.path;
  return { spec: { source: "local", path, directory: o.dir, ...disabled } };
}

export async function captureNodes(paths: EnvPaths, desired: DesiredState): Promise<NodeCapture> {
  const observed = await observeNodes(paths.customNodes);
  const claimed = new Set(Object.entries(desired.nodes).map(([id, spec]) => folderFor(id, spec, observed)));
  const result: NodeCapture = { edits: [], files: [], names: [], skipped: [] };
  const taken = new Map<string, ObservedNode>();
  // Enabled copies first: when a node also has disabled copies, the one ComfyUI loads is recorded.
  const candidates = [...observed.nodes].sort((a, b) => Number(a.disabled) - Number(b.disabled));
  for (const o of candidates) {
    if (claimed.has(o.dir)) continue;
    const id = o.kind === "file" ? o.id! : toNodeId(o.id ?? o.dir);
    const first = taken.get(id);
    if (id in desired.nodes || first) {
      result.skipped.push(
        first?.dir === o.dir && o.disabled
          ? `node ${o.path}: another copy of '${id}' (custom_nodes/${first.path}) is the one recorded`
          : `node ${o.path}: .cec already has a node '${id}' installed elsewhere; rename one of them`,
      );
      continue;
    }
    const dir = join(paths.customNodes, o.path);
    const captured = await specFor(o, { dir, path: relative(paths.root, dir) });
    if (typeof captured === "string") {
      result.skipped.push(`node ${o.path}: ${captured}`);
      continue;
    }
    taken.set(id, o);
    result.edits.push({ path: ["tool", "comfydock", "nodes", id], value: captured.spec });
    if (captured.file) result.files.push(captured.file);
    if (o.kind !== "file") {
      // A git checkout's were read by observe already.
      const reqs = o.requirements ?? (await nodeRequirements(id, folderReader(dir), dir)).requirements;
      if (reqs.length > 0) result.edits.push({ path: ["dependency-groups", id], value: reqs });
    }
    result.names.push(id);
  }
  return result;
}
