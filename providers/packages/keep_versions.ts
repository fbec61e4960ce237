/**
 * A lock that keeps the versions of a set of installed packages (a venv being adopted, a Manager snapshot's
 * `pips`) without freezing them into `.cec` forever.
 *
 * 1. Lock with every installed version as a temporary `constraint-dependencies` pin: what ComfyUI's and the
 *    nodes' requirements pull in is locked at exactly the installed versions.
 * 2. Installed packages nothing requires (installed by hand, or for something long gone) go into the `user`
 *    dependency group as `name==version` pins, and the set is locked again: nothing installed is lost.
 * 3. The temporary constraints are dropped and the project is locked a third time starting from that lock:
 *    uv keeps locked versions that still satisfy the requirements, so the versions stay while `.cec` only
 *    says what is needed (a later `node update` may still move a package).
 * An installed version that conflicts with a requirement (a venv that `pip check` would complain about, a
 * ComfyUI requirement bumped since the last `pip install -r`) is not kept: its pin is dropped, uv picks
 * a version that fits, and the result names it.
 */
import { join } from "node:path";
import { parse } from "smol-toml";
import { CdError } from "../../lib/errors.ts";
import { writeFileAtomic } from "../../lib/fsx.ts";
import { editPyprojectText } from "../../reconcile/pyproject_edit.ts";
import { normalizeName, parseLock, requiredPackages } from "./lockfile.ts";
import { markerEnv } from "./markers.ts";
import { explainConflict, requirementName } from "./resolve.ts";
import { sameVersion } from "./diff.ts";
import { USER_GROUP } from "./diff.ts";
import type { Uv } from "./uv.ts";

export interface InstalledPackage {
  /** Normalised name. */
  name: string;
  version: string;
  /** How to require exactly it: `name==version`, or `name @ URL` for a direct reference. */
  requirement: string;
}

export interface KeptLock {
  pyprojectText: string;
  lockText: string;
  /** Requirements added to `[dependency-groups].user`. */
  user: string[];
  /** Installed packages whose version is not the locked one, with why. */
  changed: { name: string; installed: string; locked: string | null; reason: string }[];
}

/** Conflicts are retried without the blamed pins this many times before giving up. */
const MAX_CONFLICT_ROUNDS = 6;

export async function lockKeepingVersions(opts: {
  uv: Uv;
  /** The interpreter to lock for. */
  python: string;
  /** `X.Y`: which markers apply when reading the lock. */
  pythonVersion: string;
  /** A scratch directory beside the future `.cec` (relative paths in pyproject resolve the same). */
  workDir: string;
  pyprojectText: string;
  installed: InstalledPackage[];
  onLine?: (line: string) => void;
}): Promise<KeptLock> {
  // deno-lint-ignore no-explicit-any -- a few optional keys of TOML already validated by the caller
  const data = parse(opts.pyprojectText) as any;
  const projectName: string | undefined = data?.project?.name;
  const hadConstraints = Array.isArray(data?.tool?.uv?.["constraint-dependencies"]);
  const baseConstraints: string[] = data?.tool?.uv?.["constraint-dependencies"] ?? [];
  const baseUser: string[] = (data?.["dependency-groups"]?.[USER_GROUP] ?? []).filter((r: unknown) =>
    typeof r === "string"
  );
  const constrained = new Set(baseConstraints.map(requirementName));
  const unkept = new Map<string, string>();
  let pins = opts.installed.filter((p) => !constrained.has(p.name) && p.requirement.includes("=="));
  let lockText: string | null = null;
  const dir = join(opts.workDir, `keep-versions-${crypto.randomUUID().slice(0, 8)}`);
  await Deno.mkdir(dir, { recursive: true });

  /** The project with `user` added to the user group and, while locking, the installed pins. */
  const textFor = async (user: string[], withPins: boolean): Promise<string> => {
    const constraints = [...baseConstraints, ...(withPins ? pins.map((p) => `${p.name}==${p.version}`) : [])];
    const edits = [
      // Removing a key that is not there is not an edit (the TOML editor refuses it).
      ...(constraints.length || hadConstraints
        ? [{
          path: ["tool", "uv", "constraint-dependencies"],
          value: constraints.length ? constraints : undefined,
        }]
        : []),
      ...(user.length ? [{ path: ["dependency-groups", USER_GROUP], value: [...baseUser, ...user] }] : []),
    ];
    return (await editPyprojectText(opts.pyprojectText, edits)).text;
  };

  const lockWith = async (user: string[], withPins: boolean): Promise<string> => {
    for (let round = 0;; round++) {
      const text = await textFor(user, withPins);
      await writeFileAtomic(join(dir, "pyproject.toml"), text);
      if (lockText !== null) await writeFileAtomic(join(dir, "uv.lock"), lockText);
      try {
        await opts.uv.lock(dir, { python: opts.python, onLine: opts.onLine });
        return await Deno.readTextFile(join(dir, "uv.lock"));
      } catch (e) {
        const blamed = new Set(e instanceof CdError ? explainConflict(e.message, projectName).packages : []);
        const drop = pins.filter((p) => blamed.has(p.name));
        if (!withPins || drop.length === 0 || round >= MAX_CONFLICT_ROUNDS) throw e;
        for (const p of drop) {
          unkept.set(p.name, "conflicts with a requirement of ComfyUI or a node (uv chose another version)");
        }
        pins = pins.filter((p) => !blamed.has(p.name));
      }
    }
  };

  try {
    lockText = await lockWith([], true);
    const reached = new Set(Object.keys(required(lockText, opts.pythonVersion)));
    const have = new Set(baseUser.map(requirementName));
    const user = opts.installed.filter((p) => !reached.has(p.name) && !have.has(p.name)).map((p) =>
      p.requirement
    );
    if (user.length) lockText = await lockWith(user, true);
    lockText = await lockWith(user, false);
    const text = await textFor(user, false);
    const locked = required(lockText, opts.pythonVersion);
    const changed: KeptLock["changed"] = [];
    for (const p of opts.installed) {
      const got = locked[p.name] ?? null;
      // A requirement without a local label (`torch==2.5.0`) is met by the index's local build of it.
      const plain = !p.version.includes("+") && got !== null && sameVersion(got.split("+")[0], p.version);
      if (got !== null && (sameVersion(got, p.version) || plain)) continue;
      changed.push({
        name: p.name,
        installed: p.version,
        locked: got,
        reason: unkept.get(p.name) ??
          (got === null ? "not in the lock for this platform" : "uv chose another version"),
      });
    }
    return { pyprojectText: text, lockText, user, changed };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function required(lockText: string, pythonVersion: string): Record<string, string> {
  const pkgs = requiredPackages(parseLock(lockText), markerEnv(pythonVersion));
  return Object.fromEntries(Object.entries(pkgs).map(([n, p]) => [normalizeName(n), p.version]));
}
