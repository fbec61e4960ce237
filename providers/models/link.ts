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
 * volume) a copy, which is reported so the user can move the store next to the environments. A file
 * system without symlinks on Linux/macOS (FAT, exFAT, some network mounts) falls back the same way.
 * The decision is the pure `nextLinkKind`, unit-tested for every OS on any OS.
 */
import { dirname } from "node:path";

export type LinkKind = "symlink" | "hardlink" | "copy";
export type LinkOs = typeof Deno.build.os;

/** Why one way of linking failed, as far as the fallback decision cares. */
export type LinkFailure =
  /** Something is already at the link path: never overwritten (the caller trashes first). */
  | "exists"
  /** The model file itself is gone: no other way of linking can help. */
  | "missing"
  /** Not allowed or not supported here: a symlink without Developer Mode/admin on Windows, or FAT/exFAT. */
  | "not-permitted"
  /** A hard link across volumes (EXDEV). */
  | "cross-device"
  | "other";

/** The failure class of an error thrown by Deno.symlink / Deno.link / Deno.copyFile. */
export function classifyLinkError(e: unknown): LinkFailure {
  if (e instanceof Deno.errors.AlreadyExists) return "exists";
  if (e instanceof Deno.errors.NotFound) return "missing";
  const code = (e as { code?: unknown })?.code;
  if (code === "EXDEV") return "cross-device";
  if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotSupported) {
    return "not-permitted";
  }
  if (code === "EPERM" || code === "EACCES" || code === "ENOTSUP" || code === "EOPNOTSUPP") {
    return "not-permitted";
  }
  return "other";
}

/**
 * Pure: given the failures of the ways tried so far (in order: symlink, hardlink, copy), what to try next,
 * or "fail" to give up with the last error. Symlinks first everywhere. On Windows any symlink failure falls
 * back (the privilege error has no stable class), to a hard link (same volume: still one copy), then, if
 * that fails too (another volume, a file system without hard links), to a copy. Elsewhere a symlink fails
 * only on file systems without them (FAT, some network mounts): those fall back the same way; any other
 * error is real (read-only, disk full) and is reported. An existing path or a missing model never falls back.
 */
export function nextLinkKind(os: LinkOs, failures: readonly LinkFailure[]): LinkKind | "fail" {
  const last = failures.at(-1);
  if (last === undefined) return "symlink";
  if (last === "exists" || last === "missing") return "fail";
  const windows = os === "windows";
  switch (failures.length) {
    case 1:
      return windows || last === "not-permitted" ? "hardlink" : "fail";
    case 2:
      return windows || last !== "other" ? "copy" : "fail";
    default:
      return "fail";
  }
}

/** Makes `linkPath` (which must not exist) show the content of `target`; returns how it did it. */
export async function linkModel(
  target: string,
  linkPath: string,
  os: LinkOs = Deno.build.os,
): Promise<LinkKind> {
  await Deno.mkdir(dirname(linkPath), { recursive: true });
  const failures: LinkFailure[] = [];
  let lastError: unknown;
  for (let kind = nextLinkKind(os, failures); kind !== "fail"; kind = nextLinkKind(os, failures)) {
    try {
      if (kind === "symlink") await Deno.symlink(target, linkPath, { type: "file" });
      else if (kind === "hardlink") await Deno.link(target, linkPath);
      else await Deno.copyFile(target, linkPath);
      return kind;
    } catch (e) {
      lastError = e;
      failures.push(classifyLinkError(e));
    }
  }
  throw lastError;
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
