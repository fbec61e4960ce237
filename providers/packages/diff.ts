/**
 * The `packages` action, computed from plain data: what the venv holds vs what the lock says it must hold.
 * Pure (no I/O): unit tests feed it data directly.
 */
import type { Action } from "../../reconcile/types.ts";
import { normalizeName } from "./lockfile.ts";
import { compareVersions } from "./markers.ts";
import { type DistDamage, KNOWN_SHARED_MODULES } from "./record.ts";
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
  /** Installed distributions whose files do not match their RECORD (missing, or changed in size/hash). */
  damaged: Record<string, DistDamage>;
  /** Top-level module -> installed distributions whose RECORDs claim the same files there. */
  shared: Record<string, string[]>;
  /** The interpreter a new venv would be made from (only looked up when one is needed), or why none. */
  python: { version: string; path: string } | { error: string } | null;
  /**
   * `--no-build`: why uv.lock could not be checked against pyproject.toml without running a build backend
   * (then `lock` is not a finding and the venv is compared with the committed lock).
   */
  unchecked: string | null;
};

/** Findings that are not actions: what untrusted mode could not check. */
export function packageNotes(o: PackagesObserved): string[] {
  return o.unchecked
    ? [`packages: ${o.unchecked}; with --no-build, packages that have no wheel cannot be checked`]
    : [];
}

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

function fileList(files: string[], count: number): string {
  return files.join(", ") + (count > files.length ? ", ..." : "");
}

/** `opencv-python: 3 files missing (cv2/__init__.py, cv2/data/x.xml, ...)`. */
export function damageText(name: string, d: DistDamage): string {
  if (d.noRecord) return `${name}: its RECORD is missing, so its files cannot be checked`;
  const parts: string[] = [];
  const n = (k: number) => `${k} file${k === 1 ? "" : "s"}`;
  if (d.missing) parts.push(`${n(d.missing)} missing (${fileList(d.missingFiles, d.missing)})`);
  if (d.changed) parts.push(`${n(d.changed)} changed (${fileList(d.changedFiles, d.changed)})`);
  return `${name}: ${parts.join(", ")}`;
}

/**
 * Groups of distributions that install the same files: seen in the venv's RECORDs, plus the families known
 * to do so (so a plan can say it before they are installed). Module -> member names.
 */
function sharingGroups(o: PackagesObserved): [string, string[]][] {
  const groups = new Map<string, Set<string>>();
  for (const [mod, names] of [...Object.entries(KNOWN_SHARED_MODULES), ...Object.entries(o.shared)]) {
    const g = groups.get(mod) ?? new Set<string>();
    for (const n of names) g.add(n);
    groups.set(mod, g);
  }
  return [...groups].map(([mod, g]) => [mod, [...g].sort()]);
}

/**
 * Reinstalls and plan lines for distributions that share files. Removing or replacing one member deletes
 * the files the others share with it (uv removes what the old RECORD lists), so the members that stay are
 * reinstalled in the same sync; bringing in a second member is said in the plan, because whichever is
 * installed last provides the module.
 */
function sharedEffects(
  o: PackagesObserved,
  c: PackageChanges,
): { reinstall: Record<string, string>; details: string[] } {
  const reinstall: Record<string, string> = {};
  const details: string[] = [];
  for (const [mod, members] of sharingGroups(o)) {
    const installedShared = o.shared[mod] ?? [];
    const leaving = installedShared.filter((n) => n in c.remove || n in c.change);
    const staying = installedShared.filter((n) => n in o.target && !(n in c.change) && !leaving.includes(n));
    for (const n of leaving.length ? staying : []) {
      reinstall[n] = `shares ${mod}/ with ${leaving.join(", ")}, which this change ${
        leaving.every((l) => l in c.remove) ? "removes" : "replaces"
      }`;
    }
    const after = members.filter((n) => n in o.target);
    if (after.length >= 2 && after.some((n) => n in c.add)) {
      details.push(
        `! ${after.join(", ")} all install ${mod}/: the one installed last provides it, and removing one ` +
          "deletes it for the others (ComfyDock then reinstalls them)",
      );
    }
  }
  return { reinstall, details };
}

/** What apply needs from the plan (stored in `action.after`). */
export type PackagesAfter = {
  python: string;
  relock: boolean;
  recreate: boolean;
  reinstall: string[];
  /**
   * Distributions with files changed in content: their entries in uv's cache are dropped before the
   * reinstall, because uv installs by hard link and an edit made in place changed the cached copy too.
   */
  refresh: string[];
  packages: number;
};

/**
 * The single `packages` action (or none): `create` when there is no venv, `replace` when it is broken or has
 * the wrong Python, `update` when uv.lock is out of date or the venv differs from it.
 */
export function diffPackages(pythonVersion: string, o: PackagesObserved): Action[] {
  const relock = o.lock !== "current" && o.unchecked === null;
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
  const after = (recreate: boolean, reinstall: string[] = [], refresh: string[] = []): PackagesAfter => ({
    python: pythonVersion,
    relock,
    recreate,
    reinstall,
    refresh,
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
      details: [
        ...(pythonLine ? [pythonLine] : []),
        ...(relock ? [lockWhy] : []),
        ...sharedEffects({ ...o, installed: {}, shared: {} }, packageChanges({}, o.target)).details,
      ],
    }];
  }
  const changes = packageChanges(o.installed, o.target);
  const summary = summarizeChanges(changes);
  const broken = [...new Set(o.broken.map(distInfoName))].sort();
  // A damaged distribution that the change removes anyway needs no reinstall.
  const damaged = Object.entries(o.damaged).filter(([n]) => n in o.target);
  const shared = sharedEffects(o, changes);
  const reinstall = [...new Set([...broken, ...damaged.map(([n]) => n), ...Object.keys(shared.reinstall)])]
    .sort();
  if (!relock && !summary && reinstall.length === 0) return [];
  const causes: string[] = [];
  if (relock) {
    causes.push(o.lock === "missing" ? "uv.lock is missing" : "uv.lock is out of date with pyproject.toml");
  }
  if (summary) causes.push("the venv differs from the lock");
  if (broken.length) {
    causes.push(`${broken.length} broken install${broken.length === 1 ? "" : "s"} (${broken.join(", ")})`);
  }
  const damage = damaged.map(([n, d]) => damageText(n, d));
  const reason = summary || relock
    ? `${summary || "no package changes"}; ${[...causes, ...damage].join(", ")}`
    : [...damage, ...causes].join("; ") + `: reinstall ${reinstall.join(", ")}`;
  return [{
    address: "packages",
    type: "packages",
    kind: "update",
    reason,
    ...base,
    after: after(false, reinstall, damaged.filter(([, d]) => d.changed > 0).map(([n]) => n)),
    details: [
      ...(relock ? [lockWhy] : []),
      ...changeDetails(changes),
      ...broken.map((n) => `! reinstall ${n} (its dist-info is broken)`),
      ...damaged.map(([n, d]) => `! reinstall ${damageText(n, d)}`),
      ...Object.entries(shared.reinstall).map(([n, why]) => `! reinstall ${n}: ${why}`),
      ...shared.details,
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
