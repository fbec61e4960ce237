/**
 * ComfyUI's repository in the workspace mirror cache (providers/git/mirror.ts): the first environment
 * clones from the network once, later ones clone from the mirror (hard-linked objects) and only `fetch`
 * when they need a version the mirror does not have yet.
 */
import { CdError } from "../../lib/errors.ts";
import type { Progress } from "../../lib/progress.ts";
import type { Settings } from "../../lib/settings.ts";
import type { WorkspacePaths } from "../../reconcile/paths.ts";
import * as mirrors from "../git/mirror.ts";
import type { Mirror } from "../git/mirror.ts";

/** --comfyui-url (or the URL pinned in `.cec`), else the configured one (COMFYDOCK_COMFYUI_URL, else the official repository). */
export function comfyuiUrl(explicit: string | undefined, settings: Settings): string {
  return mirrors.normaliseUrl(explicit || settings.comfyuiUrl);
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
