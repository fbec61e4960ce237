/**
 * The cached bare mirror of a ComfyUI repository (comfydock_cache/git/<hash of URL>.git): the first
 * environment clones from the network once, later ones clone from the mirror (hard-linked objects) and
 * only `fetch` when they need a version the mirror does not have yet.
 */
import { createHash } from "node:crypto";
import { isAbsolute, join, resolve } from "node:path";
import { CdError, errorMessage } from "../../lib/errors.ts";
import { exists, removeIfExists } from "../../lib/fsx.ts";
import type { WorkspacePaths } from "../../reconcile/paths.ts";
import type { Settings } from "../../lib/settings.ts";
import { removeDeadPidEntries } from "../../lib/proc.ts";
import * as git from "../git/git.ts";

/** --comfyui-url (or the URL pinned in `.cec`), else the configured one (COMFYDOCK_COMFYUI_URL, else the official repository). */
export function comfyuiUrl(explicit: string | undefined, settings: Settings): string {
  return normaliseUrl(explicit || settings.comfyuiUrl);
}

/** Local paths become absolute so the same repository always maps to the same mirror. */
export function normaliseUrl(url: string): string {
  if (git.isRemoteUrl(url)) return url.replace(/\/+$/, "");
  return isAbsolute(url) ? url : resolve(url);
}

export function mirrorDir(ws: WorkspacePaths, url: string): string {
  const key = createHash("sha256").update(normaliseUrl(url)).digest("hex").slice(0, 16);
  return join(ws.gitMirrors, `comfyui-${key}.git`);
}

export interface Mirror {
  dir: string;
  url: string;
  /** True when this call cloned it (so it is fresh: no fetch needed). */
  cloned: boolean;
}

/**
 * Returns the mirror of `url`, cloning it (into a temp dir, then renamed: never a half mirror) if absent.
 * `onProgress` receives git's clone progress, a few lines per phase.
 */
export async function ensureMirror(
  ws: WorkspacePaths,
  url: string,
  opts: { onProgress?: (line: string) => void } = {},
): Promise<Mirror> {
  const dir = mirrorDir(ws, url);
  if (await exists(join(dir, "HEAD"))) return { dir, url, cloned: false };
  await Deno.mkdir(ws.gitMirrors, { recursive: true });
  await sweepDeadClones(ws);
  const tmp = `${dir}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await git.cloneMirror(url, tmp, {
      onLine: opts.onProgress && git.progressLines(opts.onProgress),
      errorCode: "COMFYUI_CLONE_FAILED",
      hint:
        `check that ${url} is reachable and is the ComfyUI git repository (--comfyui-url or COMFYDOCK_COMFYUI_URL)`,
    });
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

/** Removes `<mirror>.tmp-<pid>-<rand>` clones left by a process that was killed while cloning. */
export async function sweepDeadClones(ws: WorkspacePaths): Promise<void> {
  await removeDeadPidEntries(ws.gitMirrors, /\.git\.tmp-(\d+)-[0-9a-f]{8}$/);
}

/** Fetches the mirror; returns an error message instead of throwing (callers may go on offline). */
export async function refreshMirror(mirror: Mirror): Promise<string | null> {
  if (mirror.cloned) return null;
  try {
    await git.fetchMirror(mirror.dir);
    return null;
  } catch (e) {
    return errorMessage(e);
  }
}

/** Makes sure the mirror has `commit`, fetching once if needed. */
export async function ensureCommitInMirror(mirror: Mirror, commit: string): Promise<void> {
  if (await git.hasCommit(mirror.dir, commit)) return;
  const err = await refreshMirror(mirror);
  if (await git.hasCommit(mirror.dir, commit)) return;
  throw new CdError("COMFYUI_COMMIT_MISSING", `ComfyUI commit ${commit} is not in ${mirror.url}`, {
    hint: err
      ? `fetching ${mirror.url} failed: ${err.split("\n")[0]}`
      : "check comfyui_commit in .cec/pyproject.toml, or pick a version with 'comfydock comfyui update'",
  });
}
