/**
 * Locking without touching `.cec`: `uv lock` runs in a temporary copy of the project that sits beside
 * `.cec` (same parent, so relative paths in pyproject resolve the same), and the result is handed back as
 * text. `checkResolves` is the gate every pyproject change passes before it is written (DESIGN §3);
 * `relock` is how apply writes `.cec/uv.lock` atomically.
 */
import { join } from "node:path";
import { parse } from "smol-toml";
import { CdError, isCdError } from "../../lib/errors.ts";
import { readTextIfExists, removeIfExists } from "../../lib/fsx.ts";
import { editPyprojectText } from "../../reconcile/pyproject_edit.ts";
import type { EnvContext } from "../../reconcile/types.ts";
import type { EnvPaths } from "../../reconcile/paths.ts";
import type { Progress } from "../../lib/progress.ts";
import { inspectVenv, venvPython } from "./distinfo.ts";
import { normalizeName, requirementName } from "./lockfile.ts";
import { findPython } from "./python.ts";
import { TORCH_PACKAGES, torchPinEdit, unpinTorchEdit } from "./torch.ts";
import { Uv } from "./uv.ts";

export { requirementName };

/** Runs fn in a fresh directory beside `.cec` holding `files`; always removed afterwards. */
export async function withProjectCopy<T>(
  paths: EnvPaths,
  files: Record<string, string>,
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  await Deno.mkdir(paths.root, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: paths.root, prefix: ".cec-uv-" });
  try {
    for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(join(dir, name), text);
    return await fn(dir);
  } finally {
    await removeIfExists(dir);
  }
}

/** The interpreter uv should lock for: the venv's own, else the one pyproject's python_version names. */
export async function lockPython(ctx: EnvContext, pyprojectText: string): Promise<string | undefined> {
  const paths = ctx.paths;
  const venv = await inspectVenv(paths.venv);
  if (venv.state === "ok") {
    return venvPython(paths.venv);
  }
  const wanted = pythonVersionOf(pyprojectText);
  if (!wanted) return undefined;
  return (await findPython(ctx.settings.system, wanted)).path;
}

function pythonVersionOf(pyprojectText: string): string | undefined {
  try {
    // deno-lint-ignore no-explicit-any -- only one optional key is read; the schema is validated elsewhere
    const data = parse(pyprojectText) as any;
    const v = data?.tool?.comfydock?.python_version;
    return typeof v === "string" ? v : undefined;
  } catch {
    return undefined;
  }
}

export interface RelockOptions {
  uv?: Uv;
  onLine?: (l: string) => void;
  /** uv `--no-build`: no build backend runs; a dependency that needs one fails as NO_BUILD_BLOCKED. */
  noBuild?: boolean;
  /** Shows `uv lock` as a task, named `label`. */
  progress?: Progress;
  label?: string;
  /** The lock to start from (default: `.cec/uv.lock`), so unrelated pins stay put. */
  lockText?: string | null;
}

/**
 * Locks `pyprojectText` (starting from the current uv.lock, so unrelated pins stay put) and returns the new
 * lock text. A resolution failure is PACKAGES_CONFLICT naming packages and node groups; one caused by the
 * torch pins is TORCH_CHANGE naming the node and both torch versions.
 */
