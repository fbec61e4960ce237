/**
 * Node archives: safe zip extraction and the content-addressed archive store
 * (`comfydock_cache/custom_nodes/store/<sha256>.zip`).
 *
 * The zip's central directory is read here (not through a generic unzip) because safety needs what generic
 * unzippers hide: the external attributes (symlink entries are refused: a link can point anywhere), the
 * declared sizes (checked against limits before anything is inflated, so a zip bomb costs nothing) and the
 * CRC (a truncated or corrupted download is an error, not a half-written node). Entries go into a fresh
 * staging dir only; the caller renames it into place.
 */
import { readBodyCapped } from "../../lib/http_body.ts";
import { crc32 } from "node:zlib";
import { join } from "node:path";
import { inflateSync } from "fflate";
import { CdError, errorMessage } from "../../lib/errors.ts";
import { sha256Hex, writeFileAtomic } from "../../lib/fsx.ts";
import { httpFetch } from "./http.ts";

export interface ZipLimits {
  maxEntries: number;
  maxEntryBytes: number;
  maxTotalBytes: number;
}

export const DEFAULT_LIMITS: ZipLimits = {
  maxEntries: 50_000,
  maxEntryBytes: 512 * 1024 * 1024,
  maxTotalBytes: 2 * 1024 * 1024 * 1024,
};

export interface ZipEntry {
  /** Normalised relative path ('/' separated); directories end without '/'. */
  path: string;
  isDir: boolean;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  /** Unix permission bits when the zip was made on unix, else null. */
  mode: number | null;
  dataOffset: number;
}

function zipError(label: string, message: string): CdError {
  return new CdError("ARCHIVE_INVALID", `${label}: ${message}`, {
    hint: "the download may be truncated or corrupted; run the command again (the cached copy is not used)",
  });
}

function unsafe(label: string, message: string): CdError {
  return new CdError("ARCHIVE_UNSAFE", `${label}: ${message}`, {
    hint: "the archive tries to write outside its folder or contains links; it was not extracted. " +
      "Report it to the node's author or the registry",
  });
}

/** A zip entry name made safe, or an error for names that would escape the target dir. */
export function safeEntryPath(name: string, label: string): string {
  if (name.includes("\0")) throw unsafe(label, `entry name with a NUL byte: ${JSON.stringify(name)}`);
  const n = name.replaceAll("\\", "/");
  if (n.startsWith("/") || /^[A-Za-z]:/.test(n)) throw unsafe(label, `absolute path entry '${name}'`);
  const parts = n.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw unsafe(label, `entry '${name}' points outside the archive ('..')`);
  return parts.join("/");
}

