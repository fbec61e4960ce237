/**
 * The `uv` CLI, the only way ComfyDock changes a venv. Every call uses the workspace's shared cache
 * (UV_CACHE_DIR), never downloads Python (UV_PYTHON_DOWNLOADS=never), and keeps uv's own error text inside
 * our CdError (code UV_FAILED) so the user sees what uv said.
 */
import { dirname, isAbsolute, join } from "node:path";
import { CdError } from "../../lib/errors.ts";
import { readTextIfExists, removeIfExists, writeFileAtomic } from "../../lib/fsx.ts";
import { noProgress, type Progress } from "../../lib/progress.ts";
import { run, type RunResult } from "../../lib/proc.ts";
import type { PackageIndexSettings, Settings } from "../../lib/settings.ts";
import type { WorkspacePaths } from "../../reconcile/paths.ts";
import { venvPython } from "./distinfo.ts";
import { toCanonical, toMirror, unreachableIndexError, urlMirrors, uvIndexEnv } from "./indexes.ts";

const INSTALL_HINT = "install uv with 'pip install uv' (or see https://docs.astral.sh/uv/), " +
  "or point COMFYDOCK_UV at the uv binary";

export interface UvRunOptions {
  cwd?: string;
  env?: Record<string, string>;
  onLine?: (line: string) => void;
  hint?: string;
  /** Shows the run as a task (default label `uv <subcommand>`), uv's latest line as its detail. */
  progress?: Progress;
  label?: string;
}

/** uv's closing lines ("Resolved 12 packages in 30ms", "Installed 3 packages in 1.2s"): the task's summary. */
const SUMMARY = /^(Resolved|Prepared|Installed|Uninstalled|Audited|Built|Downloaded|Updated) \d+ /;

export class Uv {
  private constructor(
    readonly bin: string,
    readonly cacheDir: string,
    readonly indexes: PackageIndexSettings,
  ) {}

  /**
   * Settings.uv (COMFYDOCK_UV), else `uv` on the search path (pyenv shims are skipped when a real uv sits
   * next to them). The machine's index settings ride along into every lock and sync.
   */
  static async locate(ws: WorkspacePaths, settings: Settings): Promise<Uv> {
    const path = settings.system.path;
    let configured = settings.uv;
    if (configured) {
      // A bare name (`COMFYDOCK_UV=uv`) is looked up on PATH like a shell would.
      if (!/[\\/]/.test(configured)) configured = await findOnPath(configured, path) ?? configured;
      if (!(await isExecutableFile(configured))) {
        throw new CdError(
          "UV_NOT_FOUND",
          `COMFYDOCK_UV points to '${configured}', which is not a uv binary`,
          {
            hint: INSTALL_HINT,
          },
        );
      }
      return new Uv(configured, ws.uvCache, settings.indexes);
    }
    const onPath = await findOnPath("uv", path);
    if (!onPath) {
      throw new CdError("UV_NOT_FOUND", "uv was not found (COMFYDOCK_UV is unset and no 'uv' on PATH)", {
        hint: INSTALL_HINT,
      });
    }
    return new Uv(onPath, ws.uvCache, settings.indexes);
  }

