/**
 * What keeps an exported environment from being rebuilt on another machine (pure): models `.cec` records
 * without any download source (only this machine has the file) and git nodes whose repository is a path or
 * `file://` URL of this machine. `export` warns about each; nothing is refused.
 */
import type { DesiredState } from "../../reconcile/desired.ts";
import { isRemoteUrl } from "../git/git.ts";

export function portabilityWarnings(desired: DesiredState, opts: { withModels?: boolean } = {}): string[] {
  const out: string[] = [];
  for (const [key, m] of Object.entries(desired.models).sort(([a], [b]) => a.localeCompare(b))) {
    if (m.sources.length > 0 || opts.withModels) continue;
    out.push(
      `model.${key} (${m.category}/${m.filename}) has no download source: another machine cannot get it; ` +
        `'comfydock model sources ${key} --write' looks one up by hash, or export --with-models`,
    );
  }
  for (const [id, n] of Object.entries(desired.nodes).sort(([a], [b]) => a.localeCompare(b))) {
    if (n.source !== "git") continue;
    const repo = n.repository;
    // A path (absolute, relative, `~/x`) or a file:// URL: reachable on this machine only.
    if (!isRemoteUrl(repo) || /^file:/i.test(repo)) {
      out.push(
        `node.${id} is only reachable at ${repo} (on this machine): push it to a git host and ` +
          `'comfydock node add URL@${n.commit.slice(0, 12)}' it from there, or it will not install elsewhere`,
      );
    }
  }
  return out;
}
