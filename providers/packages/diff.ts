/**
 * The `packages` action, computed from plain data: what the venv holds vs what the lock says it must hold.
 * Pure (no I/O): unit tests feed it data directly.
 */
import type { Action } from "../../reconcile/types.ts";
import { normalizeName } from "./lockfile.ts";
import { compareVersions } from "./markers.ts";
import { requirementName } from "./resolve.ts";

/** What the package provider observed (JSON, fingerprinted into the plan). */
export type PackagesObserved = {
  venv: { state: "ok" | "missing" | "corrupt"; problem: string | null; python: string | null };
  /** `current`: uv.lock satisfies pyproject; `stale`: pyproject changed since; `missing`: no uv.lock. */
  lock: "current" | "stale" | "missing";
  /** Packages the venv must hold (name -> version): from uv.lock, or from a trial re-lock when stale. */
  target: Record<string, string>;
  /** Installed distributions (normalised name -> version); empty when the venv is not usable. */
  installed: Record<string, string>;
  /** `*.dist-info` dirs without readable METADATA (half-removed packages). */
  broken: string[];
  /** The interpreter a new venv would be made from (only looked up when one is needed), or why none. */
  python: { version: string; path: string } | { error: string } | null;
};

export interface PackageChanges {
  add: Record<string, string>;
  remove: Record<string, string>;
  change: Record<string, [string, string]>;
}

/** `2.5.0` == `2.5`, `2.5.0+cpu` == `2.5.0+CPU`; local/pre-release suffixes must match. */
export function sameVersion(a: string, b: string): boolean {
  if (a === b) return true;
  const suffix = (v: string) => v.toLowerCase().replace(/^\s*v?\d+(?:\.\d+)*/, "");
  return compareVersions(a, b) === 0 && suffix(a) === suffix(b);
}

export function packageChanges(
  installed: Record<string, string>,
  target: Record<string, string>,
): PackageChanges {
  const add: Record<string, string> = {}, remove: Record<string, string> = {};
  const change: Record<string, [string, string]> = {};
  for (const [n, v] of Object.entries(target).sort()) {
    const have = installed[n];
    if (have === undefined) add[n] = v;
    else if (!sameVersion(have, v)) change[n] = [have, v];
  }
  for (const [n, v] of Object.entries(installed).sort()) if (!(n in target)) remove[n] = v;
  return { add, remove, change };
}

/** `+3 -1 ~2 (torch 2.4.1 -> 2.5.0)`; empty string when nothing changes. */
export function summarizeChanges(c: PackageChanges): string {
  const counts: string[] = [];
  const nAdd = Object.keys(c.add).length, nRm = Object.keys(c.remove).length;
  const nCh = Object.keys(c.change).length;
  if (nAdd) counts.push(`+${nAdd}`);
  if (nRm) counts.push(`-${nRm}`);
  if (nCh) counts.push(`~${nCh}`);
  if (counts.length === 0) return "";
  const named = [
    ...Object.entries(c.change).map(([n, [a, b]]) => `${n} ${a} -> ${b}`),
    ...Object.entries(c.add).map(([n, v]) => `${n} ${v}`),
    ...Object.entries(c.remove).map(([n, v]) => `${n} ${v}`),
  ];
  const shown = named.slice(0, 3).join(", ") + (named.length > 3 ? ", ..." : "");
  return `${counts.join(" ")} (${shown})`;
}

const MAX_DETAIL = 25;

export function changeDetails(c: PackageChanges): string[] {
  const lines = [
    ...Object.entries(c.add).map(([n, v]) => `+ ${n} ${v}`),
    ...Object.entries(c.remove).map(([n, v]) => `- ${n} ${v}`),
    ...Object.entries(c.change).map(([n, [a, b]]) => `~ ${n} ${a} -> ${b}`),
  ];
  return lines.length > MAX_DETAIL
    ? [...lines.slice(0, MAX_DETAIL), `... and ${lines.length - MAX_DETAIL} more`]
    : lines;
}

/** Name of the distribution a `<name>-<version>.dist-info` dir belongs to. */
export function distInfoName(dir: string): string {
  return normalizeName(dir.replace(/\.dist-info$/, "").split("-")[0]);
}

