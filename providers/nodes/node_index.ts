/**
 * The node index (`.metadata/node_index.db`, SQLite): a cache of the registry's node listing (offline
 * `node find`) and class_type -> node pack rows (workflow analysis), filled by `node index update` from
 * the registry (paged /nodes, then each node's comfy-nodes) and from ComfyUI-Manager's
 * extension-node-map.json. Manager-map packs whose repository the registry knows are stored under their
 * registry id, so both sources name a pack the same way.
 */
import { DatabaseSync } from "node:sqlite";
import { existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { CdError, errorMessage } from "../../lib/errors.ts";
import { readTextIfExists } from "../../lib/fsx.ts";
import { type NodePackEntry, NodePackResolver } from "../workflows/node_map.ts";
import { DEFAULT_NET, fetchBytes, type NetSettings } from "../../lib/http.ts";
import type { RegistryClient, RegistryNode } from "./registry.ts";

const CORE_REPOS = new Set([
  "https://github.com/comfyanonymous/comfyui",
  "https://github.com/comfy-org/comfyui",
]);

const SCHEMA = `
CREATE TABLE IF NOT EXISTS registry_nodes (
  id TEXT PRIMARY KEY, name TEXT, description TEXT, repository TEXT, latest_version TEXT,
  downloads INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS class_packs (
  class_type TEXT NOT NULL, pack TEXT NOT NULL, title TEXT, source TEXT NOT NULL, popularity INTEGER,
  name_pattern TEXT, PRIMARY KEY (class_type, pack, source)
);
CREATE INDEX IF NOT EXISTS class_packs_type ON class_packs (class_type);
CREATE TABLE IF NOT EXISTS core_types (class_type TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS preemptions (class_type TEXT NOT NULL, pack TEXT NOT NULL, PRIMARY KEY (class_type, pack));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

export function normaliseRepo(url: string): string {
  return url.trim().toLowerCase().replace(/^git@github\.com:/, "https://github.com/").replace(/\/+$/, "")
    .replace(/\.git$/, "");
}

export class NodeIndex {
  readonly db: DatabaseSync;

  private constructor(db: DatabaseSync) {
    this.db = db;
  }

  static open(path: string): NodeIndex {
    mkdirSync(dirname(path), { recursive: true });
    const db = new DatabaseSync(path);
    // busy_timeout first: switching to WAL itself waits for a lock another process may hold.
    db.exec("PRAGMA busy_timeout=10000; PRAGMA journal_mode=WAL;");
    db.exec(SCHEMA);
    return new NodeIndex(db);
  }

  close(): void {
    this.db.close();
  }

  #tx(fn: () => void): void {
    this.db.exec("BEGIN");
    try {
      fn();
      this.db.exec("COMMIT");
    } catch (e) {
      this.db.exec("ROLLBACK");
      throw e;
    }
  }

  /** Replaces the registry listing and the registry's class rows. */
  replaceRegistry(nodes: RegistryNode[], classes: NodePackEntry[]): void {
    this.#tx(() => {
      this.db.exec("DELETE FROM registry_nodes; DELETE FROM class_packs WHERE source = 'registry';");
      const ins = this.db.prepare(
        "INSERT OR REPLACE INTO registry_nodes (id, name, description, repository, latest_version, downloads) VALUES (?, ?, ?, ?, ?, ?)",
      );
      for (const n of nodes) {
        ins.run(
          n.id,
          n.name ?? null,
          n.description ?? null,
          n.repository ?? null,
          n.latest_version?.version ?? null,
          n.downloads ?? 0,
        );
      }
      this.#insertClasses(classes);
      this.#setMeta("registry_updated_at", new Date().toISOString());
    });
  }

  /** Replaces the manager-map class rows and the core types. */
  replaceManagerMap(entries: NodePackEntry[], core: Set<string>): void {
    this.#tx(() => {
      this.db.exec(
        "DELETE FROM class_packs WHERE source = 'manager-map'; DELETE FROM core_types; DELETE FROM preemptions;",
      );
      this.#insertClasses(entries.filter((e) => !e.preempts));
      const pre = this.db.prepare("INSERT OR IGNORE INTO preemptions (class_type, pack) VALUES (?, ?)");
      for (const e of entries) if (e.preempts) pre.run(e.classType, e.pack);
      const ins = this.db.prepare("INSERT OR IGNORE INTO core_types (class_type) VALUES (?)");
      for (const t of core) ins.run(t);
      this.#setMeta("manager_map_updated_at", new Date().toISOString());
    });
  }

  #insertClasses(entries: NodePackEntry[]): void {
    const ins = this.db.prepare(
      "INSERT OR REPLACE INTO class_packs (class_type, pack, title, source, popularity, name_pattern) VALUES (?, ?, ?, ?, ?, ?)",
    );
    for (const e of entries) {
      ins.run(e.classType, e.pack, e.title ?? null, e.source, e.popularity ?? null, e.namePattern ?? null);
    }
  }

  #setMeta(key: string, value: string): void {
    this.db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)").run(key, value);
  }

  /** registry id by normalised repository URL. */
  registryRepos(): Map<string, string> {
    const rows = this.db.prepare("SELECT id, repository FROM registry_nodes WHERE repository IS NOT NULL")
      .all() as { id: string; repository: string }[];
    return new Map(rows.map((r) => [normaliseRepo(r.repository), r.id]));
  }

  entries(): NodePackEntry[] {
    const rows = this.db.prepare(
      "SELECT class_type, pack, title, source, popularity, name_pattern FROM class_packs",
    ).all() as {
      class_type: string;
      pack: string;
      title: string | null;
      source: "registry" | "manager-map";
      popularity: number | null;
      name_pattern: string | null;
    }[];
    const preempting = this.db.prepare("SELECT class_type, pack FROM preemptions").all() as {
      class_type: string;
      pack: string;
    }[];
    return [
      ...rows.map((r) => ({
        classType: r.class_type,
        pack: r.pack,
        source: r.source,
        ...(r.title !== null ? { title: r.title } : {}),
        ...(r.popularity !== null ? { popularity: r.popularity } : {}),
        ...(r.name_pattern !== null ? { namePattern: r.name_pattern } : {}),
      })),
      ...preempting.map((r) => ({
        classType: r.class_type,
        pack: r.pack,
        source: "manager-map" as const,
        preempts: true,
      })),
    ];
  }

  coreTypes(): Set<string> {
    const rows = this.db.prepare("SELECT class_type FROM core_types").all() as { class_type: string }[];
    return new Set(rows.map((r) => r.class_type));
  }

  /** Offline search: registry nodes by id/name/description, and packs providing a matching class name. */
  search(query: string, limit = 20): IndexHit[] {
    const like = `%${query.toLowerCase().replace(/[%_\\]/g, (c) => `\\${c}`)}%`;
    const rows = this.db.prepare(
      `SELECT id, name, description, repository, latest_version, downloads FROM registry_nodes
       WHERE lower(id) LIKE ? ESCAPE '\\' OR lower(coalesce(name, '')) LIKE ? ESCAPE '\\'
          OR lower(coalesce(description, '')) LIKE ? ESCAPE '\\'
       ORDER BY downloads DESC, id LIMIT ?`,
    ).all(like, like, like, limit) as unknown as IndexHit[];
    // Packs only the manager map knows (or found by a class name they provide), by title, URL or class.
    const packs = this.db.prepare(
      `SELECT pack, max(title) AS title FROM class_packs
       WHERE lower(class_type) LIKE ? ESCAPE '\\' OR lower(coalesce(title, '')) LIKE ? ESCAPE '\\'
          OR lower(pack) LIKE ? ESCAPE '\\'
       GROUP BY pack ORDER BY max(coalesce(popularity, 0)) DESC, pack LIMIT ?`,
    ).all(like, like, like, limit) as { pack: string; title: string | null }[];
    const seen = new Set(rows.map((r) => r.id));
    const known = this.db.prepare(
      "SELECT id, name, description, repository, latest_version, downloads FROM registry_nodes WHERE id = ?",
    );
    for (const { pack, title } of packs) {
      if (seen.has(pack) || rows.length >= limit) continue;
      seen.add(pack);
      rows.push(
        (known.get(pack) as IndexHit | undefined) ??
          { id: pack, name: title, description: null, repository: pack, latest_version: null, downloads: 0 },
      );
    }
    return rows;
  }

  counts(): { registryNodes: number; classRows: number; coreTypes: number } {
    const one = (sql: string) => (this.db.prepare(sql).get() as { n: number }).n;
    return {
      registryNodes: one("SELECT count(*) AS n FROM registry_nodes"),
      classRows: one("SELECT count(*) AS n FROM class_packs"),
      coreTypes: one("SELECT count(*) AS n FROM core_types"),
    };
  }
}

export interface IndexHit {
  id: string;
  name: string | null;
  description: string | null;
  repository: string | null;
  latest_version: string | null;
  downloads: number;
}

/** extension-node-map.json -> entries (packs named by registry id where the registry knows the repo). */
export function entriesFromManagerMap(
  json: unknown,
  registryRepos: Map<string, string>,
): { entries: NodePackEntry[]; core: Set<string> } {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new CdError("NODE_MAP_INVALID", "extension-node-map: expected a JSON object of repo URL -> entry", {
      hint: "pass ComfyUI-Manager's extension-node-map.json with --from FILE|URL",
    });
  }
  const entries: NodePackEntry[] = [];
  const core = new Set<string>();
  for (const [repo, raw] of Object.entries(json as Record<string, unknown>)) {
    if (!Array.isArray(raw) || !Array.isArray(raw[0])) continue;
    const types = (raw[0] as unknown[]).filter((t): t is string => typeof t === "string");
    const meta = (raw[1] && typeof raw[1] === "object" ? raw[1] : {}) as Record<string, unknown>;
    const norm = normaliseRepo(repo);
    if (CORE_REPOS.has(norm)) {
      for (const t of types) core.add(t);
      continue;
    }
    const pack = registryRepos.get(norm) ?? repo;
    const title = typeof meta.title_aux === "string" ? meta.title_aux : undefined;
    for (const t of new Set(types)) entries.push({ classType: t, pack, title, source: "manager-map" });
    // The Manager's `preemptions`: this pack is the one meant when several provide the name.
    const preemptions = Array.isArray(meta.preemptions) ? meta.preemptions : [];
    for (const t of new Set(preemptions.filter((x): x is string => typeof x === "string"))) {
      entries.push({ classType: t, pack, title, source: "manager-map", preempts: true });
    }
    if (typeof meta.nodename_pattern === "string") {
      entries.push({ classType: "", pack, title, source: "manager-map", namePattern: meta.nodename_pattern });
    }
  }
  return { entries, core };
}

/** ComfyUI-Manager's map is ~2 MB; anything far larger is not it. */
const MAX_MAP_BYTES = 64 * 1024 * 1024;

async function readMapSource(from: string, net: NetSettings): Promise<unknown> {
  let text: string | null;
  if (/^https?:\/\//.test(from)) {
    const failed = (why: string) =>
      new CdError("NODE_MAP_DOWNLOAD_FAILED", `downloading ${from} failed: ${why}`, {
        hint: "check the URL (COMFYDOCK_NODE_MAP_URL), or pass a local copy with --from FILE",
      });
    text = new TextDecoder().decode(
      await fetchBytes(from, {
        what: "downloading the node map",
        net,
        maxBytes: MAX_MAP_BYTES,
        failed: (status) => failed(`HTTP ${status}`),
        limited: (e) => failed(e.message),
      }),
    );
  } else {
    text = await readTextIfExists(from);
    if (text === null) {
      throw new CdError("NODE_MAP_NOT_FOUND", `node map ${from} does not exist`, {
        hint: "pass ComfyUI-Manager's extension-node-map.json with --from FILE|URL",
      });
    }
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CdError("NODE_MAP_INVALID", `node map ${from} is not valid JSON: ${errorMessage(e)}`, {
      hint: "download extension-node-map.json again from ComfyUI-Manager",
    });
  }
}

export interface IndexUpdateResult {
  registryNodes: number | null;
  registryClasses: number | null;
  mapClasses: number | null;
  coreTypes: number | null;
  warnings: string[];
}

/** Runs `fn` over items with at most `n` in flight. */
async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

/**
 * Fills the index: the registry part (skipped with a warning when the registry is unreachable, keeping
 * the previous rows), then the manager map (`from`, else `defaultMapUrl`, Settings.nodeMapUrl).
 */
export async function updateNodeIndex(
  dbPath: string,
  opts: {
    registry: RegistryClient | null;
    from?: string;
    defaultMapUrl: string;
    net?: NetSettings;
    log?: (line: string) => void;
  },
): Promise<IndexUpdateResult> {
  const log = opts.log ?? (() => {});
  const result: IndexUpdateResult = {
    registryNodes: null,
    registryClasses: null,
    mapClasses: null,
    coreTypes: null,
    warnings: [],
  };
  const index = NodeIndex.open(dbPath);
  try {
    if (opts.registry) {
      try {
        log(`listing nodes from ${opts.registry.baseUrl}`);
        const nodes = await opts.registry.listAllNodes();
        const classes: NodePackEntry[] = [];
        let failed = 0;
        await pool(nodes.filter((n) => n.latest_version?.version), 8, async (n) => {
          try {
            for (const c of await opts.registry!.listComfyNodes(n.id, n.latest_version!.version)) {
              classes.push({
                classType: c,
                pack: n.id,
                title: n.name ?? undefined,
                source: "registry",
                popularity: n.downloads ?? 0,
              });
            }
          } catch {
            failed++;
          }
        });
        if (failed) result.warnings.push(`could not list the node classes of ${failed} registry node(s)`);
        index.replaceRegistry(nodes, classes);
        result.registryNodes = nodes.length;
        result.registryClasses = classes.length;
      } catch (e) {
        result.warnings.push(`registry skipped (the previous listing is kept): ${errorMessage(e)}`);
      }
    }
    const from = opts.from ?? opts.defaultMapUrl;
    try {
      log(`reading the node map ${from}`);
      const { entries, core } = entriesFromManagerMap(
        await readMapSource(from, opts.net ?? DEFAULT_NET),
        index.registryRepos(),
      );
      index.replaceManagerMap(entries, core);
      result.mapClasses = entries.filter((e) => !e.preempts).length;
      result.coreTypes = core.size;
    } catch (e) {
      // An explicit --from that fails is the user's error; the default URL failing is a warning.
      if (opts.from) throw e;
      result.warnings.push(`node map skipped (the previous one is kept): ${errorMessage(e)}`);
    }
  } finally {
    index.close();
  }
  return result;
}

/** The class_type -> pack resolver over the index, or null when there is no index yet. */
export function loadResolver(dbPath: string): NodePackResolver | null {
  if (!existsSync(dbPath)) return null;
  const index = NodeIndex.open(dbPath);
  try {
    return new NodePackResolver(index.entries(), index.coreTypes());
  } finally {
    index.close();
  }
}
