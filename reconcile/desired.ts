/** Reads and validates the desired state from `.cec/` only (DESIGN §1). */
import { parse, TomlError } from "smol-toml";
import type { z } from "zod";
import { CdError } from "../lib/errors.ts";
import { listFiles, readTextIfExists, sha256Hex } from "../lib/fsx.ts";
import { redactSecrets } from "../lib/redact.ts";
import type { EnvPaths } from "./paths.ts";
import { type ModelSpec, type NodeSpec, Pyproject, type WorkflowSpec } from "./schema.ts";

export interface DesiredState {
  paths: EnvPaths;
  pyprojectText: string;
  pyproject: Pyproject;
  comfyui: { version: string; commit: string; url?: string };
  nodes: Record<string, NodeSpec>;
  models: Record<string, ModelSpec>;
  workflows: Record<string, WorkflowSpec>;
  lockText: string | null;
  /** `.cec/workflows/**.json` relative path -> sha256 of its content. */
  workflowFiles: Record<string, string>;
  /** sha256 over pyproject.toml, uv.lock and every tracked workflow file. */
  fingerprint: string;
}

/** Parses pyproject text; errors name the file, the line or key path, and the bad value. */
export function parsePyproject(text: string, file: string): Pyproject {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (e) {
    if (e instanceof TomlError) {
      throw new CdError("PYPROJECT_SYNTAX", `${file}:${e.line}:${e.column}: ${e.message.split("\n")[0]}`, {
        hint: "fix the TOML syntax at that line (duplicate keys and tables are not allowed in TOML)",
      });
    }
    throw e;
  }
  const result = Pyproject.safeParse(raw);
  if (!result.success) throw schemaError(result.error, raw, file, text);
  return result.data;
}

function schemaError(error: z.ZodError, raw: unknown, file: string, text: string): CdError {
  const lines = error.issues.slice(0, 5).map((issue) => {
    const path = issue.path as PropertyKey[];
    const key = path.map(String).join(".") || "(root)";
    const line = keyLine(text, key);
    const where = line === undefined ? file : `${file}:${line}`;
    // A bad record key (a node id): its own check says what is wrong with it.
    if (issue.code === "invalid_key") {
      return `${where}: ${key}: ${issue.issues.map((i) => i.message).join("; ")}`;
    }
    const value = valueAt(raw, path);
    // The value as given, never a credential in it (this message reaches the terminal, --json and CI logs).
    const shown = value === undefined
      ? "missing"
      : `got ${redactSecrets(JSON.stringify(value) ?? "").slice(0, 80)}`;
    return `${where}: ${key}: ${issue.message} (${shown})`;
  });
  const more = error.issues.length > 5 ? `\n(and ${error.issues.length - 5} more)` : "";
  return new CdError("PYPROJECT_INVALID", lines.join("\n") + more, {
    hint: "edit .cec/pyproject.toml to fix the keys named above, then run 'comfydock validate'",
  });
}

/** Splits a TOML key (`a."b.c".d`) into its parts. */
function splitKey(key: string): string[] {
  const parts: string[] = [];
  for (const m of key.matchAll(/\s*("(?:[^"\\]|\\.)*"|'[^']*'|[^.\s]+)\s*(?:\.|$)/g)) {
    const p = m[1];
    parts.push(p.startsWith('"') || p.startsWith("'") ? p.slice(1, -1) : p);
  }
  return parts;
}

/**
 * The 1-based line of TOML `text` that defines `keyPath` (dotted, as zod reports it), or of its deepest
 * defined parent (the table a missing key belongs in). A line scanner, not a parser: the text already
 * failed validation, and a close line is what an annotation needs.
 */
export function keyLine(text: string, keyPath: string): number | undefined {
  let table: string[] = [];
  let best: { line: number; depth: number } | undefined;
  // zod joins the path with dots, so a quoted key holding a dot ("sd.xl") is compared as joined text too.
  const consider = (path: string[], line: number) => {
    const key = path.join(".");
    if (key !== keyPath && !keyPath.startsWith(`${key}.`)) return;
    if (!best || key.length > best.depth) best = { line, depth: key.length };
  };
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    const header = /^\[\[?([^\]]+)\]\]?/.exec(line);
    if (header) {
      table = splitKey(header[1]);
      consider(table, i + 1);
      return;
    }
    const assign =
      /^((?:"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+))*)\s*=/
        .exec(line);
    if (assign) consider([...table, ...splitKey(assign[1])], i + 1);
  });
  return best?.line;
}

function valueAt(raw: unknown, path: PropertyKey[]): unknown {
  let cur: unknown = raw;
  for (const k of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return cur;
}

export async function readDesired(paths: EnvPaths): Promise<DesiredState> {
  const pyprojectText = await readTextIfExists(paths.pyproject);
  if (pyprojectText === null) {
    throw new CdError("PYPROJECT_MISSING", `${paths.pyproject} does not exist`, {
      hint: `is '${paths.name}' a ComfyDock environment? create one with 'comfydock create ${paths.name}'`,
    });
  }
  const pyproject = parsePyproject(pyprojectText, paths.pyproject);
  const lockText = await readTextIfExists(paths.uvLock);
  const workflowFiles: Record<string, string> = {};
  for (const rel of await listFiles(paths.cecWorkflows)) {
    if (rel.endsWith(".json")) {
      workflowFiles[rel] = await sha256Hex(await Deno.readFile(`${paths.cecWorkflows}/${rel}`));
    }
  }
  const cd = pyproject.tool.comfydock;
  const fingerprint = await sha256Hex(
    JSON.stringify([pyprojectText, lockText, Object.entries(workflowFiles).sort()]),
  );
  return {
    paths,
    pyprojectText,
    pyproject,
    comfyui: { version: cd.comfyui_version, commit: cd.comfyui_commit, url: cd.comfyui_url },
    nodes: cd.nodes,
    models: cd.models,
    workflows: cd.workflows.tracked,
    lockText,
    workflowFiles,
    fingerprint,
  };
}
