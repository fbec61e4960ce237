/**
 * Git nodes through the git CLI: a bare mirror per repository in `comfydock_cache/git/` (fetched once,
 * reused by every environment), refs resolved to full commits, checkouts cloned from the mirror into a
 * staging dir (so installs after the first are offline).
 */
import { join } from "node:path";
import { CdError } from "../../lib/errors.ts";
import { exists, readTextIfExists, sha256Hex } from "../../lib/fsx.ts";
import { run } from "../../lib/proc.ts";

/** Never let git ask for a password on a terminal (a wrong GitHub URL asks for one). */
const GIT_ENV = { GIT_TERMINAL_PROMPT: "0", GIT_ASKPASS: "", LC_ALL: "C" };

function git(
  args: string[],
  opts: { cwd?: string; check?: boolean; errorCode?: string; hint?: string } = {},
) {
  return run("git", args, { ...opts, env: GIT_ENV, hint: opts.hint ?? "is git installed and on PATH?" });
}

export function mirrorPath(gitMirrors: string, url: string): string {
  const slug = url.replace(/^[a-z+]+:\/\//, "").replace(/\.git$/, "").replace(/[^A-Za-z0-9._-]+/g, "_").slice(
    -60,
  );
  const digest = sha256Hex(url).slice(0, 12);
  return join(gitMirrors, `${slug}-${digest}.git`);
}

