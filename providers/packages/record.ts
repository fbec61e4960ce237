/**
 * Installed files checked against each distribution's `RECORD` (the wheel spec's list of every file an
 * installer wrote, with its sha256 and size). Listing `*.dist-info` only says what was installed; a file
 * deleted by another package's uninstall (the OpenCV family shares `cv2/`: removing one deletes the module
 * for all) or overwritten by hand is only seen here.
 *
 * - Every plan: existence and size of every recorded file (one lstat each, no reads).
 * - `deep`: also the sha256 of every file's content (what `status --deep` / `plan --deep` ask for).
 * - A path claimed by several distributions (shared files) is fine when it matches ANY of them: the one
 *   installed last wins, and that is what the venv looks like after a correct install.
 * - Paths are relative to site-packages and may climb (`../../../bin/tool` for scripts). They are resolved
 *   lexically and must stay inside the venv; one that does not is never read or stat'ed (RECORD is data
 *   from a downloaded wheel, and this is a read-only path).
 * - Byte-code caches (`*.pyc`) are not checked: installers list them without a hash and Python rewrites
 *   them at will. RECORD's own line has no hash either.
 */
import { createHash } from "node:crypto";
import { dirname, isAbsolute, join, resolve, sep } from "node:path";
import { writeFileAtomic } from "../../lib/fsx.ts";
import { isWithin } from "../../lib/safe_path.ts";
import { normalizeName } from "./lockfile.ts";

export interface RecordEntry {
  /** As written in RECORD: relative to site-packages, '/'-separated. */
  path: string;
  /** urlsafe-base64 sha256 without padding (the RECORD format), or null when not recorded. */
  sha256: string | null;
  size: number | null;
}

/** What is wrong with one distribution's files (paths as in its RECORD, at most MAX_FILES listed). */
export type DistDamage = {
  missing: number;
  changed: number;
  /** The first few missing / changed files. */
  missingFiles: string[];
  changedFiles: string[];
  /** `RECORD` itself is gone: nothing about the files can be checked. */
  noRecord: boolean;
};

export interface VerifyResult {
  /** normalised distribution name -> damage; absent when every file is in place. */
  damaged: Record<string, DistDamage>;
  /** Top-level module (first path segment) -> distributions that install the same files there (>= 2). */
  shared: Record<string, string[]>;
  /** Files checked (for benchmarks and progress). */
  files: number;
  /** RECORD lines naming a path outside the venv, never followed. */
  outside: number;
}

const MAX_FILES = 3;

/** Parses RECORD (CSV: path,hash,size; a path with a comma or quote is quoted). */
export function parseRecord(text: string): RecordEntry[] {
  const out: RecordEntry[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (line === "") continue;
    const cols = splitCsv(line);
    const path = cols[0];
    if (!path) continue;
    const hash = cols[1] ?? "";
    const size = cols[2] ?? "";
    out.push({
      path,
      sha256: hash.startsWith("sha256=") ? hash.slice(7) : null,
      size: /^\d+$/.test(size) ? Number(size) : null,
    });
  }
  return out;
}

function splitCsv(line: string): string[] {
  if (!line.includes('"')) return line.split(",");
  const cols: string[] = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      cols.push(cur);
      cur = "";
    } else cur += c;
  }
  cols.push(cur);
  return cols;
}

/** urlsafe base64 without padding, as RECORD writes sha256 digests. */
function recordDigest(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("base64url");
}

/** Files above this size are hashed in chunks instead of read whole. */
const WHOLE_READ_LIMIT = 8 * 1024 * 1024;

async function fileDigest(path: string): Promise<string> {
  const info = await Deno.stat(path);
  if (info.size <= WHOLE_READ_LIMIT) return recordDigest(await Deno.readFile(path));
  const h = createHash("sha256");
  using f = await Deno.open(path, { read: true });
  for await (const chunk of f.readable) h.update(chunk);
  return h.digest("base64url");
}

function checked(entry: RecordEntry): boolean {
  return (entry.sha256 !== null || entry.size !== null) && !entry.path.endsWith(".pyc");
}

interface Claim {
  dist: string;
  entry: RecordEntry;
}

