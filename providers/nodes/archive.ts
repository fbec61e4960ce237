/**
 * Node archives: safe zip extraction and the content-addressed archive store
 * (`comfydock_cache/custom_nodes/store/<sha256>.zip`).
 *
 * The zip's central directory is read here (not through a generic unzip) because safety needs what generic
 * unzippers hide: the external attributes (symlink entries are refused: a link can point anywhere), the
 * declared sizes (checked against NODE_ARCHIVE_LIMITS, including the expansion ratio, before anything is
 * inflated, so a zip bomb costs nothing) and the CRC (a truncated or corrupted download is an error, not a
 * half-written node). Entry names go through the path door (lib/safe_path.ts `entryProblem`): no `..`, no
 * absolute paths, and no `.git` folder (git would run what its config names). A file that is also a
 * folder of another entry is refused here too, so `node add` fails, not a later apply.
 *
 * Extraction streams: an entry is inflated in bounded pieces straight to disk and may not produce more than
 * it declared (a lying header is caught after one piece), so memory stays small whatever the archive.
 * The archive's own `.comfydock.json` (our marker) is ignored: the real one is written after extraction.
 */
import { crc32, createInflateRaw } from "node:zlib";
import { Readable } from "node:stream";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { inflateSync } from "fflate";
import { type ArchiveLimits, expansionProblem, NODE_ARCHIVE_LIMITS } from "../../lib/archive_limits.ts";
import { CdError, errorMessage } from "../../lib/errors.ts";
import { removeIfExists, sha256Hex, writeFileAtomic } from "../../lib/fsx.ts";
import { entryProblem } from "../../lib/safe_path.ts";
import { DEFAULT_NET, fetchBytes, type NetSettings } from "../../lib/http.ts";

/** Our marker file (observe.ts MARKER); a pack that ships one gets it replaced, so it is not extracted. */
const MARKER_NAME = ".comfydock.json";
/** Entries up to this size are inflated in one call; larger ones stream in pieces. */
const WHOLE_ENTRY_BYTES = 1024 * 1024;
/**
 * Streaming: compressed pieces in, bounded pieces out (node:zlib with backpressure; measured on a 1.5 GB
 * bomb extracted with the ratio rule off: ~125 MB peak RSS at ~390 MB/s, where DecompressionStream
 * peaked at 300-500 MB and fflate's streaming Inflate ran at ~50 MB/s).
 */
const PIECE_BYTES = 16 * 1024;
const OUT_PIECE_BYTES = 256 * 1024;

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
    hint: "the archive was not extracted; report it to the node's author or the registry",
  });
}

function tooBig(label: string, message: string): CdError {
  return new CdError("ARCHIVE_TOO_LARGE", `${label}: ${message}`, {
    hint: "the archive was not extracted; a real node pack is far smaller. Report it to the node's author",
  });
}

/** A zip entry name made safe, or an error naming the entry and the rule it breaks. */
export function safeEntryPath(name: string, label: string): string {
  // Some zip tools write '\\' and './'; they mean what '/' and nothing mean.
  const n = name.replaceAll("\\", "/");
  const path = n.split("/").filter((p) => p !== "" && p !== ".").join("/");
  const why = entryProblem(n.startsWith("/") ? n : path);
  if (why) throw unsafe(label, `entry ${JSON.stringify(name)} ${why}`);
  return path;
}

/**
 * Reads the central directory; checks names, links, declared sizes, the expansion ratio and that no file
 * is also a folder. Nothing is inflated yet.
 */
export function readZipEntries(
  bytes: Uint8Array,
  label: string,
  limits: ArchiveLimits = NODE_ARCHIVE_LIMITS,
): ZipEntry[] {
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
  if (count > limits.maxEntries) throw tooBig(label, `${count} entries (limit ${limits.maxEntries})`);
  const decoder = new TextDecoder();
  const entries: ZipEntry[] = [];
  const files = new Set<string>();
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
      throw unsafe(label, `entry '${rawName}' is a symbolic link (a link can point anywhere)`);
    }
    if (flags & 1) throw zipError(label, `entry '${rawName}' is encrypted`);
    const isDir = rawName.endsWith("/") || rawName.endsWith("\\");
    const path = safeEntryPath(rawName, label);
    if (!path || (!isDir && path === MARKER_NAME)) continue;
    if (!isDir && method !== 0 && method !== 8) {
      throw zipError(label, `entry '${rawName}' uses compression method ${method} (only stored and deflate)`);
    }
    if (size > limits.maxFileBytes) {
      throw tooBig(label, `entry '${rawName}' is ${size} bytes (limit ${limits.maxFileBytes})`);
    }
    total += size;
    if (total > limits.maxTotalBytes) {
      throw tooBig(label, `the archive expands to more than ${limits.maxTotalBytes} bytes`);
    }
    if (!isDir) {
      if (files.has(path)) throw unsafe(label, `entry '${path}' appears twice`);
      files.add(path);
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
  const ratio = expansionProblem(total, bytes.length, limits);
  if (ratio) throw tooBig(label, `the archive ${ratio}`);
  for (const e of entries) {
    // `a` beside `a/b.py`: one of them could not be created.
    for (let slash = e.path.indexOf("/"); slash > 0; slash = e.path.indexOf("/", slash + 1)) {
      const parent = e.path.slice(0, slash);
      if (files.has(parent)) {
        throw unsafe(label, `'${parent}' is a file and also the folder of '${e.path}'`);
      }
    }
  }
  return entries;
}

