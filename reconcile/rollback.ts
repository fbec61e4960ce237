/**
 * `rollback [REV]`: put `.cec` back to a committed revision. Uncommitted edits are copied aside first
 * (zero data loss: a rollback must never be the thing that destroys a user's unsaved work).
 */
import { join } from "node:path";
import { CdError } from "../lib/errors.ts";
import { checkoutFiles, commit, revParse, status } from "../providers/git/git.ts";
import type { EnvPaths } from "../workspace/paths.ts";
import { readDesired } from "./desired.ts";

async function saveUncommitted(paths: EnvPaths): Promise<string | null> {
  const dirty = await status(paths.cec);
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

export async function rollbackCec(paths: EnvPaths, rev?: string): Promise<string> {
  const target = rev ?? "HEAD";
  const sha = await revParse(paths.cec, target);
  if (!sha) {
    throw new CdError("UNKNOWN_REVISION", `'${target}' is not a revision of ${paths.cec}`, {
      hint: "'comfydock log' lists the revisions",
    });
  }
  const saved = await saveUncommitted(paths);
  await checkoutFiles(paths.cec, sha);
  await readDesired(paths); // the restored state must validate before anything is applied from it
  const made = rev ? await commit(paths.cec, `rollback to ${sha.slice(0, 12)}`) : null;
  const parts = [
    rev
      ? `Restored .cec to ${sha.slice(0, 12)}${made ? ` (committed as ${made.slice(0, 12)})` : ""}.`
      : "Discarded uncommitted edits of .cec.",
  ];
  if (saved) parts.push(`Uncommitted edits were copied to ${saved}.`);
  return parts.join(" ");
}