/**
 * Checks every distribution in `sitePackages` (real paths, inside `venvRoot`) against its RECORD.
 * `distInfoDirs`: the `*.dist-info` names per site-packages dir with their normalised distribution name
 * (from METADATA), so names agree with the rest of the provider.
 */
export async function verifyRecords(
  venvRoot: string,
  dists: DistInfoDir[],
  opts: { deep?: boolean } = {},
): Promise<VerifyResult> {
  return (await check(venvRoot, dists, opts)).result;
}

export interface DistInfoDir {
  sitePackages: string;
  /** `<name>-<version>.dist-info` */
  dir: string;
  /** Normalised distribution name (from METADATA). */
  name: string;
}

async function check(
  venvRoot: string,
  dists: DistInfoDir[],
  opts: { deep?: boolean },
): Promise<{ result: VerifyResult; dirs: Set<string> }> {
  const root = resolve(venvRoot);
  const damaged: Record<string, DistDamage> = {};
  const hurt = (dist: string, kind: "missing" | "changed", path: string) => {
    const d = damaged[dist] ??= {
      missing: 0,
      changed: 0,
      missingFiles: [],
      changedFiles: [],
      noRecord: false,
    };
    d[kind]++;
    const files = kind === "missing" ? d.missingFiles : d.changedFiles;
    if (files.length < MAX_FILES) files.push(path);
  };
  const claims = new Map<string, Claim[]>();
  let outside = 0;
  const texts = await Promise.all(
    dists.map((d) => Deno.readTextFile(join(d.sitePackages, d.dir, "RECORD")).catch(() => null)),
  );
  dists.forEach((d, i) => {
    const text = texts[i];
    if (text === null) {
      damaged[d.name] = { missing: 0, changed: 0, missingFiles: [], changedFiles: [], noRecord: true };
      return;
    }
    for (const entry of parseRecord(text)) {
      if (!checked(entry)) continue;
      // Only a climbing path (scripts: `../../../bin/x`) needs normalising and the inside-the-venv proof.
      const abs = entry.path.includes("..") || isAbsolute(entry.path)
        ? resolve(d.sitePackages, entry.path)
        : `${d.sitePackages}${sep}${entry.path}`;
      if (abs !== `${d.sitePackages}${sep}${entry.path}` && !isWithin(root, abs)) {
        outside++;
        continue;
      }
      const list = claims.get(abs);
      if (list) list.push({ dist: d.name, entry });
      else claims.set(abs, [{ dist: d.name, entry }]);
    }
  });

  // Sizes first, for every file: lstat is synchronous here because ~50k async stats cost ~4x more in
  // promise overhead than the system calls themselves (bench/packages.ts).
  const toHash: [string, Claim[]][] = [];
  const dirs = new Set<string>();
  for (const [abs, list] of claims) {
    dirs.add(dirname(abs));
    let size: number;
    try {
      const st = Deno.lstatSync(abs);
      // A link (uv's symlink link mode) stands for its target's size.
      size = st.isSymlink ? Deno.statSync(abs).size : st.size;
    } catch {
      for (const c of list) hurt(c.dist, "missing", c.entry.path);
      continue;
    }
    if (!list.some((c) => c.entry.size === null || c.entry.size === size)) {
      for (const c of list) hurt(c.dist, "changed", c.entry.path);
    } else if (opts.deep && list.some((c) => c.entry.sha256 !== null)) toHash.push([abs, list]);
  }
  // Reading is what costs here (many small files): a few reads in flight at a time.
  const digests = new Map<string, string | null>();
  const queue = [...toHash];
  await Promise.all(Array.from({ length: HASH_CONCURRENCY }, async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      digests.set(job[0], await fileDigest(job[0]).catch(() => null));
    }
  }));
  for (const [abs, list] of toHash) {
    const digest = digests.get(abs);
    if (!list.some((c) => c.entry.sha256 === null || c.entry.sha256 === digest)) {
      for (const c of list) hurt(c.dist, "changed", c.entry.path);
    }
  }

  const shared: Record<string, Set<string>> = {};
  for (const list of claims.values()) {
    const names = new Set(list.map((c) => c.dist));
    if (names.size < 2) continue;
    const top = list[0].entry.path.split("/")[0];
    const set = shared[top] ??= new Set();
    for (const n of names) set.add(n);
  }
  const result = {
    damaged: Object.fromEntries(Object.entries(damaged).sort(([a], [b]) => a < b ? -1 : 1)),
    shared: Object.fromEntries(
      Object.entries(shared).sort(([a], [b]) => a < b ? -1 : 1).map(([k, v]) => [k, [...v].sort()]),
    ),
    files: claims.size,
    outside,
  };
  return { result, dirs };
}