/** Reads the central directory; checks names, links and declared sizes. Nothing is inflated yet. */
export function readZipEntries(bytes: Uint8Array, label: string, limits = DEFAULT_LIMITS): ZipEntry[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 0xffff); i--) {
    if (dv.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw zipError(label, "not a zip file, or truncated (no end-of-archive record)");
  const count = dv.getUint16(eocd + 10, true);
  const cdSize = dv.getUint32(eocd + 12, true);
  const cdOffset = dv.getUint32(eocd + 16, true);
  if (count === 0xffff || cdOffset === 0xffffffff) {
    throw zipError(label, "ZIP64 archives are not supported (node archives are far below 4 GB)");
  }
  if (cdOffset + cdSize > eocd) {
    throw zipError(label, "truncated or corrupted (central directory out of range)");
  }
  if (count > limits.maxEntries) throw unsafe(label, `${count} entries (limit ${limits.maxEntries})`);
  const decoder = new TextDecoder();
  const entries: ZipEntry[] = [];
  const seen = new Set<string>();
  let total = 0;
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > eocd || dv.getUint32(p, true) !== 0x02014b50) {
      throw zipError(label, "truncated or corrupted (bad central directory entry)");
    }
    const madeByOs = dv.getUint16(p + 4, true) >> 8;
    const flags = dv.getUint16(p + 8, true);
    const method = dv.getUint16(p + 10, true);
    const crc = dv.getUint32(p + 16, true);
    const compressedSize = dv.getUint32(p + 20, true);
    const size = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    const external = dv.getUint32(p + 38, true);
    const localOffset = dv.getUint32(p + 42, true);
    const rawName = decoder.decode(bytes.subarray(p + 46, p + 46 + nameLen));
    p += 46 + nameLen + extraLen + commentLen;

    const unixMode = madeByOs === 3 ? (external >>> 16) & 0xffff : null;
    if (unixMode !== null && (unixMode & 0o170000) === 0o120000) {
      throw unsafe(label, `entry '${rawName}' is a symbolic link`);
    }
    if (flags & 1) throw zipError(label, `entry '${rawName}' is encrypted`);
    const isDir = rawName.endsWith("/") || rawName.endsWith("\\");
    const path = safeEntryPath(rawName, label);
    if (!path) continue;
    if (!isDir && method !== 0 && method !== 8) {
      throw zipError(label, `entry '${rawName}' uses compression method ${method} (only stored and deflate)`);
    }
    if (size > limits.maxEntryBytes) {
      throw unsafe(label, `entry '${rawName}' is ${size} bytes (limit ${limits.maxEntryBytes})`);
    }
    total += size;
    if (total > limits.maxTotalBytes) {
      throw unsafe(label, `archive expands to more than ${limits.maxTotalBytes} bytes`);
    }
    if (!isDir) {
      if (seen.has(path)) throw unsafe(label, `entry '${path}' appears twice`);
      seen.add(path);
    }
    if (localOffset + 30 > bytes.length || dv.getUint32(localOffset, true) !== 0x04034b50) {
      throw zipError(label, `truncated or corrupted (no local header for '${rawName}')`);
    }
    const dataOffset = localOffset + 30 + dv.getUint16(localOffset + 26, true) +
      dv.getUint16(localOffset + 28, true);
    if (dataOffset + compressedSize > bytes.length) {
      throw zipError(label, `truncated (data of '${rawName}' runs past the end)`);
    }
    entries.push({
      path,
      isDir,
      method,
      crc,
      compressedSize,
      size,
      mode: unixMode === null ? null : unixMode & 0o777,
      dataOffset,
    });
  }
  return entries;
}

/** The bytes of one entry, CRC-checked. */
export function entryData(bytes: Uint8Array, e: ZipEntry, label: string): Uint8Array {
  const raw = bytes.subarray(e.dataOffset, e.dataOffset + e.compressedSize);
  let out: Uint8Array;
  try {
    // A fixed output buffer of the declared size: a lying header cannot make us allocate more.
    out = e.method === 0 ? raw : inflateSync(raw, { out: new Uint8Array(e.size) });
  } catch (err) {
    throw zipError(
      label,
      `entry '${e.path}' does not decompress (${errorMessage(err)})`,
    );
  }
  if (out.length !== e.size || crc32(out) >>> 0 !== e.crc) {
    throw zipError(label, `entry '${e.path}' is corrupted (checksum mismatch)`);
  }
  return out;
}

/**
 * Extracts a zip into `dest` (a fresh staging dir). Returns the manifest of extracted files
 * (relative path -> sha256), which the marker file keeps to detect hand edits later.
 */
export async function extractZip(
  bytes: Uint8Array,
  dest: string,
  label: string,
  limits = DEFAULT_LIMITS,
): Promise<Record<string, string>> {
  const entries = readZipEntries(bytes, label, limits);
  // Decompress and check everything before writing anything: a bad entry leaves no partial tree.
  const files = entries.filter((e) => !e.isDir).map((e) => ({ e, data: entryData(bytes, e, label) }));
  await Deno.mkdir(dest, { recursive: true });
  for (const e of entries) if (e.isDir) await Deno.mkdir(join(dest, e.path), { recursive: true });
  const manifest: Record<string, string> = {};
  for (const { e, data } of files) {
    const target = join(dest, e.path);
    const slash = e.path.lastIndexOf("/");
    if (slash > 0) await Deno.mkdir(join(dest, e.path.slice(0, slash)), { recursive: true });
    await Deno.writeFile(target, data, { mode: e.mode !== null && e.mode & 0o111 ? 0o755 : 0o644 });
    manifest[e.path] = sha256Hex(data);
  }
  return Object.fromEntries(Object.entries(manifest).sort(([a], [b]) => a.localeCompare(b)));
}

