/**
 * What is installed in `ComfyUI/custom_nodes`: one entry per folder, from our marker file
 * (`.comfydock.json`: id, source, version|commit, archive sha256 and a manifest of the extracted files'
 * hashes, like ComfyUI-Manager's `.tracking`), from ComfyUI-Manager's own markers (`.tracking` for registry
 * archives, `.git/.cnr-id` for registry nodes it cloned) so environments it made are understood, from git
 * (HEAD, uncommitted changes) and from symlinks (dev nodes). Single-file nodes (`custom_nodes/x.py`, which
 * ComfyUI loads as modules) are observed by the sha256 of their content.
 *
 * Disabled nodes are observed in every form ComfyUI skips (its loader skips any entry whose name ends with
 * `.disabled`, and every file that is not `.py`): `X.disabled` (folders; older ComfyUI-Manager),
 * `.disabled/X` and `.disabled/X@1_2_0` (the current Manager, which keeps one copy per version) and
 * `x.py.disabled` (single files).
 */
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { z } from "zod";
import { exists, readTextIfExists, sha256Hex, writeFileAtomic } from "../../lib/fsx.ts";
import { dirtyFiles, headCommit, trackedFiles } from "../git/git.ts";
import { folderReader, nodeRequirements, pyprojectVersionAndName } from "./requirements.ts";

export const MARKER = ".comfydock.json";

export const NodeMarker = z.object({
  format: z.literal(1),
  id: z.string(),
  source: z.enum(["registry", "git"]),
  version: z.string().optional(),
  commit: z.string().optional(),
  repository: z.string().optional(),
  sha256: z.string().optional(),
  /** Extracted file (relative path) -> sha256; empty for git nodes (git tracks their files). */
  files: z.record(z.string(), z.string()).default({}),
  /**
   * Extracted file -> [size, mtime in ms] right after extraction: plan re-hashes only files whose size or
   * mtime moved. Absent in markers written before it existed (then every file is hashed).
   */
  stats: z.record(z.string(), z.tuple([z.number(), z.number()])).optional(),
});
export type NodeMarker = z.infer<typeof NodeMarker>;

/** A node id made from a folder or file name: lower case, only [a-z0-9._-] (what `.cec` accepts as a key). */
export function toNodeId(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[.-]+|\.+$/g, "") || "node";
}

/** The id of a single-file node: its file name without `.py` (`My_Node.py` -> `my_node`). */
export function fileNodeId(filename: string): string {
  return toNodeId(filename.replace(/\.py$/, ""));
}

export async function writeMarker(dir: string, marker: NodeMarker): Promise<void> {
  await writeFileAtomic(join(dir, MARKER), JSON.stringify(marker, null, 2) + "\n");
}

