/**
 * Locking without touching `.cec`: `uv lock` runs in a temporary copy of the project that sits beside
 * `.cec` (same parent, so relative paths in pyproject resolve the same), and the result is handed back as
 * text. `checkResolves` is the gate every pyproject change passes before it is written (DESIGN §3);
 * `relock` is how apply writes `.cec/uv.lock` atomically.
 */
import { join } from "node:path";
import { parse } from "smol-toml";
import { CdError } from "../../lib/errors.ts";
import { readTextIfExists, removeIfExists } from "../../lib/fsx.ts";
import type { EnvPaths } from "../../reconcile/paths.ts";
import type { EnvContext } from "../../reconcile/types.ts";
import { inspectVenv, venvPython } from "./distinfo.ts";
import { normalizeName } from "./lockfile.ts";
import { findPython } from "./python.ts";
import { Uv } from "./uv.ts";

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
  /** The lock to start from (default: `.cec/uv.lock`), so unrelated pins stay put. */
  lockText?: string | null;
}

/**
 * Locks `pyprojectText` (starting from the current uv.lock, so unrelated pins stay put) and returns the new
 * lock text. A resolution failure is PACKAGES_CONFLICT naming packages and node groups.
 */
export async function relock(
  ctx: EnvContext,
  pyprojectText: string,
  opts: RelockOptions = {},
): Promise<string> {
  const paths = ctx.paths;
  const uv = opts.uv ?? await Uv.locate(paths.workspace, ctx.settings);
  const python = await lockPython(ctx, pyprojectText);
  const lockText = opts.lockText !== undefined ? opts.lockText : await readTextIfExists(paths.uvLock);
  const files: Record<string, string> = { "pyproject.toml": pyprojectText };
  if (lockText !== null) files["uv.lock"] = lockText;
  return await withProjectCopy(paths, files, async (dir) => {
    try {
      await uv.lock(dir, { python, onLine: opts.onLine });
    } catch (e) {
      throw conflictError(e, pyprojectText);
    }
    return await Deno.readTextFile(join(dir, "uv.lock"));
  });
}

/** Verifies that `pyprojectText` (a proposed .cec/pyproject.toml) resolves; nothing in .cec is touched. */
export async function checkResolves(ctx: EnvContext, pyprojectText: string): Promise<void> {
  await relock(ctx, pyprojectText);
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
  const { projectName, groups } = requirementsOf(pyprojectText);
  const groupHits = new Set<string>();
  if (projectName) {
    const re = new RegExp(`\\b${escapeRe(projectName)}:([A-Za-z0-9][A-Za-z0-9_.-]*)`, "gi");
    for (const m of uvText.matchAll(re)) groupHits.add(m[1]);
  }
  const packages = new Set<string>();
  const pkgRe =
    /(?:versions? of|depends on|requires|because|and|no version of)\s+([A-Za-z0-9][A-Za-z0-9_.-]*)(?=\s*(?:[<>=!~]=?|===|\s|,|$))/gi;
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
  for (const m of uvText.matchAll(pkgRe)) {
    const n = normalizeName(m[1]);
    if (!stop.has(n) && !(projectName && n === normalizeName(projectName))) packages.add(n);
  }
  // Nodes whose group names one of the colliding packages, even where uv's text does not say so.
  for (const [g, reqs] of Object.entries(groups)) {
    if (reqs.some((r) => packages.has(r))) groupHits.add(g);
  }
  const pkgs = [...packages].sort();
  const nodes = [...groupHits].sort();
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

function requirementsOf(text: string): { projectName?: string; groups: Record<string, string[]> } {
  try {
    // deno-lint-ignore no-explicit-any -- best-effort read for an error message; the schema lives elsewhere
    const data = parse(text) as any;
    const groups: Record<string, string[]> = {};
    for (const [g, reqs] of Object.entries(data?.["dependency-groups"] ?? {})) {
      if (Array.isArray(reqs)) {
        groups[g] = reqs.filter((r): r is string => typeof r === "string").map(requirementName);
      }
    }
    return { projectName: data?.project?.name, groups };
  } catch {
    return { groups: {} };
  }
}

/** `torch[cuda]>=2; sys_platform=='linux'` -> `torch`. */
export function requirementName(req: string): string {
  return normalizeName(/^\s*([A-Za-z0-9][A-Za-z0-9_.-]*)/.exec(req)?.[1] ?? req);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
