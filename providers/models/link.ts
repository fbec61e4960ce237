/**
 * How an environment sees its models: one link per model at `ComfyUI/models/<category>/<filename>`,
 * pointing at the single stored copy (the workspace model store or the user's own indexed folder).
 *
 * Why links and not a generated `extra_model_paths.yaml`:
 * - Exactly the models that `.cec/pyproject.toml` names are visible, under the filename it names. A search
 *   path would show every model in the store, so a workflow could work here by accident and fail on the
 *   next machine, and it cannot rename a file (`filename` in pyproject vs the name on disk).
 * - Each model is a separate resource (`model.<key>`) that plan/apply can create, replace and undo on its
 *   own, and `observe` can check with one lstat/stat per model (the index caches hashes by size, mtime
 *   and inode, so a link to a verified file costs no read).
 * - It works for every ComfyUI version and for tools that read the models folder directly; ComfyUI follows
 *   symlinks when it lists model folders.
 * Portability: symlinks on Linux and macOS. On Windows a symlink needs Developer Mode or admin rights, so
 * the fallback is a hard link (same volume: still one copy on disk), and only if that fails too (another
 * volume) a copy, which is reported so the user can move the store next to the environments.
 */
import { dirname } from "node:path";

export type LinkKind = "symlink" | "hardlink" | "copy";

/** Makes `linkPath` (which must not exist) show the content of `target`; returns how it did it. */
export async function linkModel(target: string, linkPath: string): Promise<LinkKind> {
  await Deno.mkdir(dirname(linkPath), { recursive: true });
  try {
    await Deno.symlink(target, linkPath, { type: "file" });
    return "symlink";
  } catch (e) {
    if (Deno.build.os !== "windows" || e instanceof Deno.errors.AlreadyExists) throw e;
  }
  try {
    await Deno.link(target, linkPath);
    return "hardlink";
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) throw e;
  }
  await Deno.copyFile(target, linkPath);
  return "copy";
}

/** The absolute path a symlink resolves to, or null (not a link, or broken). */
export function linkTarget(path: string): string | null {
  try {
    // Sync: called once per model on every plan (see walk.ts statFile).
    const st = Deno.lstatSync(path);
    if (!st.isSymlink) return null;
    return Deno.realPathSync(path);
  } catch {
    return null;
  }
}
