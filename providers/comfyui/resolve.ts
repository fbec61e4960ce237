/** Resolves a ComfyUI version name (latest | tag | commit) to a pinned commit, through the mirror. */
import { CdError } from "../../lib/errors.ts";
import type { WorkspacePaths } from "../../reconcile/paths.ts";
import * as git from "../git/git.ts";
import { parseRequirements } from "./requirements.ts";
import { type Mirror, refreshMirror } from "../git/mirror.ts";
import { ensureMirror } from "./mirror.ts";
import type { Progress } from "../../lib/progress.ts";
import { labelForCommit, latestReleaseTag, looksLikeSha, shortSha, sortedReleaseTags } from "./versions.ts";

export interface ResolvedComfyUI {
  /** What goes into comfyui_version: the tag, else the short commit. */
  version: string;
  commit: string;
  url: string;
  tag: string | null;
  mirror: Mirror;
  /** Non-fatal findings, e.g. "could not refresh the mirror; using the cached copy". */
  warnings: string[];
}

async function lookup(
  mirror: Mirror,
  spec: string,
): Promise<{ commit: string; tag: string | null } | null> {
  const tags = await git.tags(mirror.dir);
  if (spec === "latest") {
    const tag = latestReleaseTag(Object.keys(tags));
    return tag ? { commit: tags[tag], tag } : null;
  }
  for (const name of [spec, `v${spec}`]) {
    if (name in tags) return { commit: tags[name], tag: name };
  }
  if (looksLikeSha(spec)) {
    const commit = await git.revParse(mirror.dir, spec.toLowerCase());
    if (commit) return { commit, tag: labelForCommit(commit, tags) };
  }
  return null;
}

export async function resolveComfyUI(
  ws: WorkspacePaths,
  url: string,
  spec = "latest",
  opts: { progress?: Progress } = {},
): Promise<ResolvedComfyUI> {
  const mirror = await ensureMirror(ws, url, opts);
  const warnings: string[] = [];
  // "latest" moves: ask upstream each time (cheap fetch); a tag or commit is immutable, so the cached
  // mirror answers unless it has not seen it yet.
  let found = spec === "latest" ? null : await lookup(mirror, spec);
  if (!found) {
    const err = await refreshMirror(mirror, opts.progress);
    if (err) {
      warnings.push(`could not refresh the ComfyUI mirror (${err.split("\n")[0]}); using the cached copy`);
    }
    found = await lookup(mirror, spec);
  }
  if (!found) {
    const newest = sortedReleaseTags(Object.keys(await git.tags(mirror.dir))).slice(0, 5);
    throw new CdError(
      "COMFYUI_VERSION_UNKNOWN",
      spec === "latest"
        ? `${url} has no release tags (vX.Y.Z), so 'latest' means nothing there`
        : `ComfyUI version '${spec}' was not found in ${url}`,
      {
        hint: newest.length
          ? `newest releases: ${newest.join(", ")}; or pass a commit sha, or 'latest'`
          : "pass a commit sha with --comfyui",
      },
    );
  }
  return {
    version: found.tag ?? shortSha(found.commit),
    commit: found.commit,
    url,
    tag: found.tag,
    mirror,
    warnings,
  };
}

/** ComfyUI's requirements at `commit`, as `[project].dependencies` (none when the file does not exist there). */
export async function requirementsAt(mirror: Mirror, commit: string): Promise<string[]> {
  return parseRequirements(await git.showFile(mirror.dir, commit, "requirements.txt") ?? "");
}

/** Committer date of `commit` in the mirror (RFC 3339), for `create --resolve-as-of comfyui`. */
export async function commitDate(mirror: Mirror, commit: string): Promise<string> {
  const [entry] = await git.log(mirror.dir, { rev: commit, maxCount: 1 });
  return entry.date;
}
