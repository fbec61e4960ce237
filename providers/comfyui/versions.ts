/**
 * ComfyUI version names, resolved like comfy-cli: `latest` is the highest release tag by semver
 * (`vX.Y.Z`, no pre-release suffix), a tag names itself, anything else is a commit sha or prefix. Pure.
 */

export interface ReleaseVersion {
  major: number;
  minor: number;
  patch: number;
}

/** `v0.10.0` / `0.10.0` -> numbers; null for anything that is not a plain release tag. */
export function parseReleaseTag(tag: string): ReleaseVersion | null {
  const m = /^v?(\d+)\.(\d+)\.(\d+)$/.exec(tag);
  return m ? { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) } : null;
}

export function compareReleases(a: ReleaseVersion, b: ReleaseVersion): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch;
}

/** Release tags sorted newest first (numerically: v0.10.0 > v0.9.0). */
export function sortedReleaseTags(tags: Iterable<string>): string[] {
  return [...tags]
    .map((t) => ({ t, v: parseReleaseTag(t) }))
    .filter((x): x is { t: string; v: ReleaseVersion } => x.v !== null)
    .sort((a, b) => compareReleases(b.v, a.v) || a.t.localeCompare(b.t))
    .map((x) => x.t);
}

export function latestReleaseTag(tags: Iterable<string>): string | null {
  return sortedReleaseTags(tags)[0] ?? null;
}

/** The tag to show for a commit: the newest release tag among those pointing at it, else any tag. */
export function labelForCommit(commit: string, tags: Record<string, string>): string | null {
  const at = Object.keys(tags).filter((t) => tags[t] === commit);
  return sortedReleaseTags(at)[0] ?? at.sort()[0] ?? null;
}

export function shortSha(sha: string): string {
  return sha.slice(0, 7);
}

/**
 * How a pinned version is shown: "v0.3.10 (2a724d9)", or only "2a724d9" when the version is the commit
 * itself (an untagged commit is named by its short sha).
 */
export function versionLabel(version: string, commit: string): string {
  const short = shortSha(commit);
  return commit.toLowerCase().startsWith(version.toLowerCase()) ? short : `${version} (${short})`;
}

export function looksLikeSha(s: string): boolean {
  return /^[0-9a-f]{4,40}$/i.test(s);
}
