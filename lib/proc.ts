import process from "node:process";
import { join } from "node:path";
import { CdError } from "./errors.ts";

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Text written to the child's stdin. */
  stdin?: string;
  /** Called with each line of stderr+stdout as it arrives (progress for long commands like uv). */
  onLine?: (line: string) => void;
  /** When false, a non-zero exit is returned instead of thrown. Default true. */
  check?: boolean;
  /** Error code used when the command fails (default PROCESS_FAILED). */
  errorCode?: string;
  hint?: string;
  /**
   * Ends the child after this long (SIGTERM, then SIGKILL 3 s later); the result says `timedOut` and is
   * returned even with `check` (a hung child is a finding, not a crash of ours).
   */
  timeoutMs?: number;
  /** The hint when the program itself is missing (default: install it). */
  notFoundHint?: string;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** The child was ended by `timeoutMs`. */
  timedOut?: boolean;
}

/** How long a timed-out child gets after SIGTERM before SIGKILL, and its pipes after that. */
const KILL_GRACE_MS = 3000;

/** The children `run` started that are still running (deferInterrupts passes a signal on to them). */
const running = new Set<Deno.ChildProcess>();

/** Runs a program (never through a shell) and captures its output. */
export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, {
      args,
      cwd: opts.cwd,
      env: opts.env,
      stdin: opts.stdin !== undefined ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new CdError("COMMAND_NOT_FOUND", `'${cmd}' was not found on PATH`, {
        hint: opts.notFoundHint ?? opts.hint ?? `install ${cmd} and try again`,
        cause: e,
      });
    }
    throw e;
  }
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  let timedOut = false;
  const timers: ReturnType<typeof setTimeout>[] = [];
  if (opts.timeoutMs !== undefined) {
    timers.push(setTimeout(() => {
      timedOut = true;
      kill(child, "SIGTERM");
      timers.push(setTimeout(() => kill(child, "SIGKILL"), KILL_GRACE_MS));
    }, opts.timeoutMs));
  }
  const out = collect(child.stdout, opts.onLine);
  const err = collect(child.stderr, opts.onLine);
  running.add(child);
  const status = await child.status.finally(() => running.delete(child));
  for (const t of timers) clearTimeout(t);
  // A grandchild may still hold the pipes open after a kill: keep what was read and stop waiting.
  const settle = (p: Promise<string>) =>
    timedOut ? Promise.race([p, new Promise<string>((r) => setTimeout(() => r(""), KILL_GRACE_MS))]) : p;
  const [stdout, stderr] = await Promise.all([settle(out), settle(err)]);
  const result: RunResult = { code: status.code, stdout, stderr, ...(timedOut ? { timedOut } : {}) };
  if (status.code !== 0 && opts.check !== false && !timedOut) {
    const detail = terminalLines(stderr.trim() ? stderr : stdout).slice(-15).join("\n");
    throw new CdError(
      opts.errorCode ?? "PROCESS_FAILED",
      `${cmd} ${args.join(" ")} failed (exit ${status.code}):\n${detail}`,
      { hint: opts.hint },
    );
  }
  return result;
}

function kill(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // already gone
  }
}

/**
 * A tool's output as a terminal would have left it: a line redrawn with `\r` (a progress meter) keeps
 * only its last state, and meters ("Receiving objects:  45% (450/1000)") are dropped, so an error quotes
 * what the tool said, not hundreds of redraws.
 */
export function terminalLines(text: string): string[] {
  return text.split(/\r?\n/)
    .map((l) => l.split("\r").filter((part) => part.trim()).at(-1) ?? "")
    .filter((l) => l.trim() && !/^(?:remote:\s*)?[\w ]+:\s+\d{1,3}% \(\d+\/\d+\)/.test(l.trim()));
}

async function collect(stream: ReadableStream<Uint8Array>, onLine?: (line: string) => void): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  let pending = "";
  for await (const chunk of stream) {
    const s = decoder.decode(chunk, { stream: true });
    text += s;
    if (onLine) {
      pending += s;
      // A bare \r ends a line too: progress meters (git --progress) redraw their line with it.
      const lines = pending.split(/\r\n|\r|\n/);
      pending = lines.pop() ?? "";
      for (const l of lines) if (l) onLine(l);
    }
  }
  if (onLine && pending) onLine(pending);
  return text;
}

/** True while process `pid` runs (EPERM: it runs, as another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

/**
 * Removes the entries of `dir` whose name carries the pid of a process that no longer runs (`pidRe`'s
 * first group): what a create, import or mirror clone killed outright left behind. Returns their names.
 */
export async function removeDeadPidEntries(
  dir: string,
  pidRe: RegExp,
  /** Runs first on each dead entry; false keeps the entry (it holds something that is not ours to delete). */
  beforeRemove?: (path: string) => Promise<boolean>,
): Promise<string[]> {
  const removed: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      const pid = Number(pidRe.exec(e.name)?.[1]);
      if (pid && pid !== Deno.pid && !pidAlive(pid)) {
        if (beforeRemove && !await beforeRemove(join(dir, e.name))) continue;
        await Deno.remove(join(dir, e.name), { recursive: true }).catch(() => {});
        removed.push(e.name);
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return removed;
}

/**
 * Runs `fn` with Ctrl-C (SIGINT, and SIGTERM/SIGHUP) turned into an abort of `signal` instead of death, so
 * a change in progress can roll itself back. The tools running at that moment get the signal too: Ctrl-C
 * reaches them through the terminal anyway, but a supervisor's SIGTERM reaches this process alone, and a
 * uv sync would otherwise run to its end (minutes, for torch) before the rollback could start (signals are
 * the process's, so are its children; in-process work such as downloads stops through `signal`). A second
 * signal exits at once (130); what the change left is then rolled back by the next command, from its journal.
 */
export async function deferInterrupts<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM", "SIGHUP"];
  const listeners = signals.map((s) => {
    const onSignal = () => {
      if (controller.signal.aborted) Deno.exit(130);
      controller.abort();
      for (const child of running) kill(child, s);
    };
    return [s, onSignal] as const;
  });
  for (const [s, onSignal] of listeners) Deno.addSignalListener(s, onSignal);
  try {
    return await fn(controller.signal);
  } finally {
    for (const [s, onSignal] of listeners) Deno.removeSignalListener(s, onSignal);
  }
}
