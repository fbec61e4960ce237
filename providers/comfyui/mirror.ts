/**
 * ComfyUI's repository in the workspace mirror cache (providers/git/mirror.ts): the first environment
 * clones from the network once, later ones clone from the mirror (hard-linked objects) and only `fetch`
 * when they need a version the mirror does not have yet.
 */
import { CdError } from "../../lib/errors.ts";
import type { Progress } from "../../lib/progress.ts";
import { DEFAULT_COMFYUI_URL, type Settings } from "../../lib/settings.ts";
import type { WorkspacePaths } from "../../reconcile/paths.ts";
import { join } from "node:path";
import { exists } from "../../lib/fsx.ts";
import * as git from "../git/git.ts";
import * as mirrors from "../git/mirror.ts";
import type { Mirror } from "../git/mirror.ts";

/** --comfyui-url (or the URL pinned in `.cec`), else the configured one (COMFYDOCK_COMFYUI_URL, else the official repository). */
export function comfyuiUrl(explicit: string | undefined, settings: Settings): string {
  return mirrors.normaliseUrl(explicit || settings.comfyuiUrl);
}

/**
 * The upstream ComfyUI under its usual spellings (a `.cec` or checkout from elsewhere names it): the
 * configured URL, which may be a mirror or a test repository, stands in for it.
 */
export function isUpstream(url: string): boolean {
  const n = url.replace(/\.git$/, "").replace(/\/+$/, "").toLowerCase();
  return [DEFAULT_COMFYUI_URL.toLowerCase(), "https://github.com/comfy-org/comfyui"].includes(n);
}

export function mirrorDir(ws: WorkspacePaths, url: string): string {
  return mirrors.mirrorDir(ws.gitMirrors, url);
}

/** Returns the mirror of `url`, cloning it if absent (`progress` shows the clone). */
export function ensureMirror(
  ws: WorkspacePaths,
  url: string,
  opts: { progress?: Progress } = {},
): Promise<Mirror> {
  return mirrors.ensureMirror(ws.gitMirrors, url, {
    progress: opts.progress,
    errorCode: "COMFYUI_CLONE_FAILED",
    hint:
      `check that ${url} is reachable and is the ComfyUI git repository (--comfyui-url or COMFYDOCK_COMFYUI_URL)`,
  });
}

/** Makes sure the mirror has `commit`, fetching once if needed. */
export async function ensureCommitInMirror(mirror: Mirror, commit: string): Promise<void> {
  await mirrors.ensureCommit(
    mirror,
    commit,
    (err) =>
      new CdError("COMFYUI_COMMIT_MISSING", `ComfyUI commit ${commit} is not in ${mirror.url}`, {
        hint: err
          ? `fetching ${mirror.url} failed: ${err.split("\n")[0]}`
          : "check comfyui_commit in .cec/pyproject.toml, or pick a version with 'comfydock comfyui update'",
      }),
  );
}

/**
 * The mirror of `url` with `commit` in it, taken from a local checkout (adopt) instead of the network: a
 * missing mirror is cloned from the checkout (objects hard-linked, the checkout is only read) and then points
 * at `url`; an existing one fetches the checkout's HEAD into a ref of its own.
 */
export async function seedMirrorFrom(
  ws: WorkspacePaths,
  url: string,
  checkout: string,
  commit: string,
): Promise<Mirror> {
  const dir = mirrorDir(ws, url);
  if (!await exists(join(dir, "HEAD"))) {
    // The same clone as the cache makes from the network, from the checkout instead, naming `url`.
    await mirrors.ensureMirror(ws.gitMirrors, url, {
      source: checkout,
      errorCode: "COMFYUI_CLONE_FAILED",
      hint: `${checkout} could not be read as a git repository`,
    });
  }
  if (!await git.hasCommit(dir, commit)) {
    await git.git(dir, ["fetch", "--quiet", checkout, `+HEAD:refs/comfydock/adopted/${commit}`], {
      errorCode: "GIT_FETCH_FAILED",
      hint: `${checkout} could not be read as a git repository`,
    });
  }
  return { dir, url, cloned: false };
}
