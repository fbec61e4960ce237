/**
 * The one path door (DESIGN §6b). Desired state is untrusted input: a node id, a model category or
 * filename, a bundle entry or a journal step may come from a stranger. Every path the tool writes, moves,
 * links or deletes is built or checked here, and refused unless it stays inside its root.
 *
 * Two levels: names (`safeSegment`, `safeRelPath`: pure, used by the schema so `validate` and `plan` report
 * the offending key) and paths (`within`: resolves the symlinks of the parts that exist, so a link planted
 * inside the root cannot lead outside it).
 */
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { CdError } from "./errors.ts";

/** Windows device names: a file called `con.json` or `aux` cannot be created there and confuses tools. */
const RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i;

/** Why `name` is not a safe single path segment, or null when it is. */
export function segmentProblem(name: string): string | null {
  if (name.length === 0) return "is empty";
  if (name.length > 255) return "is longer than 255 characters";
  if (name === "." || name === "..") return `is '${name}'`;
  if (/[\\/]/.test(name)) return "contains a path separator";
  // deno-lint-ignore no-control-regex -- control characters are exactly what is refused
  if (/[\x00-\x1f\x7f]/.test(name)) return "contains a control character";
  if (/[<>:"|?*]/.test(name)) return `contains '${name.match(/[<>:"|?*]/)![0]}' (not allowed on Windows)`;
  if (RESERVED.test(name)) return "is a reserved device name on Windows";
  if (/[. ]$/.test(name)) return "ends with a dot or a space (Windows drops them)";
  return null;
}

/** Why `rel` is not a safe relative path of '/'-separated safe segments, or null when it is. */
export function relPathProblem(rel: string): string | null {
  if (rel.length === 0) return "is empty";
  if (rel.includes("\\")) return "contains '\\' (use '/')";
  if (rel.startsWith("/") || /^[A-Za-z]:/.test(rel)) return "is absolute";
  for (const part of rel.split("/")) {
    const p = segmentProblem(part);
    if (p) return `has a part that ${p}`;
  }
  return null;
}

/**
 * `.git` in any case, and its Windows short name: a folder by that name makes git take the config inside
 * as the repository's own, and git runs commands that config names (core.fsmonitor on every status).
 */
export function isGitDirName(segment: string): boolean {
  return /^(\.git|git~\d+)$/i.test(segment.replace(/[. ]+$/, ""));
}

/**
 * Why an archive entry (a '/'-separated relative path inside a zip or tar) may not be extracted, or null.
 * Looser than relPathProblem on purpose: real packs contain names Windows cannot store, and those are
 * the platform's limit, not an attack; what can reach outside or run something is refused.
 */
export function entryProblem(path: string): string | null {
  if (!path) return "has an empty path";
  if (path.startsWith("/") || /^[A-Za-z]:/.test(path)) return "is an absolute path";
  if (path.includes("\\")) return "contains a backslash (paths must use '/')";
  // deno-lint-ignore no-control-regex -- control characters are exactly what is refused
  if (/[\x00-\x1f\x7f]/.test(path)) return "contains control characters";
  for (const seg of path.split("/")) {
    if (seg === "..") return "contains '..' (path traversal)";
    if (seg === "" || seg === ".") return "has an empty or '.' path segment";
    if (isGitDirName(seg)) {
      return "is inside a '.git' folder (archives may not bring git config: git runs commands it names)";
    }
  }
  return null;
}

function outside(path: string, root: string, what: string): CdError {
  return new CdError("PATH_OUTSIDE", `refusing ${what}: ${path} is outside ${root}`, {
    hint: "a name in .cec, a bundle, an archive or a plan file, or a symbolic link on the way, leads " +
      "outside the environment; check where it came from (a linked folder inside the environment is " +
      "not written through)",
  });
}

/** True when `path` (absolute, normalised) is `root` or below it. */
export function isWithin(root: string, path: string): boolean {
  const r = relative(resolve(root), resolve(path));
  return r === "" || (!r.startsWith(`..${sep}`) && r !== ".." && !isAbsolute(r));
}

/**
 * `root/rel` after proving that `rel` is a safe relative path: the pure check for names coming from desired
 * state. Throws PATH_UNSAFE naming `what` (e.g. "node 'x' directory").
 */
export function joinSafe(root: string, rel: string, what: string): string {
  const problem = relPathProblem(rel);
  if (problem) {
    throw new CdError("PATH_UNSAFE", `${what} '${rel}' ${problem}`, {
      hint: "names in .cec must be plain relative paths inside the environment (no '..', no absolute path)",
    });
  }
  return join(root, ...rel.split("/"));
}

/** The real path of `path`'s longest existing prefix, joined with the rest (which does not exist yet). */
async function realPrefix(path: string): Promise<string> {
  const abs = resolve(path);
  const rest: string[] = [];
  let cur = abs;
  for (;;) {
    try {
      const real = await Deno.realPath(cur);
      return rest.length ? join(real, ...rest.reverse()) : real;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      const parent = resolve(cur, "..");
      if (parent === cur) return abs;
      rest.push(cur.slice(parent.length).replace(/^[\\/]/, ""));
      cur = parent;
    }
  }
}

/**
 * Proves that `path` stays inside one of `roots` once the symlinks of its existing parents are resolved
 * (the last component itself is not followed: a link there is what gets moved, not its target). Returns
 * `path`; throws PATH_OUTSIDE naming `what` otherwise.
 */
export async function within(roots: string[], path: string, what: string): Promise<string> {
  const abs = resolve(path);
  const parent = await realPrefix(resolve(abs, ".."));
  const real = join(parent, abs.slice(resolve(abs, "..").length).replace(/^[\\/]/, ""));
  for (const root of roots) {
    const realRoot = await realPrefix(root);
    if (isWithin(realRoot, real) && real !== realRoot) return path;
  }
  throw outside(real === abs ? abs : `${abs} (${real} once links are resolved)`, roots.join(" or "), what);
}
