/**
 * Output for humans and machines. Commands produce data; this module decides how it looks. Human text goes
 * to stdout, progress and diagnostics to stderr (so `--json` output stays parseable).
 *
 * With `--json`, stdout carries exactly one document per run, success or failure alike (README "JSON
 * output"): `{ format_version: 1, command, ok: true, data }` or `{ ..., ok: false, error: { code, message,
 * hint } }`. Commands hand their result to `printJson`; cmd/main.ts prints the envelope once, at the end.
 */
import { CdError } from "./errors.ts";
import { redactSecrets } from "./redact.ts";
import { noProgress, type Progress, type ProgressTask, type TaskOptions } from "./progress.ts";

export interface UiOptions {
  json: boolean;
  color: boolean;
  debug: boolean;
  yes: boolean;
  /** The command being run (`node add`), named in the JSON envelope. */
  command: string;
}

export const ui: UiOptions = { json: false, color: false, debug: false, yes: false, command: "" };

export function configureUi(opts: Partial<UiOptions>): void {
  Object.assign(ui, opts);
}

export function colorEnabledByDefault(): boolean {
  return !Deno.env.get("NO_COLOR") && Deno.stdout.isTerminal();
}

const codes = { red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36, gray: 90, bold: 1 } as const;
export type Color = keyof typeof codes;

export function paint(color: Color, s: string): string {
  return ui.color ? `\x1b[${codes[color]}m${s}\x1b[${color === "bold" ? 22 : 39}m` : s;
}

export function println(s = ""): void {
  console.log(s);
}

/** Diagnostics and progress: stderr, so stdout carries only the result. */
export function info(s: string): void {
  progressLine.clear();
  console.error(s);
  progressLine.redraw();
}

/** A step line for long operations (`==> cloning ComfyUI`); silent in --json mode. */
export function step(s: string): void {
  if (!ui.json) info(paint("cyan", "==> ") + s);
}

// ---- The JSON envelope -------------------------------------------------------------------------------

export interface JsonError {
  code: string;
  message: string;
  hint: string | null;
}

export interface JsonEnvelope {
  format_version: 1;
  command: string;
  ok: boolean;
  data?: unknown;
  error?: JsonError;
}

const result: { data?: unknown; failure?: JsonError; emitted: boolean } = { emitted: false };

/**
 * The command's result: printed as the `data` of the one JSON document when the command ends (never
 * directly, so nothing can print a second document). A later call replaces an earlier one.
 */
export function printJson(value: unknown): void {
  result.data = value;
}

/**
 * A result that is also a failure (validate finding errors): exit code 1, and `ok: false` with `error` in
 * the JSON document (the data stays beside it). Human output is the command's own.
 */
export function reportFailure(e: CdError): void {
  result.failure = jsonError(e);
  Deno.exitCode = e.exitCode;
}

/** An error as the JSON document carries it, credentials redacted (lib/redact.ts). */
export function jsonError(e: unknown): JsonError {
  if (e instanceof CdError) {
    return { code: e.code, message: redactSecrets(e.message), hint: e.hint ? redactSecrets(e.hint) : null };
  }
  return {
    code: "INTERNAL",
    message: redactSecrets(e instanceof Error ? e.message : String(e)),
    hint: "this is unexpected; run again with --debug and report the output",
  };
}

/** Prints the run's one JSON document (once; later calls do nothing). `error`: the run failed with it. */
export function emitJson(error?: JsonError): void {
  if (result.emitted) return;
  result.emitted = true;
  const failure = error ?? result.failure;
  const doc: JsonEnvelope = {
    format_version: 1,
    command: ui.command,
    ok: !failure,
    ...(result.data !== undefined || !failure ? { data: result.data ?? null } : {}),
    ...(failure ? { error: failure } : {}),
  };
  console.log(JSON.stringify(doc, null, 2));
}

// ---- Progress on stderr ------------------------------------------------------------------------------

/** A task is shown only once it has run this long: quick steps stay quiet, slow ones say what they do. */
const SHOW_AFTER_MS = 800;
/** Without a terminal (CI, pipes): at most one line per task this often, or per 10% of its total. */
const PLAIN_EVERY_MS = 5000;

interface LiveTask {
  label: string;
  total: number | null;
  unit: "bytes" | "items";
  done: number;
  detail: string;
  started: number;
  shown: boolean;
  /** Plain mode: when the last line was printed, and at which tenth of the total. */
  lastLine: number;
  lastTenth: number;
}

