/**
 * `rollback [REV]`: put `.cec` back to a committed revision, then plan+apply, as one change (DESIGN §6):
 * the files of REV are written through the session's change path, so a declined or failed apply leaves
 * `.cec` and the environment as they were. Without REV it discards uncommitted edits of `.cec` (restores
 * HEAD). Uncommitted edits are always copied aside first: a rollback must never be the thing that destroys
 * a user's unsaved work.
 */
import { join } from "node:path";
import { CdError } from "../lib/errors.ts";
import * as git from "../providers/git/git.ts";
import type { EnvPaths } from "../reconcile/paths.ts";
import type { ChangeResult, Session } from "./session.ts";

async function saveUncommitted(paths: EnvPaths): Promise<string | null> {
  const dirty = await git.status(paths.cec);
  if (dirty.length === 0) return null;
  const dir = join(paths.state, "cec-backups", new Date().toISOString().replace(/[:.]/g, "-"));
  for (const entry of dirty) {
    const src = join(paths.cec, entry.path);
    const dst = join(dir, entry.path);
    await Deno.mkdir(join(dst, ".."), { recursive: true });
    await Deno.copyFile(src, dst).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e; // a deleted file has nothing to keep
    });
  }
  return dir;
}

export interface RollbackResult extends ChangeResult {
  sha: string;
  /** Where uncommitted edits were copied, or null. */
  saved: string | null;
}

export async function rollbackCec(
  session: Session,
  rev: string | undefined,
  opts: { apply: boolean },
): Promise<RollbackResult> {
  const paths = session.paths;
  const target = rev ?? "HEAD";
  const sha = await git.revParse(paths.cec, target);
  if (!sha) {
    throw new CdError("UNKNOWN_REVISION", `'${target}' is not a revision of ${paths.cec}`, {
      hint: "'comfydock log' lists the revisions",
    });
  }
  const saved = await saveUncommitted(paths);
  const atRev = new Set(await git.lsFiles(paths.cec, sha));
  const now = new Set([
    ...await git.lsFiles(paths.cec, "HEAD"),
    ...(await git.status(paths.cec)).map((e) => e.path),
  ]);
  const files: { path: string; content: string | null }[] = [];
  for (const rel of atRev) files.push({ path: rel, content: await git.showFile(paths.cec, sha, rel) });
  for (const rel of now) if (!atRev.has(rel)) files.push({ path: rel, content: null });
  const result = await session.change({
    message: `rollback to ${sha.slice(0, 12)}`,
    apply: opts.apply,
    // Restoring HEAD means exactly dropping the uncommitted edits (saved above): no commit is made then.
    discardUncommitted: true,
    commit: rev !== undefined,
    edit: () => ({ edits: [], files }),
  });
  return { ...result, sha, saved };
}