/** The mirror of `url`, cloned when missing; `fetch` refreshes an existing one. */
export async function ensureMirror(
  gitMirrors: string,
  url: string,
  opts: { fetch?: boolean } = {},
): Promise<string> {
  const mirror = mirrorPath(gitMirrors, url);
  if (await exists(mirror)) {
    if (opts.fetch) await fetchMirror(mirror, url);
    return mirror;
  }
  await Deno.mkdir(gitMirrors, { recursive: true });
  const tmp = `${mirror}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const r = await git(["clone", "--mirror", "--quiet", url, tmp], { check: false });
  if (r.code !== 0) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw new CdError("GIT_CLONE_FAILED", `could not clone ${url}: ${lastLine(r.stderr)}`, {
      hint: "check the URL (is the repository public and spelled right?); nothing was changed",
    });
  }
  await Deno.rename(tmp, mirror).catch(async (e) => {
    // Another process made the same mirror meanwhile: use theirs.
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    if (!(await exists(mirror))) throw e;
  });
  return mirror;
}

async function fetchMirror(mirror: string, url: string): Promise<void> {
  const r = await git(["-C", mirror, "fetch", "--quiet", "--prune", "--tags", "origin"], { check: false });
  if (r.code !== 0) {
    throw new CdError("GIT_FETCH_FAILED", `could not fetch ${url}: ${lastLine(r.stderr)}`, {
      hint: "check your network connection; the cached mirror was left as it was",
    });
  }
}

function lastLine(s: string): string {
  return s.trim().split("\n").filter(Boolean).pop() ?? "unknown error";
}

async function tryResolve(mirror: string, ref: string): Promise<string | null> {
  for (const candidate of [ref, `refs/tags/${ref}`, `refs/heads/${ref}`]) {
    const r = await git(["-C", mirror, "rev-parse", "--verify", "--quiet", `${candidate}^{commit}`], {
      check: false,
    });
    if (r.code === 0) return r.stdout.trim();
  }
  return null;
}

/**
 * A ref (tag, branch, short or full sha; default the remote's HEAD) resolved to a full commit. Fetches the
 * mirror once when the ref is unknown (a new tag), then fails naming the ref.
 */
export async function resolveCommit(mirror: string, url: string, ref?: string): Promise<string> {
  const want = ref ?? "HEAD";
  const found = await tryResolve(mirror, want);
  if (found) return found;
  await fetchMirror(mirror, url);
  const again = await tryResolve(mirror, want);
  if (again) return again;
  throw new CdError("GIT_REF_NOT_FOUND", `${url} has no branch, tag or commit '${want}'`, {
    hint: `list them with 'git ls-remote ${url}'`,
  });
}

/** Reads one file at a commit from the mirror (null when absent). */
export async function showFile(mirror: string, commit: string, path: string): Promise<string | null> {
  const r = await git(["-C", mirror, "show", `${commit}:${path}`], { check: false });
  return r.code === 0 ? r.stdout : null;
}

/** Checks out `commit` into `dest` (must not exist), cloned from the mirror, with origin set to `url`. */
export async function checkoutInto(mirror: string, url: string, commit: string, dest: string): Promise<void> {
  await git(["clone", "--quiet", "--no-checkout", mirror, dest], { errorCode: "GIT_CHECKOUT_FAILED" });
  await git(["-C", dest, "checkout", "--quiet", "--detach", commit], { errorCode: "GIT_CHECKOUT_FAILED" });
  await git(["-C", dest, "remote", "set-url", "origin", url]);
  if (await exists(join(dest, ".gitmodules"))) {
    await git(["-C", dest, "submodule", "update", "--init", "--recursive", "--quiet"], {
      errorCode: "GIT_SUBMODULE_FAILED",
      hint: "the node's submodules could not be fetched; check your network",
    });
  }
}

/** Keeps a file out of `git status` of a checkout (our marker must not make a node look dirty). */
export async function excludeFromGit(dir: string, name: string): Promise<void> {
  const path = join(dir, ".git", "info", "exclude");
  const text = (await readTextIfExists(path)) ?? "";
  if (text.split("\n").includes(`/${name}`)) return;
  await Deno.mkdir(join(dir, ".git", "info"), { recursive: true });
  await Deno.writeTextFile(path, `${text}${text && !text.endsWith("\n") ? "\n" : ""}/${name}\n`);
}

/**
 * HEAD commit of a checkout. Reads .git directly (a plan over many nodes must not spawn git twice per node),
 * falling back to git for anything unusual (worktrees, packed refs).
 */
export async function gitHead(dir: string): Promise<string | null> {
  const head = (await readTextIfExists(join(dir, ".git", "HEAD")))?.trim();
  if (head === undefined) {
    if (!(await exists(join(dir, ".git")))) return null;
  } else if (/^[0-9a-f]{40}$/.test(head)) {
    return head;
  } else if (head.startsWith("ref: ")) {
    const ref = (await readTextIfExists(join(dir, ".git", head.slice(5))))?.trim();
    if (ref && /^[0-9a-f]{40}$/.test(ref)) return ref;
  }
  const r = await git(["-C", dir, "rev-parse", "--verify", "--quiet", "HEAD"], { check: false });
  return r.code === 0 ? r.stdout.trim() : null;
}

/**
 * Paths under `sub` that the repository at `repo` tracks (ComfyUI ships `custom_nodes/websocket_image_save.py`:
 * it is ComfyUI's file, not a node). Empty when `repo` is not a git checkout. The fsmonitor hook is off: this
 * runs on every plan.
 */
export async function trackedFiles(repo: string, sub: string): Promise<Set<string>> {
  const r = await git(["-c", "core.fsmonitor=false", "-C", repo, "ls-files", "-z", "--", sub], {
    check: false,
  });
  return new Set(r.code === 0 ? r.stdout.split("\0").filter(Boolean) : []);
}

export async function gitOrigin(dir: string): Promise<string | null> {
  const r = await git(["-C", dir, "config", "--get", "remote.origin.url"], { check: false });
  return r.code === 0 ? r.stdout.trim() || null : null;
}

/**
 * Uncommitted changes (`git status --porcelain`): modified tracked files and untracked files, except the
 * byte-code caches Python writes when ComfyUI loads the node (they would make every used node "dirty").
 */
export async function gitDirty(dir: string): Promise<string[]> {
  const r = await git(["-C", dir, "status", "--porcelain", "--untracked-files=all"], { check: false });
  if (r.code !== 0) return [`(git status failed: ${lastLine(r.stderr)})`];
  return r.stdout.split("\n").filter((l) => l.trim() && !/__pycache__\/|\.py[co]$/.test(l));
}

/** `gitDirty` lines for a message: "2 files: a.py, b.py" (porcelain status columns dropped). */
export function describeDirty(dirty: string[]): string {
  const n = dirty.length;
  const names = dirty.slice(0, 3).map((l) => /^[ MTADRCU?!]{2} /.test(l) ? l.slice(3) : l);
  return `${n} file${n === 1 ? "" : "s"}: ${names.join(", ")}${n > 3 ? ", ..." : ""}`;
}
