/**
 * The workflow files on disk: ComfyUI's workflow folder, the tracked copies in `.cec/workflows/`, the
 * `.cec/.comfydockignore` rules, and the engine state that remembers each file's content hash at its last
 * sync (`<state>/workflows_synced.json`: what makes "changed in ComfyUI" tell apart from "changed in .cec").
 */
import { join } from "node:path";
import ignore from "ignore";
import { CdError, errorMessage } from "../../lib/errors.ts";
import { listFiles, readTextIfExists, sha256Hex, writeFileAtomic } from "../../lib/fsx.ts";
import { relPathProblem } from "../../lib/safe_path.ts";
import type { EnvPaths } from "../../reconcile/paths.ts";
import type { NodeSpec } from "../../reconcile/schema.ts";
import { MAX_WORKFLOW_BYTES } from "./analyze.ts";
import { NodePackResolver } from "./node_map.ts";

/** A tracked workflow's file key in pyproject: `workflows/<rel>`. */
export const CEC_PREFIX = "workflows/";

/** `sub/My flow.json` -> `sub/My flow` (the name users type and the `workflow.<name>` address). */
export function nameOfRel(rel: string): string {
  return rel.replace(/\.json$/i, "");
}

/** The path under the workflows folders for a tracked entry's `file` (`workflows/x.json` -> `x.json`). */
export function relOfFile(file: string): string {
  return file.startsWith(CEC_PREFIX) ? file.slice(CEC_PREFIX.length) : file;
}

/** Rejects names that would escape the workflows folder (they come from users and from pyproject). */
export function checkRel(rel: string): string {
  const why = relPathProblem(rel) ?? (rel.endsWith(".json") ? null : "does not end in .json");
  if (why) {
    throw new CdError(
      "WORKFLOW_BAD_PATH",
      `'${rel}' is not a workflow file inside the workflows folder: it ${why}`,
      {
        hint: "workflow names are paths relative to ComfyUI/user/default/workflows, like 'portraits/flux'",
      },
    );
  }
  return rel;
}

/** Reads and parses one workflow file (JSON, or a PNG/WebP ComfyUI saved), refusing oversized files first. */
export async function readWorkflowFile(path: string): Promise<unknown> {
  let size: number;
  try {
    size = (await Deno.stat(path)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new CdError("WORKFLOW_NOT_FOUND", `${path} does not exist`, {
        hint: "check the path ('comfydock workflow status' lists the workflows of the environment)",
      });
    }
    throw e;
  }
  if (size > MAX_WORKFLOW_BYTES) {
    throw new CdError("WORKFLOW_TOO_LARGE", `${path}: ${size} bytes is larger than the limit`, {
      hint: `workflows are limited to ${
        MAX_WORKFLOW_BYTES / 1024 / 1024
      } MiB; is this really a workflow file?`,
    });
  }
  const { workflowFromBytes } = await import("./embedded.ts");
  return workflowFromBytes(await Deno.readFile(path), path).json;
}

/** `rel -> sha256` of every `*.json` below a workflows folder (missing folder: none). */
export async function hashWorkflowDir(dir: string): Promise<Record<string, string>> {
  const rels = (await listFiles(dir)).filter((r) => r.toLowerCase().endsWith(".json"));
  const hashes = await Promise.all(rels.map(async (r) => sha256Hex(await Deno.readFile(join(dir, r)))));
  return Object.fromEntries(rels.map((r, i) => [r, hashes[i]]));
}

/** The `.cec/.comfydockignore` matcher (gitignore syntax); no file: nothing is ignored. */
export async function loadIgnore(paths: EnvPaths): Promise<(rel: string) => boolean> {
  const text = await readTextIfExists(paths.ignoreFile);
  if (!text) return () => false;
  const ig = ignore().add(text);
  return (rel) => ig.ignores(rel);
}

// ---------------------------------------------------------------------------------------------------------
// The hash of each tracked file at its last sync

export type SyncedHashes = Record<string, string>;

function syncedFile(paths: EnvPaths): string {
  return join(paths.state, "workflows_synced.json");
}

export async function readSynced(paths: EnvPaths): Promise<SyncedHashes> {
  const text = await readTextIfExists(syncedFile(paths));
  if (text === null) return {};
  try {
    const data = JSON.parse(text);
    if (data && typeof data === "object" && !Array.isArray(data)) {
      return Object.fromEntries(
        Object.entries(data).filter(([, v]) => typeof v === "string"),
      ) as SyncedHashes;
    }
  } catch {
    // A damaged state file only loses the three-way history: every difference then counts as a conflict,
    // which overwrites nothing.
  }
  return {};
}