function size(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

/** "45% 1.2 GiB of 2.7 GiB, 48.0 MiB/s, ETA 31s" / "3 of 10" / "12s" (what is known of a task). */
function describeTask(t: LiveTask, now: number): string {
  const elapsed = now - t.started;
  const amount = (n: number) => t.unit === "bytes" ? size(n) : String(n);
  const parts: string[] = [];
  if (t.total) {
    parts.push(
      `${Math.min(100, Math.floor((t.done / t.total) * 100))}% ${amount(t.done)} of ${amount(t.total)}`,
    );
  } else if (t.done > 0) parts.push(amount(t.done));
  if (t.unit === "bytes" && t.done > 0 && elapsed > 500) {
    const rate = t.done / (elapsed / 1000);
    parts.push(`${size(rate)}/s`);
    if (t.total && t.done < t.total && rate > 0) {
      parts.push(`ETA ${duration(((t.total - t.done) / rate) * 1000)}`);
    }
  }
  parts.push(`${duration(elapsed)} elapsed`);
  return parts.join(", ");
}

/**
 * The face's progress printer. On a terminal: one status line at the bottom of stderr (a bar when the
 * total is known), redrawn in place, truncated to the terminal's width so it never wraps; the cursor is
 * never hidden and line wrapping never switched off, so Ctrl-C or a kill leaves the terminal as it was.
 * Elsewhere (CI, pipes): plain lines, one when a task shows, then at most one every few seconds or 10%.
 * In --json mode: nothing (stdout is the document; stderr stays quiet as for step lines).
 */
class ProgressLine implements Progress {
  readonly tasks = new Set<LiveTask>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private drawn = false;
  private get tty(): boolean {
    return Deno.stderr.isTerminal();
  }

  task(label: string, opts: TaskOptions = {}): ProgressTask {
    const t: LiveTask = {
      label,
      total: opts.total ?? null,
      unit: opts.unit ?? "items",
      done: 0,
      detail: "",
      started: performance.now(),
      shown: false,
      lastLine: 0,
      lastTenth: -1,
    };
    if (ui.json) return noProgress.task(label);
    this.tasks.add(t);
    this.tick();
    const end = (line: string | null) => {
      if (!this.tasks.delete(t)) return;
      if (t.shown && line !== null) info(line);
      else this.redraw();
      this.tick();
    };
    return {
      advance: (n, detail) => {
        t.done += n;
        if (detail !== undefined) t.detail = detail;
        this.touch(t);
      },
      update: (done, more = {}) => {
        t.done = done;
        if (more.total !== undefined) t.total = more.total;
        if (more.detail !== undefined) t.detail = more.detail;
        this.touch(t);
      },
      done: (summary) => end(`${paint("green", "✓")} ${t.label}: ${summary ?? describeDone(t)}`),
      fail: (reason) => end(reason ? `${paint("red", "✗")} ${t.label}: ${reason}` : null),
    };
  }

  /** Plain mode prints on progress (every 10%); a terminal redraws at the next tick. */
  private touch(t: LiveTask): void {
    if (!this.tty && t.shown && t.total) {
      const tenth = Math.floor((t.done / t.total) * 10);
      if (tenth > t.lastTenth && tenth < 10) this.plainLine(t, performance.now());
    }
  }

  private plainLine(t: LiveTask, now: number): void {
    t.lastLine = now;
    if (t.total) t.lastTenth = Math.floor((t.done / t.total) * 10);
    console.error(`... ${t.label}: ${describeTask(t, now)}${t.detail ? ` (${t.detail})` : ""}`);
  }

  /** Runs the clock while tasks are open; it never keeps the process alive on its own. */
  private tick(): void {
    if (this.tasks.size === 0) {
      if (this.timer !== null) clearInterval(this.timer);
      this.timer = null;
      this.clear();
      return;
    }
    if (this.timer !== null) return;
    const timer = setInterval(() => this.render(), this.tty ? 120 : 250);
    Deno.unrefTimer(timer);
    this.timer = timer;
  }

  private render(): void {
    const now = performance.now();
    for (const t of this.tasks) {
      if (!t.shown && now - t.started >= SHOW_AFTER_MS) {
        t.shown = true;
        if (!this.tty) this.plainLine(t, now);
      } else if (t.shown && !this.tty && now - t.lastLine >= PLAIN_EVERY_MS) this.plainLine(t, now);
    }
    if (this.tty) this.redraw();
  }

  /** The status line of the newest shown task (older ones are counted). */
  private statusLine(): string | null {
    const shown = [...this.tasks].filter((t) => t.shown);
    const t = shown.at(-1);
    if (!t) return null;
    const now = performance.now();
    const width = Math.max(20, (Deno.stderr.isTerminal() ? Deno.consoleSize().columns : 100) - 1);
    let bar = "";
    if (t.total) {
      const cells = 20;
      const full = Math.min(cells, Math.floor((t.done / t.total) * cells));
      bar = `[${"#".repeat(full)}${"-".repeat(cells - full)}] `;
    } else {
      bar = `${"|/-\\"[Math.floor(now / 120) % 4]} `;
    }
    const more = shown.length > 1 ? ` (+${shown.length - 1} more)` : "";
    const line = `${bar}${t.label}: ${describeTask(t, now)}${more}${t.detail ? `  ${t.detail}` : ""}`;
    return line.length > width ? line.slice(0, width - 1) + "…" : line;
  }

  clear(): void {
    if (!this.drawn) return;
    Deno.stderr.writeSync(new TextEncoder().encode("\r\x1b[2K"));
    this.drawn = false;
  }

  redraw(): void {
    if (!this.tty) return;
    const line = this.statusLine();
    if (line === null) return this.clear();
    Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[2K${line}`));
    this.drawn = true;
  }
}

/** The closing line of a shown task: "1.2 GiB in 31s" for bytes, "done in 3s" otherwise. */
function describeDone(t: LiveTask): string {
  const took = duration(performance.now() - t.started);
  return t.unit === "bytes" ? `${size(t.done)} in ${took}` : `done in ${took}`;
}

const progressLine = new ProgressLine();

/** The progress sink of the faces (what `App.progress` is in the CLI). */
export const progress: Progress = progressLine;
