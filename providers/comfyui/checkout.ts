/**
 * The ComfyUI working tree of an environment: a clone of the mirror, detached at the pinned commit, whose
 * `origin` points at the upstream URL (what ComfyUI-Manager and users expect to see).
 *
 * Zero data loss: models/, custom_nodes/, user/, input/, output/ are the user's. A version change is an
 * in-place `git checkout --detach <commit>` on a clean tree: git only touches tracked files and refuses
 * (before writing anything) when a tracked change would overwrite an untracked user file, so those dirs are
 * never moved, copied or deleted (models can be hundreds of GB: a clone + move-across would risk a partial
 * move on a crash). A tree with hand edits to tracked files is never reset: the update refuses instead.
 */
import { join } from "node:path";
import { CdError } from "../../lib/errors.ts";
import * as git from "../git/git.ts";
import { checkoutInto, type Mirror } from "../git/mirror.ts";

/** ComfyUI's user-data folders: never deleted or replaced by ComfyDock. */
export const USER_DIRS = ["models", "custom_nodes", "user", "input", "output"] as const;

/** Clones the mirror into `dest` (must not exist) detached at `commit` (ComfyUI has no submodules). */
export async function cloneAt(mirror: Mirror, commit: string, dest: string): Promise<void> {
  await checkoutInto(mirror, commit, dest, { errorCode: "GIT_FAILED" });
}

/** The user folders ComfyUI would make at first start, plus the workflow folder of the UI (DESIGN §8). */
export async function makeUserDirs(comfyuiDir: string): Promise<void> {
  for (const d of USER_DIRS) await Deno.mkdir(join(comfyuiDir, d), { recursive: true });
  await Deno.mkdir(join(comfyuiDir, "user", "default", "workflows"), { recursive: true });
}

/**
 * Tracked files edited by hand (untracked and ignored files, i.e. user data, do not count). `untrusted`: a
 * checkout this tool did not make (adopt), whose own config's filter drivers must not run.
 */
export async function localEdits(dir: string, opts: { untrusted?: boolean } = {}): Promise<string[]> {
  return (await git.status(dir, { untracked: false, untrusted: opts.untrusted })).map((e) => e.path);
}

/** Moves a clean checkout to `commit` in place, bringing the commit from the mirror when it lacks it. */
export async function checkoutInPlace(dir: string, mirror: Mirror | null, commit: string): Promise<void> {
  const edits = await localEdits(dir);
  if (edits.length) throw dirtyError(dir, edits);
  if (!await git.hasCommit(dir, commit)) {
    if (!mirror) throw new CdError("COMFYUI_COMMIT_MISSING", `commit ${commit} is not in ${dir}`);
    await git.git(dir, ["fetch", "--quiet", "--tags", mirror.dir, commit], { errorCode: "GIT_FETCH_FAILED" });
  }
  const r = await git.git(dir, ["checkout", "--quiet", "--detach", commit], { check: false });
  if (r.code !== 0) {
    throw new CdError(
      "COMFYUI_CHECKOUT_REFUSED",
      `git refused to check out ${commit} in ${dir}:\n${r.stderr.trim()}`,
      {
        hint: "move the files git names out of the way (nothing was changed), then apply again",
      },
    );
  }
  await git.assertCheckoutComplete(dir, commit);
}

export function dirtyError(dir: string, edits: string[]): CdError {
  const shown = edits.slice(0, 5).join(", ") + (edits.length > 5 ? ` (+${edits.length - 5} more)` : "");
  return new CdError("COMFYUI_DIRTY", `ComfyUI in ${dir} has local edits to tracked files: ${shown}`, {
    hint: `keep them with 'git -C ${dir} stash' (or commit them), or discard them with ` +
      `'git -C ${dir} checkout -- .', then apply again; ComfyDock never resets your edits`,
  });
}
