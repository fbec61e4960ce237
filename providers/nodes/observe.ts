/**
 * What is installed in `ComfyUI/custom_nodes`: one entry per folder, from our marker file
 * (`.comfydock.json`: id, source, version|commit, archive sha256 and a manifest of the extracted files'
 * hashes, like ComfyUI-Manager's `.tracking`), from ComfyUI-Manager's own markers (`.tracking` for registry
 * archives, `.git/.cnr-id` for registry nodes it cloned) so environments it made are understood, from git
 * (HEAD, uncommitted changes) and from symlinks (dev nodes). Disabled folders (`X.disabled`,
 * `.disabled/X`) are reported and never acted on.
 */
import { createHash } from "node:crypto";
import { isAbsolute, join, resolve } from "node:path";
import { z } from "zod";
import { exists, readTextIfExists, writeFileAtomic } from "../../lib/fsx.ts";
import { gitDirty, gitHead } from "./git_node.ts";
import { pyprojectVersionAndName } from "./requirements.ts";

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
});
export type NodeMarker = z.infer<typeof NodeMarker>;

export async function writeMarker(dir: string, marker: NodeMarker): Promise<void> {
  await writeFileAtomic(join(dir, MARKER), JSON.stringify(marker, null, 2) + "\n");
}

export async function readMarker(dir: string): Promise<NodeMarker | null> {
  const text = await readTextIfExists(join(dir, MARKER));
  if (text === null) return null;
  try {
    const r = NodeMarker.safeParse(JSON.parse(text));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

export type ObservedNode = {
  /** Path under custom_nodes (`foo`, `foo.disabled`, `.disabled/foo`). */
  path: string;
  /** Folder name without the disabled decoration: what a node spec's `directory` names. */
  dir: string;
  disabled: boolean;
  kind: "archive" | "git" | "link" | "plain";
  /** Who installed it, as far as markers tell. */
  installer: "comfydock" | "manager" | null;
  id: string | null;
  version: string | null;
  commit: string | null;
  sha256: string | null;
  /** Absolute target of a symlinked (dev) node. */
  linkTarget: string | null;
  /** `git status --porcelain` lines (uncommitted changes). */
  dirty: string[];
  /** Files of the marker's manifest that were edited or deleted by hand. */
  changedFiles: string[];
};

export type ObservedNodes = {
  nodes: ObservedNode[];
  /** Ids of desired dev/local nodes whose `path` does not exist. */
  missingDevPaths: string[];
};

/** Where a dev/local node's code lives: absolute, or relative to the environment root. */
export function devPath(envRoot: string, path: string): string {
  return isAbsolute(path) ? path : resolve(envRoot, path);
}

async function hashFile(path: string): Promise<string | null> {
  try {
    return createHash("sha256").update(await Deno.readFile(path)).digest("hex");
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Files of a manifest whose content differs from what was extracted (or that are gone). */
export async function changedFiles(dir: string, files: Record<string, string>): Promise<string[]> {
  const changed: string[] = [];
  for (const [rel, sha] of Object.entries(files)) {
    if ((await hashFile(join(dir, rel))) !== sha) changed.push(rel);
  }
  return changed;
}

async function observeDir(
  customNodes: string,
  path: string,
  dir: string,
  disabled: boolean,
): Promise<ObservedNode> {
  const full = join(customNodes, path);
  const base: ObservedNode = {
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
  };
  const st = await Deno.lstat(full);
  if (st.isSymlink) {
    const target = await Deno.readLink(full);
    return { ...base, kind: "link", linkTarget: isAbsolute(target) ? target : resolve(customNodes, target) };
  }
  const marker = await readMarker(full);
  if (await exists(join(full, ".git"))) {
    const cnrId = (await readTextIfExists(join(full, ".git", ".cnr-id")))?.trim() || null;
    return {
      ...base,
      kind: "git",
      installer: marker ? "comfydock" : cnrId ? "manager" : null,
      id: marker?.id ?? cnrId,
      commit: await gitHead(full),
      dirty: disabled ? [] : await gitDirty(full),
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
      changedFiles: disabled ? [] : await changedFiles(full, marker.files),
    };
  }
  if (await exists(join(full, ".tracking"))) {
    // ComfyUI-Manager's registry install: its id and version are those of the node's own pyproject.
    const meta = pyprojectVersionAndName(await readTextIfExists(join(full, "pyproject.toml")));
    return { ...base, kind: "archive", installer: "manager", id: meta.name, version: meta.version };
  }
  return base;
}

/** Every node folder in custom_nodes (files such as example_node.py.example are not nodes). */
export async function observeNodes(
  customNodes: string,
  devNodes: { id: string; path: string }[] = [],
): Promise<ObservedNodes> {
  const nodes: ObservedNode[] = [];
  let entries: Deno.DirEntry[] = [];
  try {
    entries = await Array.fromAsync(Deno.readDir(customNodes));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.name === ".disabled" && e.isDirectory) {
      for (const d of await Array.fromAsync(Deno.readDir(join(customNodes, e.name)))) {
        if (d.isDirectory) nodes.push(await observeDir(customNodes, `.disabled/${d.name}`, d.name, true));
      }
      continue;
    }
    if (e.name.startsWith(".") || e.name === "__pycache__") continue;
    if (!e.isDirectory && !e.isSymlink) continue;
    if (e.isSymlink && !e.name.endsWith(".disabled")) {
      nodes.push(await observeDir(customNodes, e.name, e.name, false));
      continue;
    }
    const disabled = e.name.endsWith(".disabled");
    nodes.push(await observeDir(customNodes, e.name, disabled ? e.name.slice(0, -9) : e.name, disabled));
  }
  const missingDevPaths: string[] = [];
  for (const d of devNodes) if (!(await exists(d.path))) missingDevPaths.push(d.id);
  return { nodes, missingDevPaths };
}
