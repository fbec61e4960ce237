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
 * schema errors say `file:line: key.path: message (got ...)` (`file: key.path: ...` when the key is not
 * written in the file), one per line.
 */
export function pyprojectLocations(error: CdError): PyprojectLocation[] {
  if (error.code === "PYPROJECT_SYNTAX") {
    const m = /^(.+\.toml):(\d+):(\d+): (.*)$/s.exec(error.message);
    return m ? [{ file: m[1], line: Number(m[2]), col: Number(m[3]), message: m[4] }] : [];
  }
  if (error.code === "PYPROJECT_INVALID") {
    return error.message.split("\n").flatMap((line) => {
      const m = /^(.+\.toml)(?::(\d+))?: ((?:"(?:[^"\\]|\\.)*"|[^:\s"])+): (.*)$/.exec(line);
      return m
        ? [{ file: m[1], ...(m[2] ? { line: Number(m[2]) } : {}), key: m[3], message: `${m[3]}: ${m[4]}` }]
        : [];
    });
  }
  return [];
}

/** A path GitHub can pin to the repository: relative to GITHUB_WORKSPACE when inside it. */
export function annotationPath(file: string, workspace?: string): string {
  if (!workspace) return file;
  const rel = relative(workspace, file);
  return rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel.replaceAll("\\", "/") : file;
}
