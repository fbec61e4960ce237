/**
 * Core node types of the ComfyUI version an environment actually has: a textual scan of its checkout
 * (`nodes.py`, `comfy_extras/*.py`, `comfy_api_nodes/*.py`) for `NODE_CLASS_MAPPINGS` keys and for the
 * `node_id="..."` of v3 `io.ComfyNode` classes. Nothing is imported or run. The scan only adds types: the
 * built-in list (core_nodes.ts) stays the floor, because a textual scan can miss a type built at runtime.
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
export function coreTypesFromSource(text: string): string[] {
  const out = new Set<string>();
  // `NODE_CLASS_MAPPINGS = {` and `NODE_CLASS_MAPPINGS.update({`: the dict keys are the type names.
  const mappings = /NODE_CLASS_MAPPINGS\s*(?::[^=\n]*)?(?:=|\.update\s*\()\s*\{/g;
  for (const m of text.matchAll(mappings)) {
    const block = braceBlock(text, m.index + m[0].length - 1);
    if (block === null) continue;
    // A key sits at the start of an entry: after `{`, `,` or a line start, followed by `:`.
    for (const k of block.matchAll(/(?:^|[,{\n])\s*(["'])([^"'\n\\]+)\1\s*:/g)) out.add(k[2]);
  }
  // v3 nodes: `class X(io.ComfyNode)` whose schema says `node_id="X"`.
  if (/\bComfyNode\b/.test(text)) {
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
    for (const t of coreTypesFromSource(text)) types.add(t);
  }
  return types;
}