export async function relock(
  ctx: EnvContext,
  pyprojectText: string,
  opts: RelockOptions = {},
): Promise<string> {
  const { paths } = ctx;
  const uv = opts.uv ?? await Uv.locate(paths.workspace, ctx.settings);
  const python = await lockPython(ctx, pyprojectText);
  const lockText = opts.lockText !== undefined ? opts.lockText : await readTextIfExists(paths.uvLock);
  const lockOnce = (text: string) => {
    const files: Record<string, string> = { "pyproject.toml": text };
    if (lockText !== null) files["uv.lock"] = lockText;
    return withProjectCopy(paths, files, async (dir) => {
      await uv.lock(dir, {
        python,
        onLine: opts.onLine,
        noBuild: opts.noBuild,
        progress: opts.progress,
        label: opts.label,
      });
      return await Deno.readTextFile(join(dir, "uv.lock"));
    });
  };
  try {
    return await lockOnce(pyprojectText);
  } catch (e) {
    if (opts.noBuild) throw noBuildError(e);
    const err = conflictError(e, pyprojectText);
    const unpin = unpinTorchEdit(pyprojectText);
    if (isCdError(err) && err.code === "PACKAGES_CONFLICT" && unpin && mentionsTorch(err.message)) {
      // Resolve once without the torch pins: if that works, the pins are the cause; say which node wants
      // which torch instead of uv's derivation.
      const unpinned = (await editPyprojectText(pyprojectText, [unpin])).text;
      const trial = await lockOnce(unpinned).catch(() => null);
      const moved = trial === null ? null : torchPinEdit(lockText, trial, pyprojectText);
      if (moved instanceof CdError) throw moved;
    }
    throw err;
  }
}

function mentionsTorch(text: string): boolean {
  return TORCH_PACKAGES.some((p) => new RegExp(`\\b${p}\\b`, "i").test(text));
}