  #env(): Record<string, string> {
    return { UV_CACHE_DIR: this.cacheDir, UV_PYTHON_DOWNLOADS: "never", NO_COLOR: "1" };
  }

  /** Runs uv with the fixed environment; a failure becomes UV_FAILED carrying uv's stderr. */
  async exec(args: string[], opts: UvRunOptions = {}): Promise<RunResult> {
    const task = (opts.progress ?? noProgress).task(opts.label ?? `uv ${args[0]}`);
    const summary: string[] = [];
    try {
      const r = await run(this.bin, args, {
        cwd: opts.cwd,
        env: { ...this.#env(), ...opts.env },
        onLine: (line) => {
          const l = line.trim();
          if (SUMMARY.test(l)) summary.push(l);
          if (l) task.advance(0, l);
          opts.onLine?.(line);
        },
        errorCode: "UV_FAILED",
        hint: opts.hint ?? "read uv's message above; fix .cec/pyproject.toml or run 'comfydock plan' again",
      });
      task.done(summary.length ? summary.join("; ") : undefined);
      return r;
    } catch (e) {
      task.fail();
      if (e instanceof CdError && e.code === "COMMAND_NOT_FOUND") {
        throw new CdError("UV_NOT_FOUND", `uv binary '${this.bin}' could not be started`, {
          hint: INSTALL_HINT,
          cause: e,
        });
      }
      throw e;
    }
  }

  /**
   * Creates (or re-creates) a venv at venvDir with exactly this interpreter; no pip seeded. `relocatable`:
   * scripts and activation find the venv from their own location (a venv built in a staging dir and renamed).
   */
  async venv(venvDir: string, pythonPath: string, opts: { relocatable?: boolean } = {}): Promise<void> {
    const args = ["venv", venvDir, "--python", pythonPath, "--no-project", "--clear"];
    if (opts.relocatable) args.push("--relocatable");
    await this.exec(args, { hint: `check that ${pythonPath} is a working Python interpreter` });
  }

  /**
   * Runs a project command with this machine's index settings. Without mirrors uv works in projectDir
   * itself; with them it works in a copy beside it whose pyproject and uv.lock name the mirrors, and a lock it writes
   * comes back to projectDir with the canonical URLs (indexes.ts). An unreachable index becomes
   * INDEX_UNREACHABLE naming it.
   */
  async #project(
    projectDir: string,
    writesLock: boolean,
    fn: (dir: string, env: Record<string, string>) => Promise<unknown>,
  ): Promise<void> {
    const pyproject = await Deno.readTextFile(join(projectDir, "pyproject.toml"));
    const env = uvIndexEnv(this.indexes, pyproject);
    const mirrors = urlMirrors(this.indexes);
    try {
      if (mirrors.length === 0) {
        await fn(projectDir, env);
        return;
      }
      const lock = await readTextIfExists(join(projectDir, "uv.lock"));
      const dir = await Deno.makeTempDir({ dir: dirname(projectDir), prefix: ".cec-uv-" });
      try {
        await Deno.writeTextFile(join(dir, "pyproject.toml"), toMirror(pyproject, mirrors));
        if (lock !== null) await Deno.writeTextFile(join(dir, "uv.lock"), toMirror(lock, mirrors));
        await fn(dir, env);
        if (writesLock) {
          const out = toCanonical(await Deno.readTextFile(join(dir, "uv.lock")), mirrors);
          if (out !== lock) await writeFileAtomic(join(projectDir, "uv.lock"), out);
        }
      } finally {
        await removeIfExists(dir);
      }
    } catch (e) {
      throw unreachableIndexError(e, this.indexes, pyproject);
    }
  }

  /**
   * `uv lock` in projectDir (writes projectDir/uv.lock). `noBuild`: no build backend runs (a dependency
   * whose metadata needs a build then fails the lock instead of running its setup.py).
   */
  async lock(
    projectDir: string,
    opts: {
      python?: string;
      onLine?: (l: string) => void;
      noBuild?: boolean;
      progress?: Progress;
      label?: string;
    } = {},
  ): Promise<void> {
    await this.#project(projectDir, true, (dir, env) =>
      this.exec(lockArgs(opts), {
        cwd: dir,
        env,
        onLine: opts.onLine,
        progress: opts.progress,
        label: opts.label,
        hint: "the requirements in pyproject.toml cannot be locked; see uv's message above",
      }));
  }

  /** True when projectDir/uv.lock satisfies pyproject.toml (`uv lock --check`), false when it is stale. */
  async lockIsCurrent(
    projectDir: string,
    opts: { python?: string; offline?: boolean } = {},
  ): Promise<boolean> {
    const r = await run(this.bin, lockArgs({ ...opts, check: true }), {
      cwd: projectDir,
      env: this.#env(),
      check: false,
    });
    if (r.code === 0) return true;
    if (/needs to be updated|Unable to find lockfile/.test(r.stderr)) return false;
    throw new CdError(
      "UV_FAILED",
      `uv lock --check failed in ${projectDir}:\n${tail(r.stderr || r.stdout)}`,
      {
        hint: "fix .cec/pyproject.toml (see uv's message above)",
      },
    );
  }

  /**
   * `uv sync` of the .cec project into venvDir: every dependency group (= every node), the project itself
   * not installed (it is not a package), extraneous packages removed (uv's default exact sync).
   */
  async sync(
    projectDir: string,
    venvDir: string,
    opts: {
      frozen?: boolean;
      /** Packages to reinstall even if present (a dist-info with no METADATA is invisible to plain sync). */
      reinstall?: string[];
      /** uv's cache only: a wheel it lacks fails the sync before the venv is touched. */
      offline?: boolean;
      onLine?: (l: string) => void;
      progress?: Progress;
    } = {},
  ): Promise<void> {
    const args = ["sync", "--all-groups", "--no-install-project"];
    if (opts.frozen) args.push("--frozen");
    if (opts.offline) args.push("--offline");
    for (const p of opts.reinstall ?? []) args.push("--reinstall-package", p);
    await this.#project(projectDir, !opts.frozen, (dir, env) =>
      this.exec(args, {
        cwd: dir,
        env: { ...env, UV_PROJECT_ENVIRONMENT: venvDir },
        onLine: opts.onLine,
        progress: opts.progress,
        label: "installing packages (uv sync)",
        hint: opts.frozen
          ? "uv could not install the locked packages; check the index/network, or run 'comfydock repair'"
          : "uv.lock may be out of date: run 'comfydock plan' to see what changes",
      }));
  }

  /**
   * Drops these packages from uv's cache, so the next install unpacks fresh files (uv links installed files
   * to its cache: a file edited in place in a venv is edited in the cache as well).
   */
  async cacheClean(packages: string[]): Promise<void> {
    if (packages.length) await this.exec(["cache", "clean", ...packages]);
  }

  /** `uv pip <args>` against venvDir (tests use it to drift a venv by hand, like a user would). */
  async pip(venvDir: string, args: string[]): Promise<RunResult> {
    return await this.exec(["pip", ...args, "--python", venvPython(venvDir)]);
  }
}

function lockArgs(
  opts: { check?: boolean; python?: string; offline?: boolean; noBuild?: boolean },
): string[] {
  const args = ["lock"];
  if (opts.check) args.push("--check");
  if (opts.python) args.push("--python", opts.python);
  if (opts.offline) args.push("--offline");
  if (opts.noBuild) args.push("--no-build");
  return args;
}

function tail(text: string): string {
  return text.trim().split("\n").slice(-15).join("\n");
}

async function isExecutableFile(path: string): Promise<boolean> {
  try {
    const st = await Deno.stat(path);
    return st.isFile && (Deno.build.os === "windows" || ((st.mode ?? 0o111) & 0o111) !== 0);
  } catch {
    return false;
  }
}

async function findOnPath(name: string, path: string[]): Promise<string | null> {
  const exe = Deno.build.os === "windows" ? `${name}.exe` : name;
  const dirs = path.filter((d) => d && isAbsolute(d));
  // A pyenv shim costs a bash start-up per call: prefer a real binary anywhere on PATH.
  const real = dirs.filter((d) => !/[\\/]shims$/.test(d));
  for (const d of [...real, ...dirs]) {
    const p = join(d, exe);
    if (await isExecutableFile(p)) return p;
  }
  return null;
}
