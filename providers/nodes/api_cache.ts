/**
 * A small TTL cache of registry API replies in `.metadata/api_cache.db`. A pure accelerator: deleting the
 * file changes speed, never results. `--refresh` bypasses reads (fresh replies are still stored).
 */
import { DatabaseSync } from "node:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";

export class ApiCache {
  readonly #db: DatabaseSync;

  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.#db = new DatabaseSync(path);
    // busy_timeout first: switching to WAL itself waits for a lock another process may hold.
    this.#db.exec("PRAGMA busy_timeout=10000; PRAGMA journal_mode=WAL;");
    this.#db.exec(
      "CREATE TABLE IF NOT EXISTS api_cache (key TEXT PRIMARY KEY, value TEXT NOT NULL, stored_at INTEGER NOT NULL)",
    );
  }

  /** The cached value when it is younger than ttlMs, else null. */
  get(key: string, ttlMs: number): unknown | null {
    const row = this.#db.prepare("SELECT value, stored_at FROM api_cache WHERE key = ?").get(key) as
      | { value: string; stored_at: number }
      | undefined;
    if (!row || Date.now() - row.stored_at > ttlMs) return null;
    return JSON.parse(row.value);
  }

  /** Stores a reply; a cache that cannot be written (busy, full disk) is only a slower next time. */
  put(key: string, value: unknown): void {
    try {
      this.#db.prepare("INSERT OR REPLACE INTO api_cache (key, value, stored_at) VALUES (?, ?, ?)")
        .run(key, JSON.stringify(value), Date.now());
    } catch {
      // an accelerator, never a reason to fail
    }
  }

  close(): void {
    this.#db.close();
  }
}
