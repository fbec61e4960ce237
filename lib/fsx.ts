/** Small file-system helpers shared by every provider. */
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { CdError } from "./errors.ts";

export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** `exists` without awaiting: for signal handlers and loops over many paths. */
export function existsSync(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Writes a file so that readers see the old or the new content, never a torn one (temp file + rename). */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode?: number): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data, { mode });
    else await Deno.writeFile(tmp, data, { mode });
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

export async function readTextIfExists(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Parsed JSON of `path`, or null when it does not exist; unparsable text is JSON_INVALID naming the file. */
export async function readJsonIfExists<T = unknown>(path: string): Promise<T | null> {
  const text = await readTextIfExists(path);
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new CdError("JSON_INVALID", `${path} is not valid JSON: ${e instanceof Error ? e.message : e}`, {
      hint: "fix the file, or move it away if ComfyDock made it",
    });
  }
}

/** Removes a path if present; never fails on a missing path. */
export async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** Lists all regular files below dir (relative paths with '/'), not following symlinks. */
export async function listFiles(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(join(dir, rel)));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return out;
    throw e;
  }
  for (const e of entries) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await listFiles(dir, r));
    else if (e.isFile) out.push(r);
  }
  return out.sort();
}

/** sha256 of a string (UTF-8) or bytes, as hex. For files of model size use providers/models/hash.ts. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * Copies the tree at `src` to `dst` (which must not exist): directories, regular files (mode and mtime kept,
 * so git and our manifests see unchanged files as unchanged) and symlinks (as links, not followed).
 * `hardlink`: files become hard links to the originals where the file system allows (no extra space; what
 * uv itself does between its cache and venvs), else copies. Returns how many files were copied vs linked.
 * Synchronous calls on purpose, and no stat of a file that is linked (its folder listing gives its type): a
 * venv holds ~20,000 files, and an awaited call per file costs more than the link itself (measured on this
 * 2-core machine: 20,000 files 4.6 s async, 0.6 s now, `cp -al` 0.5 s; bench/adopt.ts).
 */
export function copyTree(
  src: string,
  dst: string,
  opts: {
    hardlink?: boolean;
    skip?: (rel: string) => boolean;
    /** `dst` may exist: folders are merged, files already there are left as they are (and not counted). */
    merge?: boolean;
  } = {},
): Promise<{ files: number; linked: number }> {
  const counts = { files: 0, linked: 0 };
  let canLink = !!opts.hardlink;
  const lstat = (p: string) => {
    try {
      return Deno.lstatSync(p);
    } catch {
      return null;
    }
  };
  const copyFile = (from: string, to: string) => {
    const st = Deno.lstatSync(from);
    Deno.copyFileSync(from, to);
    if (st.mtime) Deno.utimeSync(to, st.atime ?? st.mtime, st.mtime);
  };
  // The entry's type comes from its folder listing: a file that is linked needs no stat of its own.
  const walk = (rel: string, type: "file" | "dir" | "link" | "other") => {
    const from = rel ? join(src, rel) : src;
    const to = rel ? join(dst, rel) : dst;
    const there = opts.merge ? lstat(to) : null;
    if (there && !(type === "dir" && there.isDirectory)) return;
    if (type === "link") {
      Deno.symlinkSync(Deno.readLinkSync(from), to);
    } else if (type === "dir") {
      if (!there) Deno.mkdirSync(to, { mode: Deno.lstatSync(from).mode ?? undefined });
      for (const e of Deno.readDirSync(from)) {
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (opts.skip?.(r)) continue;
        walk(r, e.isSymlink ? "link" : e.isDirectory ? "dir" : e.isFile ? "file" : "other");
      }
    } else if (type === "file") {
      counts.files++;
      if (canLink) {
        try {
          Deno.linkSync(from, to);
          counts.linked++;
          return;
        } catch {
          canLink = false; // another file system (or no hard links there): copy from now on
        }
      }
      copyFile(from, to);
    }
  };
  try {
    Deno.mkdirSync(dirname(dst), { recursive: true });
    const top = Deno.lstatSync(src);
    walk("", top.isSymlink ? "link" : top.isDirectory ? "dir" : top.isFile ? "file" : "other");
    return Promise.resolve(counts);
  } catch (e) {
    return Promise.reject(e);
  }
}
