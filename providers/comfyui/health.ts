/**
 * `comfydock health`: does ComfyUI actually start in this environment, and does every custom node pack
 * import? `plan` compares disk with `.cec`; this runs the code.
 *
 * How: ComfyUI's own start-up (`main.py --cpu --quick-test-for-ci`: args, logging, prestartup scripts, the
 * server module, every node loaded, the database set up, then `exit(0)`), run by a small bootstrap of ours
 * in the environment's venv. Before main.py runs, the bootstrap hooks the import of ComfyUI's `nodes`
 * module and wraps its `load_custom_node` (sync before v0.3.4x, async since; both are handled), so each
 * pack's result, error and the node classes it added to NODE_CLASS_MAPPINGS are recorded as JSON. That
 * holds across versions because `load_custom_node(module_path, ignore, ...) -> bool` has kept its name and
 * meaning since 2023, while the callers around it (init_custom_nodes -> init_external_custom_nodes, sync
 * -> async) changed. Where the hook does not take (a future ComfyUI), the same lines a person reads are
 * parsed instead ("Import times for custom nodes:", "(IMPORT FAILED)", "Cannot import X module for custom
 * nodes: E"): status and error per pack survive, only the class lists are lost.
 *
 * The last result is kept in `<env>/.comfydock/health.json` (status shows it; workflow analysis reads the
 * classes each pack provides from it).
 */
import { basename, join } from "node:path";
import { z } from "zod";
import { CdError } from "../../lib/errors.ts";
import { exists, readTextIfExists, removeIfExists, writeFileAtomic } from "../../lib/fsx.ts";
import { removeDeadPidEntries, run } from "../../lib/proc.ts";
import type { EnvPaths } from "../../reconcile/paths.ts";
import { type NodeSpec, specEntryName } from "../../reconcile/schema.ts";
import { venvPython } from "../packages/distinfo.ts";

/** The arguments ComfyUI starts with: CPU only (no GPU needed to check imports), its CI quick test. */
export const HEALTH_ARGS = ["--cpu", "--quick-test-for-ci"];

const PackHealth = z.object({
  /** Folder (or single file) under custom_nodes. */
  dir: z.string(),
  /** The `.cec` node id of that folder, when it is managed. */
  id: z.string().nullable(),
  status: z.enum(["loaded", "failed"]),
  seconds: z.number().nullable(),
  /** Node classes the pack registered; null when only the log could be read. */
  classes: z.array(z.string()).nullable(),
  /** The error line ("ModuleNotFoundError: No module named 'cv2'"), or why the pack was skipped. */
  error: z.string().nullable(),
  missing_module: z.string().nullable(),
});
export type PackHealth = z.infer<typeof PackHealth>;

const HealthResult = z.object({
  format_version: z.literal(1),
  environment: z.string(),
  checked_at: z.string(),
  duration_ms: z.number(),
  healthy: z.boolean(),
  /** ComfyUI got through its start-up (exit 0 of the quick test). */
  started: z.boolean(),
  exit_code: z.number().nullable(),
  timed_out: z.boolean(),
  /** Why ComfyUI did not start (the exception line, or the time limit). */
  error: z.string().nullable(),
  missing_module: z.string().nullable(),
  /** `bootstrap`: per-pack results from the loader hook; `log`: parsed from ComfyUI's output only. */
  method: z.enum(["bootstrap", "log"]),
  packs: z.array(PackHealth),
  /** The last lines ComfyUI printed (for the user when it failed). */
  output_tail: z.array(z.string()),
});
export type HealthResult = z.infer<typeof HealthResult>;

// ---------------------------------------------------------------------------------------------------------
// The bootstrap (runs in the environment's venv; standard library only)

