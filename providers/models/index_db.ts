/**
 * The model index: `.metadata/model_index.db` (node:sqlite). The seed's `models` + `model_hashes` tables
 * (one row per distinct content, any number of hash types: 'quick', 'sha256', 'blake3'), plus
 * `model_files`: every path where that content was seen, with the stat (size, mtime, inode, device) it had
 * when hashed. A rescan compares stats and reads only files whose stat changed; a file's own `sha256`/
 * `blake3` columns say that *this* file was fully hashed at *this* stat, which is what linking relies on.
 *
 * The index is a cache of what is on disk: a corrupt or unreadable database is moved aside and rebuilt
 * by a rescan (`recovered` says why), never trusted.
 */
import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { basename, dirname, join, resolve } from "node:path";
import { CdError } from "../../lib/errors.ts";
import { type FullHashType, hashFiles, quickHash } from "./hash.ts";
import { categoryOf, statFile, type WalkedFile, walkModelFiles } from "./walk.ts";

const SCHEMA_VERSION = "1";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT,
  size INTEGER,
  local_path TEXT,
  original_name TEXT,
  last_seen TIMESTAMP,
  metadata JSON
);
CREATE TABLE IF NOT EXISTS model_hashes (
  model_id INTEGER NOT NULL,
  hash_type TEXT NOT NULL,
  hash_value TEXT NOT NULL,
  PRIMARY KEY (hash_type, hash_value),
  FOREIGN KEY (model_id) REFERENCES models(id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS model_files (
  path TEXT PRIMARY KEY,
  model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
  filename TEXT NOT NULL,
  category TEXT,
  size INTEGER NOT NULL,
  mtime_ms REAL,
  inode INTEGER,
  device INTEGER,
  quick TEXT NOT NULL,
  sha256 TEXT,
  blake3 TEXT,
  last_seen TIMESTAMP
);
CREATE INDEX IF NOT EXISTS idx_models_name ON models(name);
CREATE INDEX IF NOT EXISTS idx_models_path ON models(local_path);
CREATE INDEX IF NOT EXISTS idx_hash_value ON model_hashes(hash_value);
CREATE INDEX IF NOT EXISTS idx_files_model ON model_files(model_id);
CREATE INDEX IF NOT EXISTS idx_files_filename ON model_files(filename);
`;

export type HashType = "quick" | FullHashType;

export interface ModelFile {
  path: string;
  filename: string;
  category: string | null;
  size: number;
  mtimeMs: number | null;
  inode: number | null;
  device: number | null;
  quick: string;
  /** Set when this file (at this stat) was fully hashed. */
  sha256: string | null;
  blake3: string | null;
}

export interface ModelInfo {
  id: number;
  name: string | null;
  size: number;
  hashes: Partial<Record<HashType, string>>;
  files: ModelFile[];
  metadata: Record<string, unknown>;
}

export interface ScanProgress {
  phase: "walk" | "quick" | "full";
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

export interface ScanOptions {
  /** Compute full hashes now (sha256, plus any in `hashTypes`), not only the quick identity. */
  full?: boolean;
  hashTypes?: FullHashType[];
  onProgress?: (p: ScanProgress) => void;
}

export interface ScanResult {
  root: string;
  files: number;
  unchanged: number;
  hashed: number;
  removed: number;
  bytesHashed: number;
  warnings: string[];
}

interface FileRow {
  path: string;
  model_id: number;
  filename: string;
  category: string | null;
  size: number;
  mtime_ms: number | null;
  inode: number | null;
  device: number | null;
  quick: string;
  sha256: string | null;
  blake3: string | null;
}

function toFile(r: FileRow): ModelFile {
  return {
    path: r.path,
    filename: r.filename,
    category: r.category,
    size: r.size,
    mtimeMs: r.mtime_ms,
    inode: r.inode,
    device: r.device,
    quick: r.quick,
    sha256: r.sha256,
    blake3: r.blake3,
  };
}

/** True when the file on disk still has the stat it had when it was indexed. */
export function sameStat(
  row: Pick<ModelFile, "size" | "mtimeMs" | "inode" | "device">,
  st: WalkedFile,
): boolean {
  return row.size === st.size && row.mtimeMs === st.mtimeMs && row.inode === st.inode &&
    row.device === st.device;
}

/** Splits `sha256:abc`, `blake3:abc`, or a bare 64-hex (sha256) into type and value. */
function parseHashRef(ref: string): { type: HashType | null; value: string } {
  const m = /^(sha256|blake3|quick):(.+)$/i.exec(ref.trim());
  if (m) return { type: m[1].toLowerCase() as HashType, value: m[2].toLowerCase() };
  return { type: null, value: ref.trim().toLowerCase() };
}

export class ModelIndex {
  readonly path: string;
  /** Why the database was recreated on open (corrupt, wrong schema), or null. */
  readonly recovered: string | null;
  readonly #db: DatabaseSync;

  private constructor(path: string, db: DatabaseSync, recovered: string | null) {
    this.path = path;
    this.#db = db;
    this.recovered = recovered;
  }

  /** Opens (creating if needed) the index; a corrupt file is moved aside and a fresh one created. */
  static open(path: string): ModelIndex {
    Deno.mkdirSync(dirname(path), { recursive: true });
    try {
      return new ModelIndex(path, ModelIndex.#init(path), null);
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      const aside = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, "-")}`;
      try {
        Deno.renameSync(path, aside);
      } catch { /* it may not exist at all */ }
      for (const extra of ["-wal", "-shm"]) {
        try {
          Deno.removeSync(path + extra);
        } catch { /* absent */ }
      }
      try {
        return new ModelIndex(path, ModelIndex.#init(path), `${reason} (old file kept as ${aside})`);
      } catch (e2) {
        throw new CdError("MODEL_INDEX_UNUSABLE", `cannot open the model index ${path}: ${e2}`, {
          hint: "check that the workspace's .metadata folder is writable",
          cause: e2,
        });
      }
    }
  }

  static #init(path: string): DatabaseSync {
    const db = new DatabaseSync(path);
    try {
      db.exec("PRAGMA busy_timeout = 10000");
      const check = db.prepare("PRAGMA quick_check").get() as Record<string, unknown> | undefined;
      const verdict = check ? String(Object.values(check)[0]) : "ok";
      if (verdict !== "ok") throw new Error(`integrity check failed: ${verdict}`);
      db.exec("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;");
      db.exec(SCHEMA);
      const v = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as
        | { value: string }
        | undefined;
      if (v && v.value !== SCHEMA_VERSION) throw new Error(`unknown schema version ${v.value}`);
      if (!v) db.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', ?)").run(SCHEMA_VERSION);
      return db;
    } catch (e) {
      db.close();
      throw e;
    }
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #tx<T>(fn: () => T): T {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const out = fn();
      this.#db.exec("COMMIT");
      return out;
    } catch (e) {
      this.#db.exec("ROLLBACK");
      throw e;
    }
  }

  #all<T>(sql: string, ...params: SQLInputValue[]): T[] {
    return this.#db.prepare(sql).all(...params) as T[];
  }

  #get<T>(sql: string, ...params: SQLInputValue[]): T | undefined {
    return this.#db.prepare(sql).get(...params) as T | undefined;
  }

  /**
   * Folders scanned so far. Kept next to the database, not in it, so that a rebuild after corruption still
   * knows which folders the user pointed ComfyDock at.
   */
  roots(): string[] {
    try {
      const data = JSON.parse(Deno.readTextFileSync(this.#rootsFile()));
      return Array.isArray(data) ? data.filter((x): x is string => typeof x === "string") : [];
    } catch {
      return [];
    }
  }

  #rootsFile(): string {
    return join(dirname(this.path), "model_roots.json");
  }

  #addRoot(root: string): void {
    const roots = new Set(this.roots());
    if (roots.has(root)) return;
    roots.add(root);
    const tmp = `${this.#rootsFile()}.tmp-${Deno.pid}`;
    Deno.writeTextFileSync(tmp, JSON.stringify([...roots].sort(), null, 2) + "\n");
    Deno.renameSync(tmp, this.#rootsFile());
  }

  /**
   * Indexes every model file under `root`. Files whose stat is unchanged cost a stat; new or changed files
   * get a quick identity hash (and full hashes with `full`, on worker threads); vanished files are dropped.
   */
  async scanDirectory(rootIn: string, opts: ScanOptions = {}): Promise<ScanResult> {
    const root = resolve(rootIn);
    let rootStat: Deno.FileInfo;
    try {
      rootStat = await Deno.stat(root);
    } catch (e) {
      throw new CdError("MODEL_SCAN_PATH", `cannot scan ${root}: ${e instanceof Error ? e.message : e}`, {
        hint: "pass an existing folder to 'comfydock model scan'",
      });
    }
    if (!rootStat.isDirectory) {
      throw new CdError("MODEL_SCAN_PATH", `${root} is not a folder`, {
        hint: "to index one file use 'comfydock model add PATH'",
      });
    }
    const { files, warnings } = await walkModelFiles(root);
    const prefix = root.endsWith("/") || root.endsWith("\\")
      ? root
      : root + (root.includes("\\") ? "\\" : "/");
    const known = new Map<string, FileRow>();
    for (
      const r of this.#all<FileRow>(
        "SELECT * FROM model_files WHERE substr(path, 1, ?) = ?",
        prefix.length,
        prefix,
      )
    ) {
      known.set(r.path, r);
    }
    const fullTypes: FullHashType[] = ["sha256", ...(opts.hashTypes ?? []).filter((t) => t !== "sha256")];
    const changed: WalkedFile[] = [];
    const needFull: WalkedFile[] = [];
    let unchanged = 0;
    for (const f of files) {
      const row = known.get(f.path);
      if (row && sameStat(toFile(row), f)) {
        unchanged++;
        if (opts.full && fullTypes.some((t) => !row[t])) needFull.push(f);
      } else {
        changed.push(f);
        if (opts.full) needFull.push(f);
      }
    }
    const bytesTotal = changed.reduce((s, f) => s + Math.min(f.size, 3 << 20), 0) +
      needFull.reduce((s, f) => s + f.size, 0);
    let bytesDone = 0;
    let filesDone = 0;
    const progress = (phase: ScanProgress["phase"]) =>
      opts.onProgress?.({
        phase,
        filesDone,
        filesTotal: changed.length + needFull.length,
        bytesDone,
        bytesTotal,
      });

    const quick = new Map<string, string>();
    for (const f of changed) {
      try {
        quick.set(f.path, (await quickHash(f.path)).quick);
      } catch (e) {
        warnings.push(`skipped unreadable file ${f.path}: ${e instanceof Error ? e.message : e}`);
      }
      bytesDone += Math.min(f.size, 3 << 20);
      filesDone++;
      progress("quick");
    }
    const full = new Map<string, { sha256?: string; blake3?: string }>();
    const toHash = needFull.filter((f) => quick.has(f.path) || known.has(f.path));
    if (toHash.length) {
      const outcomes = await hashFiles(
        toHash.map((f) => ({ path: f.path, types: fullTypes, size: f.size })),
        {
          onProgress: (d) => {
            bytesDone += d;
            progress("full");
          },
        },
      );
      for (const o of outcomes) {
        filesDone++;
        if (o.ok) full.set(o.path, o.hashes);
        else {
          warnings.push(`skipped unreadable file ${o.path}: ${o.error}`);
          quick.delete(o.path);
        }
      }
    }

    const now = Date.now();
    let removed = 0;
    this.#tx(() => {
      for (const f of files) {
        const row = known.get(f.path);
        const q = quick.get(f.path) ?? (row && sameStat(toFile(row), f) ? row.quick : undefined);
        if (q === undefined) continue;
        const h = full.get(f.path);
        const keep = row && sameStat(toFile(row), f);
        if (keep && !h) continue;
        this.#upsertFile(
          f,
          categoryOf(root, f.path),
          q,
          {
            sha256: h?.sha256 ?? (keep ? row.sha256 ?? undefined : undefined),
            blake3: h?.blake3 ?? (keep ? row.blake3 ?? undefined : undefined),
          },
          now,
          keep ? row.model_id : undefined,
        );
      }
      const present = new Set(files.map((f) => f.path));
      const del = this.#db.prepare("DELETE FROM model_files WHERE path = ?");
      for (const path of known.keys()) {
        if (!present.has(path)) {
          del.run(path);
          removed++;
        }
      }
      this.#dropOrphans();
      this.#addRoot(root);
    });
    return {
      root,
      files: files.length,
      unchanged,
      hashed: new Set([...changed, ...needFull].map((f) => f.path)).size,
      removed,
      bytesHashed: bytesDone,
      warnings,
    };
  }

  /**
   * Indexes one file (`model add PATH`, a finished download): full hashes of the types asked for, read once.
   * Returns the model it belongs to.
   */
  async registerModel(
    pathIn: string,
    opts: {
      category?: string | null;
      hashTypes?: FullHashType[];
      known?: { sha256?: string; blake3?: string };
    } = {},
  ): Promise<ModelInfo> {
    const path = resolve(pathIn);
    const st = await statFile(path);
    const row = this.#get<FileRow>("SELECT * FROM model_files WHERE path = ?", path);
    const types = [...new Set<FullHashType>(opts.hashTypes ?? ["sha256"])];
    const reuse = row && sameStat(toFile(row), st) ? row : undefined;
    const have: { sha256?: string; blake3?: string } = {
      sha256: opts.known?.sha256 ?? reuse?.sha256 ?? undefined,
      blake3: opts.known?.blake3 ?? reuse?.blake3 ?? undefined,
    };
    const missing = types.filter((t) => !have[t]);
    if (missing.length) {
      const [o] = await hashFiles([{ path, types: missing, size: st.size }]);
      if (!o.ok) {
        throw new CdError("MODEL_UNREADABLE", `cannot read ${path}: ${o.error}`, {
          hint: "check the file's permissions",
        });
      }
      Object.assign(
        have,
        o.hashes.sha256 ? { sha256: o.hashes.sha256 } : {},
        o.hashes.blake3 ? { blake3: o.hashes.blake3 } : {},
      );
    }
    const q = reuse?.quick ?? (await quickHash(path)).quick;
    const category = opts.category !== undefined ? opts.category : categoryOf(dirname(path), path);
    const id = this.#tx(() => {
      const modelId = this.#upsertFile(st, category, q, have, Date.now(), undefined);
      this.#dropOrphans();
      return modelId;
    });
    return this.#modelById(id)!;
  }

  /** Records full hashes computed elsewhere (e.g. while verifying before a link) for a file at a stat. */
  recordFileHashes(
    file: WalkedFile,
    hashes: { sha256?: string; blake3?: string },
    quick: string,
    category: string | null,
  ): ModelInfo {
    const id = this.#tx(() => {
      const modelId = this.#upsertFile(file, category, quick, hashes, Date.now(), undefined);
      this.#dropOrphans();
      return modelId;
    });
    return this.#modelById(id)!;
  }

  /** Drops the index entry of a path (the file is gone or was moved to the trash). */
  forgetFile(path: string): void {
    this.#tx(() => {
      this.#db.prepare("DELETE FROM model_files WHERE path = ?").run(resolve(path));
      this.#dropOrphans();
    });
  }

  #dropOrphans(): void {
    this.#db.exec("DELETE FROM models WHERE id NOT IN (SELECT DISTINCT model_id FROM model_files)");
  }

  /** Finds or creates the model for this content and records the file. Must run inside #tx. */
  #upsertFile(
    f: WalkedFile,
    category: string | null,
    quick: string,
    hashes: { sha256?: string; blake3?: string },
    now: number,
    keepModel: number | undefined,
  ): number {
    let modelId = keepModel;
    const byHash = (type: HashType, value: string | undefined) =>
      value
        ? this.#get<{ model_id: number }>(
          "SELECT model_id FROM model_hashes WHERE hash_type = ? AND hash_value = ?",
          type,
          value,
        )?.model_id
        : undefined;
    if (modelId === undefined || hashes.sha256 || hashes.blake3) {
      const strong = byHash("sha256", hashes.sha256) ?? byHash("blake3", hashes.blake3);
      if (strong !== undefined) modelId = strong;
      else {
        const viaQuick = byHash("quick", quick);
        // Same quick identity but a different full hash: a different file after all (sampled regions equal).
        const conflict = viaQuick !== undefined && (["sha256", "blake3"] as const).some((t) => {
          const theirs = this.#get<{ hash_value: string }>(
            "SELECT hash_value FROM model_hashes WHERE model_id = ? AND hash_type = ?",
            viaQuick,
            t,
          )?.hash_value;
          return theirs !== undefined && hashes[t] !== undefined && theirs !== hashes[t];
        });
        modelId = conflict ? undefined : viaQuick ?? modelId;
      }
    }
    const filename = basename(f.path);
    if (modelId === undefined) {
      const r = this.#db.prepare(
        "INSERT INTO models (name, size, local_path, original_name, last_seen, metadata) VALUES (?, ?, ?, ?, ?, '{}')",
      ).run(filename, f.size, f.path, filename, now);
      modelId = Number(r.lastInsertRowid);
    } else {
      this.#db.prepare("UPDATE models SET last_seen = ? WHERE id = ?").run(now, modelId);
    }
    const addHash = this.#db.prepare(
      "INSERT OR IGNORE INTO model_hashes (model_id, hash_type, hash_value) VALUES (?, ?, ?)",
    );
    addHash.run(modelId, "quick", quick);
    if (hashes.sha256) addHash.run(modelId, "sha256", hashes.sha256);
    if (hashes.blake3) addHash.run(modelId, "blake3", hashes.blake3);
    this.#db.prepare(
      `INSERT INTO model_files (path, model_id, filename, category, size, mtime_ms, inode, device, quick, sha256, blake3, last_seen)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(path) DO UPDATE SET model_id = excluded.model_id, filename = excluded.filename,
         category = excluded.category, size = excluded.size, mtime_ms = excluded.mtime_ms, inode = excluded.inode,
         device = excluded.device, quick = excluded.quick, sha256 = excluded.sha256, blake3 = excluded.blake3,
         last_seen = excluded.last_seen`,
    ).run(
      f.path,
      modelId,
      filename,
      category,
      f.size,
      f.mtimeMs,
      f.inode,
      f.device,
      quick,
      hashes.sha256 ?? null,
      hashes.blake3 ?? null,
      now,
    );
    return modelId;
  }

  #modelById(id: number): ModelInfo | null {
    const m = this.#get<{ id: number; name: string | null; size: number; metadata: string | null }>(
      "SELECT id, name, size, metadata FROM models WHERE id = ?",
      id,
    );
    if (!m) return null;
    const hashes: Partial<Record<HashType, string>> = {};
    for (
      const h of this.#all<{ hash_type: HashType; hash_value: string }>(
        "SELECT hash_type, hash_value FROM model_hashes WHERE model_id = ? ORDER BY hash_type",
        id,
      )
    ) hashes[h.hash_type] = h.hash_value;
    const files = this.#all<FileRow>("SELECT * FROM model_files WHERE model_id = ? ORDER BY path", id).map(
      toFile,
    );
    return { id: m.id, name: m.name, size: m.size, hashes, files, metadata: JSON.parse(m.metadata || "{}") };
  }

  /**
   * The model with this content: `sha256:<hex>`, `blake3:<hex>`, `quick:<id>`, a bare sha256, or a hex
   * prefix of at least 8 digits of a sha256/blake3 hash (unique match only).
   */
  resolveByHash(ref: string): ModelInfo | null {
    const { type, value } = parseHashRef(ref);
    if (!/^[0-9a-f-]{8,}$/.test(value)) return null;
    const rows = type
      ? this.#all<{ model_id: number }>(
        "SELECT model_id FROM model_hashes WHERE hash_type = ? AND substr(hash_value, 1, ?) = ?",
        type,
        value.length,
        value,
      )
      : this.#all<{ model_id: number }>(
        "SELECT DISTINCT model_id FROM model_hashes WHERE hash_type IN ('sha256', 'blake3') AND substr(hash_value, 1, ?) = ?",
        value.length,
        value,
      );
    const ids = [...new Set(rows.map((r) => r.model_id))];
    return ids.length === 1 ? this.#modelById(ids[0]) : null;
  }

  /** Models with a file of this name (case-insensitive), optionally only in one category. */
  resolveByName(name: string, category?: string): ModelInfo[] {
    const rows = category
      ? this.#all<{ model_id: number }>(
        "SELECT DISTINCT model_id FROM model_files WHERE lower(filename) = lower(?) AND category = ?",
        basename(name),
        category,
      )
      : this.#all<{ model_id: number }>(
        "SELECT DISTINCT model_id FROM model_files WHERE lower(filename) = lower(?)",
        basename(name),
      );
    return rows.map((r) => this.#modelById(r.model_id)!).filter(Boolean);
  }

  /** Name substring, hash prefix or category; at most `limit` models. */
  searchModels(query: string, limit = 50): ModelInfo[] {
    const q = query.trim().toLowerCase();
    const like = `%${q.replace(/[\\%_]/g, (c) => "\\" + c)}%`;
    const rows = this.#all<{ model_id: number }>(
      `SELECT DISTINCT model_id FROM (
         SELECT model_id FROM model_files WHERE lower(filename) LIKE ? ESCAPE '\\' OR lower(category) = ?
         UNION SELECT model_id FROM model_hashes WHERE hash_type != 'quick' AND substr(hash_value, 1, ?) = ?
       ) LIMIT ?`,
      like,
      q,
      q.length,
      parseHashRef(q).value,
      limit,
    );
    return rows.map((r) => this.#modelById(r.model_id)!).filter(Boolean);
  }

  /** By model id, hash reference or file path. */
  getModelInfo(identifier: string | number): ModelInfo | null {
    if (typeof identifier === "number") return this.#modelById(identifier);
    const byHash = this.resolveByHash(identifier);
    if (byHash) return byHash;
    const f = this.fileAt(identifier);
    return f ? this.#modelById(f.modelId) : null;
  }

  fileAt(path: string): (ModelFile & { modelId: number }) | null {
    const r = this.#get<FileRow>("SELECT * FROM model_files WHERE path = ?", resolve(path));
    return r ? { ...toFile(r), modelId: r.model_id } : null;
  }

  /** Files whose full hash of `type` is `value` (verified files first), for linking. */
  filesWithHash(type: FullHashType, value: string): ModelFile[] {
    const m = this.resolveByHash(`${type}:${value}`);
    if (!m || m.hashes[type] !== value) return [];
    return [...m.files].sort((a, b) => Number(b[type] === value) - Number(a[type] === value));
  }

  /** An indexed file with this exact stat (a hard link to it, or the same file under another path). */
  fileByStat(st: WalkedFile): ModelFile | null {
    if (st.inode === null || st.device === null) return null;
    const r = this.#get<FileRow>(
      "SELECT * FROM model_files WHERE inode = ? AND device = ? AND size = ? AND mtime_ms IS ? LIMIT 1",
      st.inode,
      st.device,
      st.size,
      st.mtimeMs,
    );
    return r ? toFile(r) : null;
  }

  /** Files not fully hashed yet that could be this model (same size, or same filename when size is unknown). */
  unverifiedCandidates(size: number | undefined, filename: string, type: FullHashType): ModelFile[] {
    const col = type === "blake3" ? "blake3" : "sha256";
    const rows = size !== undefined
      ? this.#all<FileRow>(`SELECT * FROM model_files WHERE size = ? AND ${col} IS NULL`, size)
      : this.#all<FileRow>(
        `SELECT * FROM model_files WHERE lower(filename) = lower(?) AND ${col} IS NULL`,
        basename(filename),
      );
    return rows.map(toFile);
  }

  /** Every model, for `model find` without a query and for listings. */
  allModels(limit = 10_000): ModelInfo[] {
    return this.#all<{ id: number }>("SELECT id FROM models ORDER BY name LIMIT ?", limit)
      .map((r) => this.#modelById(r.id)!).filter(Boolean);
  }

  /** Merges `patch` into the model's metadata JSON (sources learned from Civitai/Hugging Face, ...). */
  updateMetadata(modelId: number, patch: Record<string, unknown>): void {
    const m = this.#modelById(modelId);
    if (!m) return;
    this.#db.prepare("UPDATE models SET metadata = ? WHERE id = ?").run(
      JSON.stringify({ ...m.metadata, ...patch }),
      modelId,
    );
  }

  stats(): { models: number; files: number } {
    const m = this.#get<{ n: number }>("SELECT count(*) AS n FROM models")!.n;
    const f = this.#get<{ n: number }>("SELECT count(*) AS n FROM model_files")!.n;
    return { models: m, files: f };
  }
}