/** What apply needs from the plan (stored in `action.after`). */
export type PackagesAfter = {
  python: string;
  relock: boolean;
  recreate: boolean;
  reinstall: string[];
  packages: number;
};

/**
 * The single `packages` action (or none): `create` when there is no venv, `replace` when it is broken or has
 * the wrong Python, `update` when uv.lock is out of date or the venv differs from it.
 */
export function diffPackages(pythonVersion: string, o: PackagesObserved): Action[] {
  const relock = o.lock !== "current";
  const lockWhy = o.lock === "missing"
    ? "no uv.lock yet: lock first"
    : "pyproject.toml changed since uv.lock: re-lock";
  const pythonLine = o.python && "path" in o.python
    ? `python: ${o.python.path} (${o.python.version})`
    : o.python && "error" in o.python
    ? `python: ${o.python.error}`
    : undefined;
  const base = {
    before: {
      venv: o.venv.state,
      python: o.venv.python ?? null,
      lock: o.lock,
      packages: Object.keys(o.installed).length,
    },
  };
  const after = (recreate: boolean, reinstall: string[] = []): PackagesAfter => ({
    python: pythonVersion,
    relock,
    recreate,
    reinstall,
    packages: Object.keys(o.target).length,
  });
  const wrongPython = o.venv.state === "ok" && o.venv.python !== null &&
    !(o.venv.python === pythonVersion || o.venv.python.startsWith(`${pythonVersion}.`));
  if (o.venv.state !== "ok" || wrongPython) {
    const n = Object.keys(o.target).length;
    const why = o.venv.state === "missing"
      ? `no venv: create it with Python ${pythonVersion} and install ${n} locked package${n === 1 ? "" : "s"}`
      : o.venv.state === "corrupt"
      ? `the venv is broken (${o.venv.problem ?? "unreadable"}): recreate it and install ${n} packages`
      : `the venv has Python ${o.venv.python} but pyproject asks for ${pythonVersion}: recreate it`;
    return [{
      address: "packages",
      type: "packages",
      kind: o.venv.state === "missing" ? "create" : "replace",
      reason: why,
      ...base,
      after: after(true),
      details: [...(pythonLine ? [pythonLine] : []), ...(relock ? [lockWhy] : [])],
    }];
  }
  const changes = packageChanges(o.installed, o.target);
  const summary = summarizeChanges(changes);
  const reinstall = [...new Set(o.broken.map(distInfoName))].sort();
  if (!relock && !summary && reinstall.length === 0) return [];
  const causes: string[] = [];
  if (relock) {
    causes.push(o.lock === "missing" ? "uv.lock is missing" : "uv.lock is out of date with pyproject.toml");
  }
  if (summary) causes.push("the venv differs from the lock");
  if (reinstall.length) {
    causes.push(
      `${reinstall.length} broken install${reinstall.length === 1 ? "" : "s"} (${reinstall.join(", ")})`,
    );
  }
  return [{
    address: "packages",
    type: "packages",
    kind: "update",
    reason: `${summary || "no package changes"}; ${causes.join(", ")}`,
    ...base,
    after: after(false, reinstall),
    details: [
      ...(relock ? [lockWhy] : []),
      ...changeDetails(changes),
      ...reinstall.map((n) => `! reinstall ${n} (its dist-info is broken)`),
    ],
  }];
}

/** The dependency group that holds packages added by hand (no node uses this id). */
export const USER_GROUP = "user";

/**
 * `capture` for packages: pins of what was installed into the venv outside the lock (pip install from
 * ComfyUI-Manager, a shell) added to `[dependency-groups].user`, so the next lock keeps them instead of
 * the next sync removing them. Returns null when nothing was added by hand.
 */
export function captureUserPackages(
  existingUserGroup: string[],
  o: PackagesObserved,
): { path: string[]; value: string[] } | null {
  const extra = packageChanges(o.installed, o.target).remove;
  const have = new Set(existingUserGroup.map(requirementName));
  const added = Object.entries(extra).filter(([n]) => !have.has(n)).map(([n, v]) => `${n}==${v}`);
  if (added.length === 0) return null;
  return { path: ["dependency-groups", USER_GROUP], value: [...existingUserGroup, ...added] };
}