export const BOOTSTRAP_PY = String.raw`
import importlib.machinery, inspect, json, logging, os, runpy, sys, time, traceback

comfy_dir, out_path = sys.argv[1], sys.argv[2]
report = {"hooked": False, "packs": [], "loading": None, "error": None, "traceback": None, "exit_code": None}
captured = []


def save():
    # Written after every pack, so a start that hangs (and is killed) still tells what loaded and where.
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(report, f)
    os.replace(tmp, out_path)


class Capture(logging.Handler):
    def emit(self, record):
        try:
            captured.append(record.getMessage())
        except Exception:
            pass


def wrap(nodes):
    orig = getattr(nodes, "load_custom_node", None)
    mappings = getattr(nodes, "NODE_CLASS_MAPPINGS", None)
    if orig is None or not isinstance(mappings, dict):
        return

    def before(module_path):
        report["loading"] = str(module_path)
        save()
        del captured[:]
        handler = Capture()
        logging.getLogger().addHandler(handler)
        return handler, {k: id(v) for k, v in mappings.items()}, time.perf_counter()

    def after(state, module_path, ok):
        handler, snapshot, t0 = state
        logging.getLogger().removeHandler(handler)
        added = sorted(k for k, v in mappings.items() if snapshot.get(k) != id(v))
        report["packs"].append({"path": str(module_path), "ok": bool(ok), "classes": added,
                                "seconds": time.perf_counter() - t0, "log": captured[-60:]})
        report["loading"] = None
        save()

    if inspect.iscoroutinefunction(orig):
        async def load_custom_node(module_path, *a, **k):
            state = before(module_path)
            ok = False
            try:
                ok = await orig(module_path, *a, **k)
                return ok
            finally:
                after(state, module_path, ok)
    else:
        def load_custom_node(module_path, *a, **k):
            state = before(module_path)
            ok = False
            try:
                ok = orig(module_path, *a, **k)
                return ok
            finally:
                after(state, module_path, ok)
    nodes.load_custom_node = load_custom_node
    report["hooked"] = True


class HookNodes:
    """Wraps ComfyUI's nodes module right after it is imported (main.py imports it)."""

    def find_spec(self, name, path=None, target=None):
        if name != "nodes":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_wrap(module):
            exec_module(module)
            try:
                wrap(module)
            except Exception:
                report["traceback"] = traceback.format_exc()

        spec.loader.exec_module = exec_and_wrap
        return spec


sys.meta_path.insert(0, HookNodes())
main = os.path.join(comfy_dir, "main.py")
sys.argv = [main] + sys.argv[3:]
sys.path.insert(0, comfy_dir)
os.chdir(comfy_dir)
code = 1
try:
    runpy.run_path(main, run_name="__main__")
    code = 0
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
except BaseException as e:
    report["error"] = "".join(traceback.format_exception_only(type(e), e)).strip().splitlines()[-1]
    report["traceback"] = traceback.format_exc()[-6000:]
report["exit_code"] = code
save()
for stream in (sys.stdout, sys.stderr):
    try:
        stream.flush()
    except Exception:
        pass
# Threads custom nodes started must not keep a finished check alive.
os._exit(code)
`;

const BootstrapReport = z.object({
  hooked: z.boolean(),
  packs: z.array(z.object({
    path: z.string(),
    ok: z.boolean(),
    classes: z.array(z.string()),
    seconds: z.number(),
    log: z.array(z.string()),
  })),
  loading: z.string().nullable(),
  error: z.string().nullable(),
  traceback: z.string().nullable(),
  exit_code: z.number().nullable(),
});
type BootstrapReport = z.infer<typeof BootstrapReport>;

// ---------------------------------------------------------------------------------------------------------
// Reading ComfyUI's own lines (pure)

export interface LoggedPack {
  path: string;
  ok: boolean;
  seconds: number;
  error: string | null;
}

/** Terminal colour codes (custom nodes colour their output) removed before lines are read. */
// deno-lint-ignore no-control-regex -- the escape character is exactly what is being removed
const ANSI = /\x1b\[[0-9;]*m/g;

const IMPORT_TIME = /^\s*(\d+(?:\.\d+)?) seconds( \(IMPORT FAILED\))?: (.+?)\s*$/;
const CANNOT_IMPORT = /^Cannot import (.+) module for custom nodes: ?(.*)$/;

/**
 * The per-pack lines of ComfyUI's start-up output: the "Import times for custom nodes:" table and the
 * "Cannot import <path> module for custom nodes: <error>" lines before it. Tolerant: ANSI colours, `\r`,
 * log prefixes (`[2025-01-01 ...]`, `WARNING:root:`) and other lines around them are ignored.
 */
export function parseStartupLog(text: string): LoggedPack[] {
  const lines = text.replace(ANSI, "").split(/\r?\n|\r/);
  const errors = new Map<string, string>();
  const packs: LoggedPack[] = [];
  let inTable = false;
  for (const raw of lines) {
    const line = raw.replace(/^\s*(\[[^\]]*\]\s*)*((DEBUG|INFO|WARNING|ERROR|CRITICAL):[\w.]*:)?\s*/, "");
    const cannot = CANNOT_IMPORT.exec(line);
    if (cannot) {
      errors.set(cannot[1].trim(), cannot[2].trim());
      continue;
    }
    if (/^Import times for custom nodes:?\s*$/.test(line)) {
      inTable = true;
      continue;
    }
    if (!inTable) continue;
    const m = IMPORT_TIME.exec(line);
    if (m) packs.push({ path: m[3], ok: !m[2], seconds: Number(m[1]), error: null });
    else if (line.trim() === "" && packs.length > 0) inTable = false;
  }
  for (const p of packs) if (!p.ok) p.error = errors.get(p.path) ?? null;
  return packs;
}

