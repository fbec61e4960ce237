/**
 * Format-preserving edits of `.cec/pyproject.toml` (toml_edit in WASM keeps comments and layout). Every
 * result is re-parsed and compared with the intended data before anyone may write it: an editor bug
 * becomes an error, never a corrupted desired state.
 */
import { isDeepStrictEqual } from "node:util";
import { parse } from "smol-toml";
import { CdError } from "../lib/errors.ts";
import { parsePyproject } from "./desired.ts";
import type { Pyproject } from "./schema.ts";

/** One edit: set `path` to `value`, or remove the key when `value` is undefined. */
export interface TomlEdit {
  path: string[];
  value: unknown;
}

type EditFn = (input: string, path: string, value: unknown, opts?: { inline?: boolean }) => string;
let editFn: EditFn | null = null;

async function editor(): Promise<EditFn> {
  if (!editFn) {
    const mod = await import("@rainbowatcher/toml-edit-js");
    await mod.default();
    editFn = mod.edit as EditFn;
  }
  return editFn;
}

function quoteKey(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k);
}

function lookup(data: unknown, path: string[]): unknown {
  let cur = data;
  for (const k of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** Drops undefined members so intended values compare equal to what TOML can represent. */
function normalise(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalise);
  if (v && typeof v === "object") {
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).map((
        [k, x],
      ) => [k, normalise(x)]),
    );
  }
  return v;
}

/** Applies edits to pyproject text; returns the new text, checked against the intent and the schema. */
export async function editPyprojectText(
  text: string,
  edits: TomlEdit[],
  file = "pyproject.toml",
): Promise<{ text: string; data: Pyproject }> {
  const edit = await editor();
  let out = text;
  for (const e of edits) {
    const value = normalise(e.value);
    // Objects are written as real tables (inline: false): reviewable diffs, one key per line.
    try {
      out = edit(out, e.path.map(quoteKey).join("."), value, { inline: false });
    } catch (err) {
      // toml_edit panics on a key set in a table that holds only sub-tables (`[tool.uv]` with just
      // `[[tool.uv.index]]` under it): set the whole parent table instead (its layout is rewritten).
      if (e.path.length < 2) throw err;
      const parentPath = e.path.slice(0, -1);
      const parent = { ...(normalise(lookup(parse(out), parentPath)) as Record<string, unknown> ?? {}) };
      if (value === undefined) delete parent[e.path[e.path.length - 1]];
      else parent[e.path[e.path.length - 1]] = value;
      out = edit(out, parentPath.map(quoteKey).join("."), parent, { inline: false });
    }
  }
  let reparsed: unknown;
  try {
    reparsed = parse(out);
  } catch (err) {
    throw new CdError("PYPROJECT_EDIT_FAILED", `editing ${file} produced invalid TOML: ${err}`, {
      hint: "this is a ComfyDock bug; your file was not changed. Please report it with the file attached.",
    });
  }
  for (const e of edits) {
    // smol-toml builds tables with a null prototype: normalise both sides to plain objects to compare.
    const got = normalise(lookup(reparsed, e.path));
    const want = normalise(e.value);
    if (!isDeepStrictEqual(got, want)) {
      throw new CdError(
        "PYPROJECT_EDIT_FAILED",
        `editing ${file} at ${e.path.join(".")} gave ${JSON.stringify(got)} instead of ${
          JSON.stringify(want)
        }`,
        {
          hint:
            "this is a ComfyDock bug; your file was not changed. Please report it with the file attached.",
        },
      );
    }
  }
  return { text: out, data: parsePyproject(out, file) };
}
