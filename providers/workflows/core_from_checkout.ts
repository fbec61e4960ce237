/**
 * Node types a Python source tree defines, read as text (nothing is imported or run): the core types of
 * the ComfyUI version an environment actually has (`nodes.py`, `comfy_extras/*.py`, `comfy_api_nodes/*.py`)
 * and the classes of each installed custom node pack, for environments whose packs health never loaded.
 * Recognised: `NODE_CLASS_MAPPINGS = {...}` (and any `*CLASS_MAPPINGS*` dict merged into it),
 * `NODE_CLASS_MAPPINGS.update({...})`, `NODE_CLASS_MAPPINGS["X"] = ...`, and the `node_id="..."` of v3
 * `io.ComfyNode` / `comfy_entrypoint` nodes. For core types the scan only adds: the built-in list
 * (core_nodes.ts) stays the floor, because a textual scan can miss a type built at runtime.
 */
import { join } from "node:path";
import { readTextIfExists } from "../../lib/fsx.ts";

/** Python sources larger than this are skipped (ComfyUI's biggest, nodes.py, is ~100 KB). */
const MAX_SOURCE_BYTES = 4 * 1024 * 1024;

/** The `{ ... }` literal starting at `open` (an index of `{`), or null when it never closes. */
function braceBlock(text: string, open: number): string | null {
  let depth = 0;
  let quote: string | null = null;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === "\\") i++;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === "#") {
      const nl = text.indexOf("\n", i);
      if (nl < 0) return null;
      i = nl;
    } else if (c === "{") depth++;
    else if (c === "}" && --depth === 0) return text.slice(open + 1, i);
  }
  return null;
}

/** Node type names one Python source defines (pure). */
export function nodeClassesFromSource(text: string): string[] {
  const out = new Set<string>();
  // `NODE_CLASS_MAPPINGS = {` and `NODE_CLASS_MAPPINGS.update({`: the dict keys are the type names. Packs
  // often build parts under other names (`IMPACT_CLASS_MAPPINGS = {`, `NODE_CLASS_MAPPINGS_V2 = {`) and
  // merge them, so any `...CLASS_MAPPINGS...` dict counts (NODE_DISPLAY_NAME_MAPPINGS does not).
  const mappings = /\b[A-Z0-9_]*CLASS_MAPPINGS[A-Z0-9_]*\s*(?::[^=\n]*)?(?:=|\.update\s*\()\s*\{/g;
  for (const m of text.matchAll(mappings)) {
    const block = braceBlock(text, m.index + m[0].length - 1);
    if (block === null) continue;
    // A key sits at the start of an entry: after `{`, `,` or a line start, followed by `:`.
    for (const k of block.matchAll(/(?:^|[,{\n])\s*(["'])([^"'\n\\]+)\1\s*:/g)) out.add(k[2]);
  }
  // `NODE_CLASS_MAPPINGS["X"] = Cls`: one entry at a time.
  for (const k of text.matchAll(/\bNODE_CLASS_MAPPINGS\s*\[\s*(["'])([^"'\n\\]+)\1\s*\]\s*=/g)) out.add(k[2]);
  // v3 nodes: `class X(io.ComfyNode)` whose schema says `node_id="X"`.
  if (/\bComfyNode\b|\bcomfy_entrypoint\b/.test(text)) {
    for (const k of text.matchAll(/\bnode_id\s*=\s*(["'])([^"'\n\\]+)\1/g)) out.add(k[2]);
  }
  return [...out];
}

async function pythonFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.endsWith(".py")) out.push(join(dir, e.name));
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

/**
 * The node types a ComfyUI checkout defines, or an empty set when `comfyuiDir` is not a checkout (no
 * `nodes.py`). Unreadable or oversized files are skipped: the built-in list covers what they would add.
 */
export async function coreTypesFromCheckout(comfyuiDir: string): Promise<Set<string>> {
  const types = new Set<string>();
  const main = join(comfyuiDir, "nodes.py");
  const files = [
    main,
    ...await pythonFiles(join(comfyuiDir, "comfy_extras")),
    ...await pythonFiles(join(comfyuiDir, "comfy_api_nodes")),
  ];
  for (const file of files) {
    const st = await Deno.stat(file).catch(() => null);
    if (!st?.isFile || st.size > MAX_SOURCE_BYTES) continue;
    const text = await readTextIfExists(file);
    if (text === null) continue;
    for (const t of nodeClassesFromSource(text)) types.add(t);
  }
  return types;
}

/** Folders of a pack that hold no node code (and can be large). */
const SKIP_DIRS = new Set([
  ".git",
  "__pycache__",
  "node_modules",
  "web",
  "js",
  "docs",
  "tests",
  "test",
  ".venv",
]);
/** A pack's Python files, breadth first, at most this many and this deep (big packs have ~100). */
const MAX_PACK_FILES = 400;
const MAX_PACK_DEPTH = 4;

/** Every `.py` file of a pack folder (or the file itself for a single-file node), bounded. */
async function packSources(path: string): Promise<string[]> {
  const st = await Deno.stat(path).catch(() => null);
  if (!st) return [];
  if (st.isFile) return path.endsWith(".py") ? [path] : [];
  const out: string[] = [];
  let level = [path];
  for (let depth = 0; depth < MAX_PACK_DEPTH && level.length && out.length < MAX_PACK_FILES; depth++) {
    const next: string[] = [];
    for (const dir of level) {
      let entries: Deno.DirEntry[];
      try {
        entries = await Array.fromAsync(Deno.readDir(dir));
      } catch {
        continue;
      }
      for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
        if (e.isDirectory && !SKIP_DIRS.has(e.name) && !e.name.startsWith(".")) next.push(join(dir, e.name));
        else if (e.isFile && e.name.endsWith(".py") && out.length < MAX_PACK_FILES) {
          out.push(join(dir, e.name));
        }
      }
    }
    level = next;
  }
  return out;
}

/** The node classes a custom node pack (folder or single file) defines, by the textual scan. */
export async function packClassesFromSource(path: string): Promise<Set<string>> {
  const types = new Set<string>();
  for (const file of await packSources(path)) {
    const st = await Deno.stat(file).catch(() => null);
    if (!st?.isFile || st.size > MAX_SOURCE_BYTES) continue;
    const text = await readTextIfExists(file);
    if (text === null || !/CLASS_MAPPINGS|ComfyNode|comfy_entrypoint/.test(text)) continue;
    for (const t of nodeClassesFromSource(text)) types.add(t);
  }
  return types;
}