/** Reads some files of a zip without extracting it (requirements, pyproject, install.py). */
export function readZipFiles(
  bytes: Uint8Array,
  label: string,
  wanted: (path: string) => boolean,
): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const e of readZipEntries(bytes, label)) {
    if (!e.isDir && wanted(e.path)) out.set(e.path, entryData(bytes, e, label));
  }
  return out;
}

export function storedArchivePath(nodeStore: string, sha256: string): string {
  return join(nodeStore, `${sha256}.zip`);
}

/** A cached archive, verified; a corrupted copy is dropped (and reported as absent). */
export async function readStoredArchive(nodeStore: string, sha256: string): Promise<Uint8Array | null> {
  const path = storedArchivePath(nodeStore, sha256);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  if (sha256Hex(bytes) === sha256) return bytes;
  await Deno.remove(path).catch(() => {});
  return null;
}

/** Puts an archive in the store under its sha256, which the caller has just computed (idempotent). */
async function storeArchive(nodeStore: string, sha: string, bytes: Uint8Array): Promise<void> {
  const path = storedArchivePath(nodeStore, sha);
  try {
    await Deno.stat(path);
  } catch {
    await writeFileAtomic(path, bytes);
  }
}

/** Downloads an archive into memory (node archives are small), refusing anything above the size limit. */
export async function downloadArchive(
  url: string,
  label: string,
  maxBytes = DEFAULT_LIMITS.maxEntryBytes,
): Promise<Uint8Array> {
  const res = await httpFetch(url, { what: `downloading ${label}`, timeoutMs: 120_000 });
  if (!res.ok) {
    await res.body?.cancel();
    throw new CdError("ARCHIVE_DOWNLOAD_FAILED", `downloading ${label} failed: HTTP ${res.status} (${url})`, {
      hint: res.status === 404
        ? "the archive is gone from the server; pick another version"
        : "try again later",
    });
  }
  return await readBodyCapped(
    res,
    maxBytes,
    () => unsafe(label, `download is larger than ${maxBytes} bytes`),
  );
}

/**
 * The archive of a node version: from the store when its sha256 is known and cached (offline), else
 * downloaded, checked against the expected sha256 when there is one, and stored.
 */
export async function fetchArchive(
  nodeStore: string,
  opts: { url?: string | null; sha256?: string; label: string },
): Promise<{ bytes: Uint8Array; sha256: string; cached: boolean }> {
  if (opts.sha256) {
    const cached = await readStoredArchive(nodeStore, opts.sha256);
    if (cached) return { bytes: cached, sha256: opts.sha256, cached: true };
  }
  if (!opts.url) {
    throw new CdError("ARCHIVE_UNAVAILABLE", `${opts.label}: not in the cache and no download URL known`, {
      hint: "connect to the registry (COMFYDOCK_REGISTRY_URL) so the archive can be downloaded",
    });
  }
  const bytes = await downloadArchive(opts.url, opts.label);
  const sha = sha256Hex(bytes);
  if (opts.sha256 && sha !== opts.sha256) {
    throw new CdError(
      "ARCHIVE_HASH_MISMATCH",
      `${opts.label}: the downloaded archive has sha256 ${sha}, but .cec/pyproject.toml pins ${opts.sha256}`,
      {
        hint: "the published archive changed since it was pinned; check it, then re-pin with " +
          "'comfydock node update ID --version V'",
      },
    );
  }
  // Validate before caching: a truncated download must not become the cached truth.
  readZipEntries(bytes, opts.label);
  await storeArchive(nodeStore, sha, bytes);
  return { bytes, sha256: sha, cached: false };
}