/** The module a `ModuleNotFoundError`/`ImportError` names, from an error line or a traceback. */
export function missingModule(text: string | null): string | null {
  if (!text) return null;
  const all = [...text.matchAll(/No module named ['"]?([\w.]+)['"]?/g)];
  return all.length ? all[all.length - 1][1] : null;
}

/** The most telling line of a pack's failure: the exception line of its traceback, else ComfyUI's message. */
function errorOf(log: string[]): string | null {
  const text = log.join("\n");
  const exceptionLines = text.split("\n").filter((l) => /^[A-Za-z_][\w.]*(Error|Exception|Exit)\b.*/.test(l));
  if (exceptionLines.length) return exceptionLines[exceptionLines.length - 1].trim();
  const cannot = log.map((l) => CANNOT_IMPORT.exec(l)).find(Boolean);
  if (cannot) return cannot[2].trim();
  const skip = log.find((l) => /^Skip .* module for custom nodes/.test(l));
  return skip ?? (log.length ? log[log.length - 1].trim().slice(0, 500) : null);
}

// ---------------------------------------------------------------------------------------------------------
// Running it

/** `custom_nodes` entry -> `.cec` node id, for the report (its `directory` or `filename`, else its id). */
export function packIdsOf(nodes: Record<string, NodeSpec>): Record<string, string> {
  return Object.fromEntries(Object.entries(nodes).map(([id, s]) => [specEntryName(id, s), id]));
}

interface HealthOptions {
  /** Time limit for the whole start-up (Settings.healthTimeoutMs); a hung start is ended and reported. */
  timeoutMs: number;
  /** Each line ComfyUI prints (for --debug / progress). */
  onLine?: (line: string) => void;
  /** `custom_nodes` folder -> `.cec` node id (folders not named here are reported without an id). */
  packIds?: Record<string, string>;
  /** Extra environment for the child (tests). */
  env?: Record<string, string>;
}

/** The folder name under custom_nodes of a module path ComfyUI reports. */
function packDir(customNodes: string, path: string): string {
  const rel = path.startsWith(customNodes) ? path.slice(customNodes.length).replace(/^[\\/]+/, "") : path;
  return rel.split(/[\\/]/)[0] || basename(path);
}

const TAIL_LINES = 40;

/** Runs ComfyUI's start-up in the environment and returns what happened (and saves it as health.json). */
export async function runHealth(paths: EnvPaths, opts: HealthOptions): Promise<HealthResult> {
  const python = venvPython(paths.venv);
  if (!await exists(python)) {
    throw new CdError("HEALTH_NO_VENV", `${paths.name}: no Python environment at ${paths.venv}`, {
      hint: "run 'comfydock apply' to build the environment first",
    });
  }
  if (!await exists(join(paths.comfyui, "main.py"))) {
    throw new CdError("HEALTH_NO_COMFYUI", `${paths.name}: no ComfyUI checkout at ${paths.comfyui}`, {
      hint: "run 'comfydock apply' to build the environment first",
    });
  }
  await Deno.mkdir(paths.state, { recursive: true });
  // The work folder carries our pid: what a check killed outright left is swept by the next one.
  await removeDeadPidEntries(paths.state, /^health-(\d+)-/);
  const work = await Deno.makeTempDir({ dir: paths.state, prefix: `health-${Deno.pid}-` });
  const started = Date.now();
  try {
    const script = join(work, "comfydock_health.py");
    const out = join(work, "report.json");
    await Deno.writeTextFile(script, BOOTSTRAP_PY);
    const timeoutMs = opts.timeoutMs;
    // Temp files of the start go into the work folder, removed below: importing torch alone leaves a folder
    // in the system's temp folder on every start (torch.distributed's `_remote_module_non_scriptable.py`).
    const tmp = join(work, "tmp");
    await Deno.mkdir(tmp);
    const r = await run(python, ["-u", script, paths.comfyui, out, ...HEALTH_ARGS], {
      cwd: paths.comfyui,
      env: {
        PYTHONUNBUFFERED: "1",
        PYTHONDONTWRITEBYTECODE: "1",
        TMPDIR: tmp,
        TEMP: tmp,
        TMP: tmp,
        ...opts.env,
      },
      onLine: opts.onLine,
      check: false,
      timeoutMs,
    });
    const text = await readTextIfExists(out);
    let report: BootstrapReport | null = null;
    if (text !== null) {
      const parsed = BootstrapReport.safeParse(JSON.parse(text));
      if (parsed.success) report = parsed.data;
    }
    const output = `${r.stdout}\n${r.stderr}`;
    const result = buildResult(paths, {
      report,
      output,
      exitCode: r.timedOut ? null : r.code,
      timedOut: r.timedOut ?? false,
      timeoutMs,
      packIds: opts.packIds ?? {},
      durationMs: Date.now() - started,
      checkedAt: new Date(started).toISOString(),
    });
    await saveHealth(paths, result);
    return result;
  } finally {
    await removeIfExists(work);
  }
}

interface RawRun {
  report: BootstrapReport | null;
  output: string;
  exitCode: number | null;
  timedOut: boolean;
  timeoutMs: number;
  packIds: Record<string, string>;
  durationMs: number;
  checkedAt: string;
}

/** Turns one run (the bootstrap's report and/or ComfyUI's output) into a HealthResult. Pure. */
export function buildResult(paths: EnvPaths, raw: RawRun): HealthResult {
  const packs: PackHealth[] = [];
  const idOf = (dir: string) => raw.packIds[dir] ?? raw.packIds[dir.replace(/\.py$/, "")] ?? null;
  const hooked = raw.report?.hooked === true;
  // ComfyUI loads its own comfy_extras/ and comfy_api_nodes/ with the same function: only custom_nodes count.
  const isCustom = (path: string) =>
    path.startsWith(paths.customNodes + "/") || path.startsWith(paths.customNodes + "\\");
  if (hooked) {
    for (const p of raw.report!.packs.filter((p) => isCustom(p.path))) {
      const dir = packDir(paths.customNodes, p.path);
      const error = p.ok ? null : errorOf(p.log);
      packs.push({
        dir,
        id: idOf(dir),
        status: p.ok ? "loaded" : "failed",
        seconds: Math.round(p.seconds * 1000) / 1000,
        classes: p.classes,
        error,
        missing_module: p.ok ? null : missingModule(p.log.join("\n")) ?? missingModule(error),
      });
    }
  } else {
    for (const p of parseStartupLog(raw.output).filter((p) => isCustom(p.path))) {
      const dir = packDir(paths.customNodes, p.path);
      packs.push({
        dir,
        id: idOf(dir),
        status: p.ok ? "loaded" : "failed",
        seconds: p.seconds,
        classes: null,
        error: p.error,
        missing_module: p.ok ? null : missingModule(p.error),
      });
    }
  }
  const hung = raw.timedOut ? lastPack(raw) : null;
  if (hung) {
    const dir = packDir(paths.customNodes, hung);
    packs.push({
      dir,
      id: idOf(dir),
      status: "failed",
      seconds: null,
      classes: null,
      error: `still importing after ${Math.round(raw.timeoutMs / 1000)} s (hung); the start was stopped`,
      missing_module: null,
    });
  }
  packs.sort((a, b) => a.dir.localeCompare(b.dir));
  const startedOk = !raw.timedOut && raw.exitCode === 0;
  let error: string | null = null;
  if (raw.timedOut) {
    error = `ComfyUI did not finish starting within ${Math.round(raw.timeoutMs / 1000)} s and was stopped` +
      (hung ? ` while importing custom_nodes/${packDir(paths.customNodes, hung)}` : "");
  } else if (!startedOk) {
    error = raw.report?.error ?? lastErrorLine(raw.output) ??
      `ComfyUI exited with code ${raw.exitCode} during start-up`;
  }
  const tail = raw.output.replace(ANSI, "").split(/\r?\n/).filter((l) => l.trim() !== "")
    .slice(-TAIL_LINES);
  return {
    format_version: 1,
    environment: paths.name,
    checked_at: raw.checkedAt,
    duration_ms: raw.durationMs,
    healthy: startedOk && packs.every((p) => p.status === "loaded"),
    started: startedOk,
    exit_code: raw.exitCode,
    timed_out: raw.timedOut,
    error,
    missing_module: startedOk ? null : missingModule(raw.report?.traceback ?? null) ?? missingModule(error),
    method: hooked ? "bootstrap" : "log",
    packs,
    output_tail: tail,
  };
}

/** The pack being loaded when a start hung (the bootstrap notes each one before loading it). */
function lastPack(raw: RawRun): string | null {
  return raw.report?.loading ?? null;
}

function lastErrorLine(output: string): string | null {
  const lines = output.split(/\r?\n/).filter((l) => /^[A-Za-z_][\w.]*(Error|Exception)\b/.test(l.trim()));
  return lines.length ? lines[lines.length - 1].trim() : null;
}

// ---------------------------------------------------------------------------------------------------------
// health.json

export function healthFile(paths: EnvPaths): string {
  return join(paths.state, "health.json");
}

async function saveHealth(paths: EnvPaths, result: HealthResult): Promise<void> {
  await writeFileAtomic(healthFile(paths), JSON.stringify(result, null, 1) + "\n");
}

/** The last health result, or null (never run, or a file this version cannot read: run health again). */
export async function readHealth(paths: EnvPaths): Promise<HealthResult | null> {
  const text = await readTextIfExists(healthFile(paths));
  if (text === null) return null;
  try {
    const r = HealthResult.safeParse(JSON.parse(text));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Words for people (pure)

/** One line: "healthy: 3 custom node packs loaded (41 node classes) in 2.1 s". */
export function healthHeadline(r: HealthResult): string {
  const failed = r.packs.filter((p) => p.status === "failed");
  const classes = r.packs.reduce((n, p) => n + (p.classes?.length ?? 0), 0);
  const secs = `${(r.duration_ms / 1000).toFixed(1)} s`;
  if (!r.started) return `unhealthy: ComfyUI did not start (${r.error ?? "unknown error"})`;
  if (failed.length) {
    return `unhealthy: ${failed.length} of ${r.packs.length} custom node pack(s) failed to import ` +
      `(${failed.map((p) => p.dir).join(", ")})`;
  }
  return `healthy: ComfyUI started, ${r.packs.length} custom node pack(s) loaded` +
    (r.method === "bootstrap" ? ` (${classes} node classes)` : "") + ` in ${secs}`;
}

/** One line per pack: `✓ dir (id): 12 classes` / `✗ dir: No module named 'cv2'`. */
export function packLine(p: PackHealth): string {
  const who = p.id && p.id !== p.dir ? `${p.dir} (node.${p.id})` : p.dir;
  if (p.status === "loaded") {
    return `${who}: loaded${
      p.classes ? `, ${p.classes.length} node class${p.classes.length === 1 ? "" : "es"}` : ""
    }`;
  }
  const why = p.missing_module ? `missing module '${p.missing_module}'` : p.error ?? "import failed";
  return `${who}: IMPORT FAILED: ${why}`;
}

// ---------------------------------------------------------------------------------------------------------
// install.py scripts nobody ran

/** A pack with an install.py that health has not yet seen load (ComfyDock never runs install.py). */
export type PendingInstallScript = {
  dir: string;
  /** The `.cec` node id of the folder, else the folder name. */
  id: string;
};

/**
 * Packs in custom_nodes with an `install.py` that the last health check did not see load after the script
 * was put there. Such a pack may need the script (downloads, compiled parts) to work, and nothing but
 * ComfyUI itself can tell: so the note stays until health passes for it.
 */
export async function pendingInstallScripts(
  paths: EnvPaths,
  nodes: Record<string, NodeSpec>,
): Promise<PendingInstallScript[]> {
  const health = await readHealth(paths);
  const checked = health ? Date.parse(health.checked_at) : 0;
  const loaded = new Set(health?.packs.filter((p) => p.status === "loaded").map((p) => p.dir) ?? []);
  const ids = packIdsOf(nodes);
  const out: PendingInstallScript[] = [];
  let entries: Deno.DirEntry[] = [];
  try {
    entries = await Array.fromAsync(Deno.readDir(paths.customNodes));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.name.startsWith(".") || e.name.endsWith(".disabled") || e.isFile) continue;
    const st = await Deno.stat(join(paths.customNodes, e.name, "install.py")).catch(() => null);
    if (!st?.isFile) continue;
    if (loaded.has(e.name) && (st.mtime?.getTime() ?? 0) <= checked) continue;
    out.push({ dir: e.name, id: ids[e.name] ?? e.name });
  }
  return out;
}

/** The plan/status notes for those packs (pure). */
export function installScriptNotes(venvPythonPath: string, pending: PendingInstallScript[]): string[] {
  return pending.map((p) =>
    `node.${p.id}: has an install.py that ComfyDock never runs; if the pack needs it, run ` +
    `'${venvPythonPath} custom_nodes/${p.dir}/install.py' in ComfyUI/ yourself, then 'comfydock health' ` +
    `(this note stays until health sees the pack load)`
  );
}