function parseMarker(text: string | null): NodeMarker | null {
  if (text === null) return null;
  try {
    const r = NodeMarker.safeParse(JSON.parse(text));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

export async function readMarker(dir: string): Promise<NodeMarker | null> {
  return parseMarker(await readTextIfExists(join(dir, MARKER)));
}

// Sync reads below on purpose: plan observes every node folder, and an awaited fs call per step costs more
// than the step itself (50 nodes: ~21 ms async -> a few ms sync).
function readTextSync(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return null;
    throw e;
  }
}

function existsSync(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

export type ObservedNode = {
  /** Path under custom_nodes (`foo`, `foo.disabled`, `.disabled/foo`). */
  path: string;
  /** Entry name without the disabled decoration: what a node spec's `directory` (or `filename`) names. */
  dir: string;
  disabled: boolean;
  kind: "archive" | "git" | "link" | "plain" | "file";
  /** Who installed it, as far as markers tell. */
  installer: "comfydock" | "manager" | null;
  id: string | null;
  version: string | null;
  commit: string | null;
  /** Archive sha256 (from the marker) for registry nodes; the content's sha256 for single-file nodes. */
  sha256: string | null;
  /** Absolute target of a symlinked (dev) node. */
  linkTarget: string | null;
  /** `git status --porcelain` lines (uncommitted changes). */
  dirty: string[];
  /** Files of the marker's manifest that were edited or deleted by hand. */
  changedFiles: string[];
  /** Git checkouts: the requirements its files declare at HEAD (what `[dependency-groups].<id>` must hold). */
  requirements: string[] | null;
};

export type ObservedNodes = {
  nodes: ObservedNode[];
  /** Ids of desired dev/local nodes whose `path` does not exist. */
  missingDevPaths: string[];
  /**
   * `--force` (ObserveContext.force): git checkouts with uncommitted changes may be replaced or removed (they
   * go to the trash). Part of the observed state so a plan made with it is stale for an apply without it.
   */
  force: boolean;
};

/** Where a dev/local node's code lives: absolute, or relative to the environment root. */
export function devPath(envRoot: string, path: string): string {
  return isAbsolute(path) ? path : resolve(envRoot, path);
}

async function hashFile(path: string): Promise<string | null> {
  try {
    return sha256Hex(await Deno.readFile(path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

export type FileStats = Record<string, [number, number]>;

// Sync stats on purpose: plan stats every file of every registry node (see models' walk.ts statFile).
function statOf(path: string): [number, number] | null {
  try {
    const st = Deno.lstatSync(path);
    return st.isFile ? [st.size, st.mtime?.getTime() ?? 0] : null;
  } catch {
    return null;
  }
}

/** Size and mtime of each manifest file, recorded in the marker beside the hashes. */
export function statManifest(dir: string, files: Record<string, string>): FileStats {
  const out: FileStats = {};
  for (const rel of Object.keys(files)) {
    const st = statOf(join(dir, rel));
    if (st) out[rel] = st;
  }
  return out;
}

/**
 * Files of a manifest whose content differs from what was extracted (or that are gone). A file whose size
 * and mtime are those recorded at extraction is taken as unchanged without reading it: a stat instead of a
 * hash per file on every plan. The trade-off: an edit that keeps both the size and the mtime (to the
 * millisecond) goes unseen; editors, git and unzip all set a new mtime, so that takes a deliberate `touch -d`.
 * Any other file (stat moved, or no recorded stat) is hashed and compared with the manifest.
 */
export async function changedFiles(
  dir: string,
  files: Record<string, string>,
  stats: FileStats = {},
): Promise<string[]> {
  const changed: string[] = [];
  for (const [rel, sha] of Object.entries(files)) {
    const recorded = stats[rel];
    if (recorded) {
      const now = statOf(join(dir, rel));
      if (now && now[0] === recorded[0] && now[1] === recorded[1]) continue;
    }
    if ((await hashFile(join(dir, rel))) !== sha) changed.push(rel);
  }
  return changed;
}

function unknownNode(path: string, dir: string, disabled: boolean): ObservedNode {
  return {
    path,
    dir,
    disabled,
    kind: "plain",
    installer: null,
    id: null,
    version: null,
    commit: null,
    sha256: null,
    linkTarget: null,
    dirty: [],
    changedFiles: [],
    requirements: null,
  };
}

function observeFile(customNodes: string, path: string, dir: string, disabled: boolean): ObservedNode {
  const sha256 = sha256Hex(Deno.readFileSync(join(customNodes, path)));
  // No marker fits in a file: its id is its name (`My_Node.py` -> `my_node`), as capture records it.
  const id = fileNodeId(dir);
  return { ...unknownNode(path, dir, disabled), kind: "file", id, sha256 };
}

async function observeDir(
  customNodes: string,
  path: string,
  dir: string,
  disabled: boolean,
): Promise<ObservedNode> {
  const full = join(customNodes, path);
  const base = unknownNode(path, dir, disabled);
  const st = Deno.lstatSync(full);
  if (st.isSymlink) {
    const target = Deno.readLinkSync(full);
    return { ...base, kind: "link", linkTarget: isAbsolute(target) ? target : resolve(customNodes, target) };
  }
  const marker = parseMarker(readTextSync(join(full, MARKER)));
  if (existsSync(join(full, ".git"))) {
    const cnrId = (await readTextIfExists(join(full, ".git", ".cnr-id")))?.trim() || null;
    return {
      ...base,
      kind: "git",
      installer: marker ? "comfydock" : cnrId ? "manager" : null,
      id: marker?.id ?? cnrId,
      commit: await headCommit(full),
      dirty: await dirtyFiles(full),
      requirements: (await nodeRequirements(dir, folderReader(full), full)).requirements,
    };
  }
  if (marker) {
    return {
      ...base,
      kind: "archive",
      installer: "comfydock",
      id: marker.id,
      version: marker.version ?? null,
      sha256: marker.sha256 ?? null,
      changedFiles: await changedFiles(full, marker.files, marker.stats),
    };
  }
  if (existsSync(join(full, ".tracking"))) {
    // ComfyUI-Manager's registry install: its id and version are those of the node's own pyproject.
    const meta = pyprojectVersionAndName(await readTextIfExists(join(full, "pyproject.toml")));
    return { ...base, kind: "archive", installer: "manager", id: meta.name, version: meta.version };
  }
  return base;
}

const DISABLED = ".disabled";

/**
 * Where ComfyDock puts a disabled node: what ComfyUI-Manager does today (a folder moves into
 * `custom_nodes/.disabled/`, a single file gets `.disabled` appended). ComfyUI skips both: its loader skips
 * every entry whose name ends with `.disabled`, and `.disabled` itself is such an entry.
 */
export function disabledPath(dir: string, file: boolean): string {
  return file ? `${dir}${DISABLED}` : `${DISABLED}/${dir}`;
}

/**
 * Every node in custom_nodes: folders, links and `.py` files, enabled or disabled (other files, such as
 * example_node.py.example, are not nodes: ComfyUI does not load them).
 */
export async function observeNodes(
  customNodes: string,
  devNodes: { id: string; path: string }[] = [],
  force = false,
): Promise<ObservedNodes> {
  const nodes: ObservedNode[] = [];
  let entries: Deno.DirEntry[] = [];
  try {
    entries = await Array.fromAsync(Deno.readDir(customNodes));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const byName = (a: Deno.DirEntry, b: Deno.DirEntry) => a.name.localeCompare(b.name);
  // Asked once, and only when custom_nodes holds a .py file: one git call on a plan that needs it.
  let shipped: Set<string> | null = null;
  const shippedWithComfyUI = async () => {
    if (!shipped) {
      const tracked = await trackedFiles(dirname(customNodes), basename(customNodes));
      shipped = new Set([...tracked].map((p) => p.slice(basename(customNodes).length + 1)));
    }
    return shipped;
  };
  for (const e of entries.sort(byName)) {
    if (e.name === DISABLED && e.isDirectory) {
      for (const d of (await Array.fromAsync(Deno.readDir(join(customNodes, e.name)))).sort(byName)) {
        if (d.name.startsWith(".") || d.name === "__pycache__") continue;
        const path = `${DISABLED}/${d.name}`;
        if (d.isFile && d.name.endsWith(".py")) nodes.push(observeFile(customNodes, path, d.name, true));
        else if (d.isDirectory || d.isSymlink) {
          // The Manager names the copies it keeps `<id>@<version with _ for .>`.
          nodes.push(await observeDir(customNodes, path, d.name.replace(/@[^@]*$/, ""), true));
        }
      }
      continue;
    }
    if (e.name.startsWith(".") || e.name === "__pycache__") continue;
    const disabled = e.name.endsWith(DISABLED);
    const dir = disabled ? e.name.slice(0, -DISABLED.length) : e.name;
    if (e.isFile) {
      if (dir.endsWith(".py") && !(await shippedWithComfyUI()).has(e.name)) {
        nodes.push(observeFile(customNodes, e.name, dir, disabled));
      }
      continue;
    }
    if (e.isDirectory || e.isSymlink) nodes.push(await observeDir(customNodes, e.name, dir, disabled));
  }
  const missingDevPaths: string[] = [];
  for (const d of devNodes) if (!(await exists(d.path))) missingDevPaths.push(d.id);
  return { nodes, missingDevPaths, force };
}
