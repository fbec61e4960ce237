/**
 * The backward direction for nodes: node packs installed outside ComfyDock (by hand, by ComfyUI-Manager)
 * are pinned into `.cec` as they are, so the next apply keeps them instead of moving them to the trash.
 * - a git checkout with an `origin`: a git node pinned to its HEAD commit (refused while it has uncommitted
 *   changes: those would not be reproducible from the pin);
 * - a pack whose markers name a registry id and version (ours, or ComfyUI-Manager's): a registry node;
 * - anything else (plain folder, git without a remote, a symlink): a local node used in place, never
 *   deleted or overwritten by apply.
 * Requirements go into `[dependency-groups].<id>` like `node add`.
 */
import { join, relative } from "node:path";
import type { DesiredState } from "../../reconcile/desired.ts";
import type { TomlEdit } from "../../reconcile/pyproject_edit.ts";
import type { NodeSpec } from "../../reconcile/schema.ts";
import { readTextIfExists } from "../../lib/fsx.ts";
import type { EnvPaths } from "../../reconcile/paths.ts";
import { folderFor } from "./diff.ts";
import { describeDirty, originUrl } from "../git/git.ts";
import { type ObservedNode, observeNodes } from "./observe.ts";
import { nodeRequirements } from "./requirements.ts";

export interface NodeCapture {
  edits: TomlEdit[];
  names: string[];
  skipped: string[];
}

function idFor(o: ObservedNode): string {
  return (o.id ?? o.dir).toLowerCase().replace(/[^a-z0-9._-]+/g, "-");
}

async function specFor(paths: EnvPaths, o: ObservedNode): Promise<NodeSpec | string> {
  const dir = join(paths.customNodes, o.path);
  if (o.kind === "git") {
    if (o.dirty.length > 0) {
      return `has uncommitted changes (${
        describeDirty(o.dirty)
      }); commit and push them, then run capture again`;
    }
    const origin = await originUrl(dir);
    if (origin && o.commit) {
      return { source: "git", repository: origin, commit: o.commit, directory: o.dir };
    }
  }
  if (o.kind === "archive" && o.id && o.version) {
    return { source: "registry", version: o.version, ...(o.dir !== o.id ? { directory: o.dir } : {}) };
  }
  const path = o.kind === "link" && o.linkTarget ? o.linkTarget : relative(paths.root, dir);
  return { source: "local", path, directory: o.dir };
}

export async function captureNodes(paths: EnvPaths, desired: DesiredState): Promise<NodeCapture> {
  const observed = await observeNodes(paths.customNodes);
  const claimed = new Set(Object.entries(desired.nodes).map(([id, spec]) => folderFor(id, spec, observed)));
  const result: NodeCapture = { edits: [], names: [], skipped: [] };
  for (const o of observed.nodes) {
    if (o.disabled || claimed.has(o.dir)) continue;
    const id = idFor(o);
    if (id in desired.nodes) {
      result.skipped.push(
        `node ${o.dir}: .cec already has a node '${id}' installed elsewhere; rename one of them`,
      );
      continue;
    }
    const spec = await specFor(paths, o);
    if (typeof spec === "string") {
      result.skipped.push(`node ${o.dir}: ${spec}`);
      continue;
    }
    const dir = join(paths.customNodes, o.path);
    const reqs = await nodeRequirements(id, (name) => readTextIfExists(join(dir, name)), dir);
    result.edits.push({ path: ["tool", "comfydock", "nodes", id], value: spec });
    if (reqs.requirements.length > 0) {
      result.edits.push({ path: ["dependency-groups", id], value: reqs.requirements });
    }
    result.names.push(id);
  }
  return result;
}
