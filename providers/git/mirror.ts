/**
 * The one mirror cache (`comfydock_cache/git/<slug>-<hash of URL>.git`): a bare mirror per repository,
 * cloned from the network once and reused by every environment (ComfyUI itself and git nodes). Checkouts
 * are cloned from it (objects hard-linked on one disk), so installs after the first are offline; a mirror is
 * fetched only when it lacks what is asked for. Its config is written by git clone here: trusted.
 */
import { createHash } from "node:crypto";
import { isAbsolute, join, resolve } from "node:path";
import { CdError, errorMessage } from "../../lib/errors.ts";
import { exists, removeIfExists } from "../../lib/fsx.ts";
import { removeDeadPidEntries } from "../../lib/proc.ts";
import { type Progress, withTask } from "../../lib/progress.ts";
import * as git from "./git.ts";

export interface Mirror {
  dir: string;
  url: string;
  /** True when this call cloned it (so it is fresh: no fetch needed). */
  cloned: boolean;
}

/** Local paths become absolute and trailing slashes go, so one repository always maps to one mirror. */
export function normaliseUrl(url: string): string {
  if (git.isRemoteUrl(url)) return url.replace(/\/+$/, "");
  return isAbsolute(url) ? url : resolve(url);
}

export function mirrorDir(gitMirrors: string, url: string): string {
  const norm = normaliseUrl(url);
  const slug = norm.replace(/^[a-z+]+:\/\//, "").replace(/\.git$/, "").replace(/[^A-Za-z0-9._-]+/g, "_")
    .slice(-60);
  const key = createHash("sha256").update(norm).digest("hex").slice(0, 16);
  return join(gitMirrors, `${slug}-${key}.git`);
}

export interface MirrorOptions {
  /** Shows the clone as a task (git's own meters: objects received, transfer rate). */
  progress?: Progress;
  /** Clone from this local repository instead of `url` (adopt: the user's own checkout of it); it still names `url`. */
  source?: string;
  /** Error code and hint when the clone fails (default GIT_CLONE_FAILED). */
  errorCode?: string;
  hint?: string;
}

/** The mirror of `url`, cloned (into a temp dir, then renamed: never a half mirror) when absent. */
export async function ensureMirror(
  gitMirrors: string,
  url: string,
  opts: MirrorOptions = {},
): Promise<Mirror> {
  const dir = mirrorDir(gitMirrors, url);
  if (await exists(join(dir, "HEAD"))) return { dir, url, cloned: false };
  await Deno.mkdir(gitMirrors, { recursive: true });
  await sweepDeadClones(gitMirrors);
  const tmp = `${dir}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    try {
      await withTask(
        opts.progress,
        `cloning ${url}`,
        (task) =>
          git.cloneMirror(opts.source ?? url, tmp, { onLine: opts.progress && git.progressInto(task) }),
      );
    } catch (e) {
      // git missing, a stale lock: their own errors say what to do; only a failed clone is about the URL.
      if (e instanceof CdError && e.code !== "GIT_CLONE_FAILED") throw e;
      throw new CdError(
        opts.errorCode ?? "GIT_CLONE_FAILED",
        `could not clone ${url}: ${git.lastLine(errorMessage(e))}`,
        {
          hint: opts.hint ??
            "check the URL (is the repository public and spelled right?); nothing was changed",
        },
      );
    }
    // Cloned from a local source: it names `url` before it is put in place, so no interruption can leave a
    // mirror that fetches from the source for good.
    if (opts.source !== undefined) await git.setRemoteUrl(tmp, "origin", normaliseUrl(url));
    try {
      await Deno.rename(tmp, dir);
    } catch (e) {
      // Another process made the mirror meanwhile: use theirs.
      if (!await exists(join(dir, "HEAD"))) throw e;
    }
  } finally {
    await removeIfExists(tmp);
  }
  return { dir, url, cloned: true };
}

/**
 * Mirrors named as before this naming (`comfyui-<16 hex>.git` for ComfyUI, `<slug>-<12 hex>.git` for nodes):
 * nothing finds them any more, and environments do not depend on them (a local clone copies or hard-links
 * the objects it needs), so they would only take disk space for good.
 */
const LEGACY_MIRROR = /^(?:comfyui-[0-9a-f]{16}|.+-[0-9a-f]{12})\.git$/;

/**
 * Removes `<mirror>.tmp-<pid>-<rand>` clones left by a process that was killed while cloning, and mirrors
 * under their old names. Runs before a clone: when a mirror is missing, perhaps because its name changed.
 */
async function sweepDeadClones(gitMirrors: string): Promise<void> {
  await removeDeadPidEntries(gitMirrors, /\.git\.tmp-(\d+)-[0-9a-f]{8}$/);
  for await (const e of Deno.readDir(gitMirrors)) {
    if (e.isDirectory && LEGACY_MIRROR.test(e.name)) await removeIfExists(join(gitMirrors, e.name));
  }
}

/** Fetches all refs of the mirror (a fresh clone needs none); throws GIT_FETCH_FAILED. */
export async function fetchMirror(mirror: Mirror, progress?: Progress): Promise<void> {
  if (mirror.cloned) return;
  await withTask(progress, `fetching ${mirror.url}`, () =>
    git.fetchMirror(mirror.dir, {
      hint: `check your network connection and ${mirror.url}; the cached mirror was left as it was`,
    }));
}

/** Like fetchMirror, but returns the error message instead (callers that can go on offline). */
export async function refreshMirror(mirror: Mirror, progress?: Progress): Promise<string | null> {
  try {
    await fetchMirror(mirror, progress);
    return null;
  } catch (e) {
    return errorMessage(e);
  }
}

/** Makes sure the mirror has `commit`, fetching once if needed; `missing` builds the error otherwise. */
export async function ensureCommit(
  mirror: Mirror,
  commit: string,
  missing: (fetchError: string | null) => CdError,
): Promise<void> {
  if (await git.hasCommit(mirror.dir, commit)) return;
  const err = await refreshMirror(mirror);
  if (await git.hasCommit(mirror.dir, commit)) return;
  throw missing(err);
}

async function tryResolve(mirror: Mirror, ref: string): Promise<string | null> {
  for (const candidate of [ref, `refs/tags/${ref}`, `refs/heads/${ref}`]) {
    const sha = await git.revParse(mirror.dir, candidate);
    if (sha) return sha;
  }
  return null;
}

/**
 * A ref (tag, branch, short or full sha; default the remote's HEAD) resolved to a full commit. Fetches the
 * mirror once when the ref is unknown (a new tag), then fails naming the ref.
 */
export async function resolveRef(mirror: Mirror, ref?: string): Promise<string> {
  const want = ref ?? "HEAD";
  // A name starting with '-' would reach git as an option (`node update --ref`, a `ref` in someone's .cec).
  if (want.startsWith("-")) {
    throw new CdError("GIT_REF_NOT_FOUND", `'${want}' is not a branch, tag or commit name of ${mirror.url}`, {
      hint: "branch, tag and commit names never start with '-'",
    });
  }
  const found = await tryResolve(mirror, want);
  if (found) return found;
  await fetchMirror(mirror);
  const again = await tryResolve(mirror, want);
  if (again) return again;
  throw new CdError("GIT_REF_NOT_FOUND", `${mirror.url} has no branch, tag or commit '${want}'`, {
    hint: `list them with 'git ls-remote ${mirror.url}'`,
  });
}

/**
 * Checks out `commit` into `dest` (must not exist), cloned from the mirror, with origin set to the mirror's
 * URL; with `submodules`, they are fetched too (from their own URLs: `file://` ones are refused by git's
 * protocol policy, see SAFE_CONFIG).
 */
export async function checkoutInto(
  mirror: Mirror,
  commit: string,
  dest: string,
  opts: { submodules?: boolean; errorCode?: string } = {},
): Promise<void> {
  const errorCode = opts.errorCode ?? "GIT_CHECKOUT_FAILED";
  await git.cloneNoCheckout(mirror.dir, dest, { errorCode });
  await git.checkoutDetached(dest, commit, { errorCode, source: mirror.dir });
  await git.setRemoteUrl(dest, "origin", mirror.url);
  if (opts.submodules && await exists(join(dest, ".gitmodules"))) {
    await git.git(dest, ["submodule", "update", "--init", "--recursive", "--quiet"], {
      errorCode: "GIT_SUBMODULE_FAILED",
      hint: "the node's submodules could not be fetched; check your network",
    });
  }
}