/** uv refused to build under --no-build: say what could not be checked and why. */
function noBuildError(e: unknown): unknown {
  if (!isCdError(e) || !/Building source distributions.* is disabled|--no-build/i.test(e.message)) return e;
  const what = [...e.message.matchAll(/Failed to (?:build|download and build) `([^`]+)`/g)].map((m) => m[1]);
  return new CdError(
    "NO_BUILD_BLOCKED",
    `uv.lock could not be checked without building: ${what.join(", ") || "a dependency"} has no wheel, ` +
      "and reading its metadata would run its build backend (setup.py)",
    {
      hint: "--no-build runs no code from the desired state, so dependencies without wheels (local, git, " +
        "sdist-only) cannot be checked; review them, then check without --no-build on a trusted machine",
      cause: e,
    },
  );
}

/** Verifies that `pyprojectText` (a proposed .cec/pyproject.toml) resolves; nothing in .cec is touched. */
export async function checkResolves(ctx: EnvContext, pyprojectText: string): Promise<void> {
  await relock(ctx, pyprojectText);
}

/** PEP 508 marker variables: uv prints them inside requirements (`numpy{sys_platform == 'linux'}<2`). */
const MARKER_NAMES = new Set([
  "os-name",
  "sys-platform",
  "platform-machine",
  "platform-python-implementation",
  "platform-release",
  "platform-system",
  "platform-version",
  "python-version",
  "python-full-version",
  "implementation-name",
  "implementation-version",
  "extra",
]);

/**
 * What uv's resolution explanation names: the packages in the conflict chain and the dependency groups
 * (`<project>:<group>`) it runs through. Markers (`{sys_platform == 'linux'}`) are conditions, not packages,
 * and a group is named only when uv's chain goes through it.
 */
export function explainConflict(
  uvText: string,
  projectName?: string,
): { packages: string[]; groups: string[] } {
  const text = uvText.replace(/\{[^{}]*\}/g, "");
  const groups = new Set<string>();
  if (projectName) {
    const re = new RegExp(`\\b${escapeRe(projectName)}:([A-Za-z0-9][A-Za-z0-9_.-]*)`, "gi");
    for (const m of text.matchAll(re)) groups.add(m[1]);
  }
  const packages = new Set<string>();
  // uv's phrasing: "all versions of X", "X==1 depends on Y<2", "only X==1 is available", "no version of X",
  // "X and Y are incompatible". A name followed by ':' is a group, "your project" is the project.
  const pkgRe =
    /(?:versions? of|depends? on|no versions? of|only|requires|and|because)\s+([A-Za-z0-9][A-Za-z0-9_.-]*)(?=\s*(?:\[[^\]]*\])?\s*(?:[<>=!~]=?|===|\s|,|\.(?:\s|$)|$))/gi;
  const stop = new Set([
    "your",
    "all",
    "we",
    "the",
    "there",
    "only",
    "project",
    "no",
    "version",
    "versions",
    "because",
    "and",
  ]);
  for (const m of text.matchAll(pkgRe)) {
    const n = normalizeName(m[1]);
    if (stop.has(n) || MARKER_NAMES.has(n) || (projectName && n === normalizeName(projectName))) continue;
    packages.add(n);
  }
  return { packages: [...packages].sort(), groups: [...groups].sort() };
}

/** Turns uv's "No solution found" into PACKAGES_CONFLICT with the packages and node groups involved. */
export function conflictError(e: unknown, pyprojectText: string): unknown {
  if (
    !(e instanceof CdError) || e.code !== "UV_FAILED" || !/No solution found|unsatisfiable/i.test(e.message)
  ) {
    return e;
  }
  const uvText = e.message.slice(e.message.indexOf("\n") + 1).split("\n")
    .filter((l) => !/^Using (C?Python|interpreter)/.test(l)).join("\n");
  const { packages: pkgs, groups: nodes } = explainConflict(uvText, projectNameOf(pyprojectText));
  return new CdError(
    "PACKAGES_CONFLICT",
    `Python requirements do not resolve` +
      (pkgs.length ? `: conflicting packages ${pkgs.join(", ")}` : "") +
      (nodes.length ? `; requested by node group${nodes.length > 1 ? "s" : ""} ${nodes.join(", ")}` : "") +
      `\n${uvText.trim()}`,
    {
      hint: nodes.length
        ? `remove or change one of: ${nodes.join(", ")} (or relax the pins in [dependency-groups]); ` +
          ".cec/pyproject.toml was not changed"
        : "relax the requirement pins in .cec/pyproject.toml; it was not changed",
      cause: e,
    },
  );
}

function projectNameOf(text: string): string | undefined {
  try {
    // deno-lint-ignore no-explicit-any -- best-effort read for an error message; the schema lives elsewhere
    const name = (parse(text) as any)?.project?.name;
    return typeof name === "string" ? name : undefined;
  } catch {
    return undefined;
  }
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * The lock of a desired-state change, with torch pinned: locks `pyprojectText` and returns it with the
 * locked torch family in `constraint-dependencies` (torchPinEdit) and the lock that goes with it, for the
 * same commit. Fails with TORCH_CHANGE, before anything is written, when the change would move torch;
 * `allowTorchChange` (`--allow-torch-change`, `comfyui update`) lets it move and pins the new versions.
 */
export async function lockChange(
  ctx: EnvContext,
  pyprojectText: string,
  opts: { allowTorchChange?: boolean; onLine?: (l: string) => void; progress?: Progress; label?: string } =
    {},
): Promise<{ text: string; lock: string }> {
  const oldLock = await readTextIfExists(ctx.paths.uvLock);
  const unpin = opts.allowTorchChange ? unpinTorchEdit(pyprojectText) : null;
  const input = unpin ? (await editPyprojectText(pyprojectText, [unpin])).text : pyprojectText;
  const lock = await relock(ctx, input, { onLine: opts.onLine, progress: opts.progress, label: opts.label });
  const pin = torchPinEdit(oldLock, lock, pyprojectText, { allowChange: opts.allowTorchChange });
  if (pin instanceof CdError) throw pin;
  const text = pin ? (await editPyprojectText(pyprojectText, [pin])).text : pyprojectText;
  // The constraints are part of what uv locks (uv.lock's manifest): lock the text that is committed.
  if (text === input) return { text, lock };
  return {
    text,
    lock: await relock(ctx, text, {
      onLine: opts.onLine,
      lockText: lock,
      progress: opts.progress,
      label: opts.label,
    }),
  };
}
