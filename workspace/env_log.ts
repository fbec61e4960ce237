/**
 * `logs/<name>.log` (seed layout): one append-only, human-readable history per environment. Every command
 * that changes the environment adds one timestamped block: create, import, apply (its actions and result),
 * comfyui update, delete. Desired-state changes made by other commands (node/model/workflow add, commit,
 * rollback, pull) are commits of `.cec`: each block first lists, with their own dates, the `.cec` commits
 * made since the previous block, so the log misses none of them. The log survives `delete` (it is the
 * environment's history), and secrets never reach it: every line goes through `redactSecrets`.
 *
 * Writing the log never fails the command: a log that cannot be written is reported as a step line.
 */
import { join } from "node:path";
import { errorMessage } from "../lib/errors.ts";
import { redactSecrets } from "../lib/redact.ts";
import * as git from "../providers/git/git.ts";
import type { EnvPaths, WorkspacePaths } from "../reconcile/paths.ts";

/** How far back the last logged `.cec` HEAD is looked for (the log's tail, not the whole file). */
const TAIL_BYTES = 64 * 1024;
const MAX_CATCH_UP = 50;
const HEAD_LINE = /^ {2}\.cec HEAD ([0-9a-f]{40})$/gm;

export function envLogPath(ws: WorkspacePaths, name: string): string {
  return join(ws.logs, `${name}.log`);
}

function timestamp(d = new Date()): string {
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/**
 * Appends one block to `logs/<name>.log`: `[time] lines[0]`, the other lines indented below it. One write
 * with O_APPEND, so blocks of concurrent commands do not interleave.
 */
export async function appendEnvLog(ws: WorkspacePaths, name: string, lines: string[]): Promise<void> {
  const [title = "", ...rest] = lines.map((l) => redactSecrets(l));
  const body = rest.map((l) => `  ${l.replace(/\n/g, "\n    ")}`);
  const block = [`[${timestamp()}] ${title}`, ...body, ""].join("\n") + "\n";
  await Deno.mkdir(ws.logs, { recursive: true });
  await Deno.writeTextFile(envLogPath(ws, name), block, { append: true });
}

async function lastLoggedHead(ws: WorkspacePaths, name: string): Promise<string | null> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(envLogPath(ws, name));
  } catch {
    return null;
  }
  try {
    const size = (await file.stat()).size;
    const start = Math.max(0, size - TAIL_BYTES);
    await file.seek(start, Deno.SeekMode.Start);
    const buf = new Uint8Array(size - start);
    let off = 0;
    while (off < buf.length) {
      const n = await file.read(buf.subarray(off));
      if (n === null) break;
      off += n;
    }
    const heads = [...new TextDecoder().decode(buf.subarray(0, off)).matchAll(HEAD_LINE)];
    return heads.at(-1)?.[1] ?? null;
  } finally {
    file.close();
  }
}

/**
 * Lines for the `.cec` commits made since the last block (oldest first, each with its own date) and the
 * current HEAD. Empty when `.cec` is not a git repository (nothing to tell).
 */
export async function cecHistoryLines(paths: EnvPaths, logName = paths.name): Promise<string[]> {
  const head = await git.revParse(paths.cec, "HEAD").catch(() => null);
  if (!head) return [];
  const last = await lastLoggedHead(paths.workspace, logName);
  if (last === head) return [`.cec HEAD ${head}`];
  const range = last && await git.hasCommit(paths.cec, last) ? [`${last}..HEAD`] : ["HEAD"];
  const r = await git.git(paths.cec, [
    "log",
    `--max-count=${MAX_CATCH_UP}`,
    "--format=%H%x1f%cI%x1f%s",
    ...range,
  ], { check: false });
  const commits = r.stdout.split("\n").filter(Boolean).map((l) => l.split("\x1f")).reverse();
  const lines = commits.map(([sha, date, subject]) =>
    `.cec commit ${sha.slice(0, 12)} ${timestamp(new Date(date))}: ${subject}`
  );
  return [...lines, `.cec HEAD ${head}`];
}

/**
 * Appends a block for an operation on an existing environment (its `.cec` history first). Never throws:
 * the operation it records has already happened.
 */
export async function logEnvEvent(
  paths: EnvPaths,
  title: string,
  lines: string[] = [],
  warn: (line: string) => void = () => {},
): Promise<void> {
  try {
    const history = await cecHistoryLines(paths);
    const head = history.at(-1);
    await appendEnvLog(paths.workspace, paths.name, [
      title,
      ...history.slice(0, -1),
      ...lines,
      ...(head ? [head] : []),
    ]);
  } catch (e) {
    warn(`warning: could not write ${envLogPath(paths.workspace, paths.name)}: ${errorMessage(e)}`);
  }
}