const HASH_CONCURRENCY = 8;

/**
 * What the last full check saw, to skip the next one when nothing can have changed: every RECORD
 * (size, mtime) and every directory holding a recorded file (inode, mtime, ctime). A file can only
 * appear, disappear or be renamed by changing its directory, so with every directory as it was the
 * existence of every file is known; installers (uv, pip) replace files by rename or leave a file that
 * matches their own RECORD. What this does not see is a file edited in place by hand; `deep` always
 * checks every file (and hashes it).
 */
interface Snapshot {
  version: 1;
  venv: string;
  takenAt: number;
  records: Record<string, string>;
  dirs: Record<string, string>;
  result: VerifyResult;
}

function signature(st: Deno.FileInfo): string {
  return `${st.ino}:${st.size}:${st.mtime?.getTime()}:${st.ctime?.getTime()}`;
}

/** Timestamps are coarse (ctime in seconds here): a directory changed this close to a check is re-checked. */
const RACY_MS = 2000;

function racy(st: Deno.FileInfo, takenAt: number): boolean {
  return (st.mtime?.getTime() ?? Infinity) >= takenAt - RACY_MS ||
    (st.ctime?.getTime() ?? Infinity) >= takenAt - RACY_MS;
}

function unchanged(paths: Record<string, string>, takenAt: number): boolean {
  for (const [path, sig] of Object.entries(paths)) {
    let st: Deno.FileInfo;
    try {
      st = Deno.statSync(path);
    } catch {
      return false;
    }
    if (signature(st) !== sig || racy(st, takenAt)) return false;
  }
  return true;
}

/**
 * verifyRecords for every plan: the full check when anything may have changed since the last one (a
 * RECORD or a directory of recorded files differs, or no snapshot), else the last result from
 * `snapshotFile`. `deep` never uses or writes the snapshot.
 */
export async function verifyRecordsCached(
  venvRoot: string,
  dists: DistInfoDir[],
  snapshotFile: string,
  opts: { deep?: boolean } = {},
): Promise<VerifyResult & { reused: boolean }> {
  const recordFiles = dists.map((d) => join(d.sitePackages, d.dir, "RECORD")).sort();
  if (!opts.deep) {
    const snap = await Deno.readTextFile(snapshotFile).then((t) => JSON.parse(t) as Snapshot).catch(() =>
      null
    );
    if (
      snap?.version === 1 && snap.venv === venvRoot &&
      JSON.stringify(Object.keys(snap.records).sort()) === JSON.stringify(recordFiles) &&
      unchanged(snap.records, snap.takenAt) && unchanged(snap.dirs, snap.takenAt)
    ) {
      return { ...snap.result, reused: true };
    }
  }
  const takenAt = Date.now();
  const statAll = (paths: Iterable<string>) => {
    const out: Record<string, string> = {};
    for (const p of paths) {
      try {
        out[p] = signature(Deno.statSync(p));
      } catch {
        // gone: not part of the snapshot, so the next check is a full one
      }
    }
    return out;
  };
  // Signatures before the check: a change during it makes them stale, never the result trusted.
  const records = statAll(recordFiles);
  const { result, dirs } = await check(venvRoot, dists, opts);
  if (!opts.deep) {
    const snap: Snapshot = { version: 1, venv: venvRoot, takenAt, records, dirs: statAll(dirs), result };
    await writeFileAtomic(snapshotFile, JSON.stringify(snap)).catch(() => {});
  }
  return { ...result, reused: false };
}

/**
 * Distributions known to install the same top-level module, so a plan can warn before they are installed
 * (RECORDs only tell once they are). The OpenCV wheels all ship `cv2/`.
 */
export const KNOWN_SHARED_MODULES: Record<string, string[]> = {
  cv2: [
    "opencv-python",
    "opencv-contrib-python",
    "opencv-python-headless",
    "opencv-contrib-python-headless",
  ].map(normalizeName),
};