/**
 * Inflates one entry into `sink`, piece by piece: never more than the declared size (a lying header is
 * refused), and the CRC must match (a damaged download is refused).
 */
async function inflateEntry(
  bytes: Uint8Array,
  e: ZipEntry,
  label: string,
  sink: (piece: Uint8Array) => void | Promise<void>,
): Promise<void> {
  const raw = bytes.subarray(e.dataOffset, e.dataOffset + e.compressedSize);
  let produced = 0;
  let crc = 0;
  const take = async (piece: Uint8Array) => {
    produced += piece.length;
    if (produced > e.size) {
      throw unsafe(label, `entry '${e.path}' inflates past the ${e.size} bytes its header declares`);
    }
    crc = crc32(piece, crc);
    await sink(piece);
  };
  try {
    if (e.method === 0) await take(raw);
    else if (e.size <= WHOLE_ENTRY_BYTES) {
      // One bounded buffer of the declared size (+1 to see a lie): fflate stops when it is full.
      await take(inflateSync(raw, { out: new Uint8Array(e.size + 1) }));
    } else {
      const pieces = Readable.from((function* () {
        for (let at = 0; at < raw.length; at += PIECE_BYTES) yield raw.subarray(at, at + PIECE_BYTES);
      })());
      const out = pieces.pipe(createInflateRaw({ chunkSize: OUT_PIECE_BYTES })) as AsyncIterable<Uint8Array>;
      for await (const piece of out) await take(piece);
    }
  } catch (err) {
    if (err instanceof CdError) throw err;
    throw zipError(label, `entry '${e.path}' does not decompress (${errorMessage(err)})`);
  }
  if (produced !== e.size || crc >>> 0 !== e.crc) {
    throw zipError(label, `entry '${e.path}' is corrupted (checksum mismatch)`);
  }
}

/**
 * Extracts a zip into `dest` (a fresh staging dir, removed again on any error). Returns the manifest of
 * extracted files (relative path -> sha256), which the marker file keeps to detect hand edits later.
 */
export async function extractZip(
  bytes: Uint8Array,
  dest: string,
  label: string,
  limits: ArchiveLimits = NODE_ARCHIVE_LIMITS,
): Promise<Record<string, string>> {
  const entries = readZipEntries(bytes, label, limits);
  const manifest: Record<string, string> = {};
  try {
    await Deno.mkdir(dest, { recursive: true });
    for (const e of entries) if (e.isDir) await Deno.mkdir(join(dest, e.path), { recursive: true });
    for (const e of entries) {
      if (e.isDir) continue;
      const slash = e.path.lastIndexOf("/");
      if (slash > 0) await Deno.mkdir(join(dest, e.path.slice(0, slash)), { recursive: true });
      const hash = createHash("sha256");
      using f = await Deno.open(join(dest, e.path), {
        createNew: true,
        write: true,
        mode: e.mode !== null && e.mode & 0o111 ? 0o755 : 0o644,
      });
      await inflateEntry(bytes, e, label, async (piece) => {
        hash.update(piece);
        for (let off = 0; off < piece.length;) off += await f.write(piece.subarray(off));
      });
      manifest[e.path] = hash.digest("hex");
    }
  } catch (err) {
    await removeIfExists(dest);
    throw err;
  }
  return Object.fromEntries(Object.entries(manifest).sort(([a], [b]) => a.localeCompare(b)));
}

/** Reads some small files of a zip without extracting it (requirements, pyproject, install.py). */
export async function readZipFiles(
  bytes: Uint8Array,
  label: string,
  wanted: (path: string) => boolean,
): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const e of readZipEntries(bytes, label)) {
    if (e.isDir || !wanted(e.path)) continue;
    if (e.size > WHOLE_ENTRY_BYTES) throw tooBig(label, `'${e.path}' is ${e.size} bytes; it is read as text`);
    // Up to WHOLE_ENTRY_BYTES an entry comes out as one piece.
    let data: Uint8Array = new Uint8Array(0);
    await inflateEntry(bytes, e, label, (piece) => void (data = piece));
    out.set(e.path, data);
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
  net: NetSettings = DEFAULT_NET,
  maxBytes = NODE_ARCHIVE_LIMITS.maxFileBytes,
): Promise<Uint8Array> {
  return await fetchBytes(url, {
    what: `downloading ${label}`,
    net,
    maxBytes,
    failed: (status) =>
      new CdError("ARCHIVE_DOWNLOAD_FAILED", `downloading ${label} failed: HTTP ${status} (${url})`, {
        hint: status === 404
          ? "the archive is gone from the server; pick another version"
          : "try again later",
      }),
    limited: (e) =>
      e.kind === "too-large" ? tooBig(label, `the download is larger than ${maxBytes} bytes`) : new CdError(
        "ARCHIVE_DOWNLOAD_FAILED",
        `downloading ${label}: the server is too slow (${e.message})`,
        {
          hint:
            "try again later (COMFYDOCK_DOWNLOAD_MIN_RATE / COMFYDOCK_DOWNLOAD_STALL_SECONDS set the limit)",
        },
      ),
  });
}

/**
 * The archive of a node version: from the store when its sha256 is known and cached (offline), else
 * downloaded, checked against the expected sha256 when there is one, and stored.
 */
export async function fetchArchive(
  nodeStore: string,
  opts: { url?: string | null; sha256?: string; label: string; net?: NetSettings },
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
  const bytes = await downloadArchive(opts.url, opts.label, opts.net);
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
