/**
 * GitHub Actions' file protocol and workflow commands: `$GITHUB_OUTPUT` entries in the heredoc form (safe for
 * multi-line values), `::error file=...,line=...::` and `::warning ...::` annotations (GitHub pins them to the
 * pyproject.toml line in the pull request) and `::group::`/`::endgroup::` folding of long output. Pure:
 * strings in, strings out.
 */
import { isAbsolute, relative } from "node:path";
import type { CdError } from "../lib/errors.ts";

/** One `$GITHUB_OUTPUT` block per output: `name<<DELIM`, the value, `DELIM`, with a delimiter not in the value. */
export function formatOutputs(outputs: Record<string, string>): string {
  let out = "";
  for (const [name, value] of Object.entries(outputs)) {
    let delim = `ghadelimiter_${crypto.randomUUID()}`;
    while (value.includes(delim)) delim = `ghadelimiter_${crypto.randomUUID()}`;
    out += `${name}<<${delim}\n${value}\n${delim}\n`;
  }
  return out;
}

const escapeData = (s: string) => s.replaceAll("%", "%25").replaceAll("\r", "%0D").replaceAll("\n", "%0A");
const escapeProperty = (s: string) => escapeData(s).replaceAll(":", "%3A").replaceAll(",", "%2C");

export interface Annotation {
  file?: string;
  line?: number;
  col?: number;
  title?: string;
  message: string;
}

function annotation(level: "error" | "warning", a: Annotation): string {
  const props = [
    a.file !== undefined ? `file=${escapeProperty(a.file)}` : null,
    a.line !== undefined ? `line=${a.line}` : null,
    a.col !== undefined ? `col=${a.col}` : null,
    a.title !== undefined ? `title=${escapeProperty(a.title)}` : null,
  ].filter((p) => p !== null);
  return `::${level}${props.length ? ` ${props.join(",")}` : ""}::${escapeData(a.message)}`;
}

export function errorCommand(a: Annotation): string {
  return annotation("error", a);
}

export function warningCommand(a: Annotation): string {
  return annotation("warning", a);
}

/** Folds the lines that follow, up to `endGroup()`, under `title` in the job's log. */
export function startGroup(title: string): string {
  return `::group::${escapeData(title)}`;
}

export function endGroup(): string {
  return "::endgroup::";
}

/** A place in pyproject.toml named by a validation error; `key` is set when the error names a key, not a line. */
export interface PyprojectLocation {
  file: string;
  line?: number;
  col?: number;
  key?: string;
  message: string;
}

/**
 * The locations in a pyproject error (reconcile/desired.ts): syntax errors say `file:line:col: message`,
 * schema errors say `file: key.path: message (got ...)`, one per line.
 */
export function pyprojectLocations(error: CdError): PyprojectLocation[] {
  if (error.code === "PYPROJECT_SYNTAX") {
    const m = /^(.+\.toml):(\d+):(\d+): (.*)$/s.exec(error.message);
    return m ? [{ file: m[1], line: Number(m[2]), col: Number(m[3]), message: m[4] }] : [];
  }
  if (error.code === "PYPROJECT_INVALID") {
    return error.message.split("\n").flatMap((line) => {
      const m = /^(.+\.toml): ([^:\s]+): (.*)$/.exec(line);
      return m ? [{ file: m[1], key: m[2], message: `${m[2]}: ${m[3]}` }] : [];
    });
  }
  return [];
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

/** A path GitHub can pin to the repository: relative to GITHUB_WORKSPACE when inside it. */
export function annotationPath(file: string, workspace?: string): string {
  if (!workspace) return file;
  const rel = relative(workspace, file);
  return rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel.replaceAll("\\", "/") : file;
}