/** Sets (hash) or forgets (null) the last-sync hash of some files. */
export async function recordSynced(paths: EnvPaths, changes: Record<string, string | null>): Promise<void> {
  if (Object.keys(changes).length === 0) return;
  const data = await readSynced(paths);
  for (const [rel, hash] of Object.entries(changes)) {
    if (hash === null) delete data[rel];
    else data[rel] = hash;
  }
  const sorted = Object.fromEntries(Object.entries(data).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  await writeFileAtomic(syncedFile(paths), JSON.stringify(sorted, null, 1) + "\n");
}

// ---------------------------------------------------------------------------------------------------------
// Which node index the analysis uses

/**
 * The resolver analysis uses, best source first: an explicit `--node-map FILE`, the workspace's node index
 * (`.metadata/node_index.db`, filled by `comfydock node index update`), `fallbackMap` (COMFYDOCK_NODE_MAP,
 * Settings.nodeMapFile), else the built-in core list only. Core types of the environment's ComfyUI checkout
 * are added when there is one.
 */
export async function loadAnalysisResolver(opts: {
  nodeMap?: string;
  fallbackMap?: string;
  nodeIndexDb?: string;
  comfyuiDir?: string;
}): Promise<{ resolver: NodePackResolver; source: string }> {
  let chosen: { resolver: NodePackResolver; source: string } | null = null;
  if (!opts.nodeMap && opts.nodeIndexDb) {
    const { loadResolver: fromIndex } = await import("../nodes/node_index.ts");
    const resolver = fromIndex(opts.nodeIndexDb);
    if (resolver) chosen = { resolver, source: `node index ${opts.nodeIndexDb}` };
  }
  chosen ??= await loadResolver(opts.nodeMap ?? opts.fallbackMap);
  if (!opts.comfyuiDir) return chosen;
  const { coreTypesFromCheckout } = await import("./core_from_checkout.ts");
  const core = await coreTypesFromCheckout(opts.comfyuiDir);
  if (core.size === 0) return chosen;
  return {
    resolver: chosen.resolver.withCoreTypes(core),
    source: `${chosen.source} + ${core.size} core types from ${opts.comfyuiDir}`,
  };
}

/**
 * The resolver of an environment's commands: its workspace's node index, its ComfyUI checkout's core types,
 * and first of all the packs installed in it (health's record, else a scan of their sources).
 */
export async function envResolver(
  paths: EnvPaths,
  nodeMap?: string,
  fallbackMap?: string,
): Promise<{ resolver: NodePackResolver; source: string }> {
  const base = await loadAnalysisResolver({
    nodeMap,
    fallbackMap,
    nodeIndexDb: paths.workspace.nodeIndexDb,
    comfyuiDir: paths.comfyui,
  });
  const { readDesired } = await import("../../reconcile/desired.ts");
  const { environmentClasses } = await import("./env_classes.ts");
  // An invalid .cec only loses the node ids: packs are then named by their folders.
  const nodes = await readDesired(paths).then((d) => d.nodes, (): Record<string, NodeSpec> => ({}));
  const env = await environmentClasses(paths, nodes);
  if (env.classes.size === 0) return base;
  const packs = env.fromHealth.length + env.scanned.length;
  return {
    resolver: base.resolver.withEnvironment(env.classes),
    source: `${packs} installed pack(s) of '${paths.name}' (${env.classes.size} classes) + ${base.source}`,
  };
}

/**
 * The resolver for commands run without a node index DB: ComfyUI-Manager's extension-node-map.json from
 * `--node-map FILE` or `COMFYDOCK_NODE_MAP`, else the built-in core list only (custom types then show as
 * unknown, with a hint to give a map).
 */
export async function loadResolver(
  nodeMap?: string,
): Promise<{ resolver: NodePackResolver; source: string }> {
  const file = nodeMap;
  if (!file) return { resolver: new NodePackResolver([], new Set()), source: "built-in core node list" };
  const text = await readTextIfExists(file);
  if (text === null) {
    throw new CdError("NODE_MAP_NOT_FOUND", `node map ${file} does not exist`, {
      hint: "pass ComfyUI-Manager's extension-node-map.json with --node-map FILE (or set COMFYDOCK_NODE_MAP)",
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CdError("NODE_MAP_INVALID", `node map ${file} is not valid JSON: ${errorMessage(e)}`, {
      hint: "download extension-node-map.json again from ComfyUI-Manager",
    });
  }
  return { resolver: NodePackResolver.fromExtensionNodeMap(json), source: file };
}
