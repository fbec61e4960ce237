/**
 * Node type (`class_type`) -> node pack, pure and in memory. The entries come from ComfyUI-Manager's
 * extension-node-map.json (`fromExtensionNodeMap`) or from the node index DB (the nodes provider builds
 * `NodePackEntry[]` from `.metadata/node_index.db` and calls the constructor: keep it stable).
 *
 * Resolution order: frontend-only types, then the node's own `cnr_id` / `aux_id`, then core types, then the
 * packs installed in the environment (`withEnvironment`: what health recorded, else a scan of their
 * sources), then the index (exact names, then `nodename_pattern` regexes). A type several packs claim is
 * settled by the Manager's `preemptions` (the pack that claims the name over the others), then by the packs
 * the workflow already uses, then by popularity, else reported ambiguous with its candidates.
 */
import { z } from "zod";
import { CdError } from "../../lib/errors.ts";
import { CORE_NODE_TYPES } from "./core_nodes.ts";

export interface NodePackEntry {
  classType: string;
  /** Registry id or repository URL. */
  pack: string;
  title?: string;
  source: "registry" | "manager-map";
  popularity?: number;
  /** A regex source (ComfyUI-Manager's `nodename_pattern`); when set the entry matches types by it. */
  namePattern?: string;
  /** The pack claims this type over the others that provide it (ComfyUI-Manager's `preemptions`). */
  preempts?: boolean;
}

export type NodeKind = "core" | "custom" | "frontend" | "unknown";

export interface NodeResolution {
  kind: NodeKind;
  package: string | null;
  candidates: string[];
  ambiguous: boolean;
}

export interface ResolveHints {
  cnrId?: string;
  auxId?: string;
  /** Packs the same workflow uses for other nodes: an ambiguous type most likely comes from one of them. */
  otherPacks?: Set<string>;
}

/** The package name core nodes report (the registry's `cnr_id` for ComfyUI itself). */
const CORE_PACKAGE = "comfy-core";

/** Node types the ComfyUI frontend implements without any Python class behind them. */
const FRONTEND_NODE_TYPES: ReadonlySet<string> = new Set([
  "Note",
  "MarkdownNote",
  "Reroute",
  "PrimitiveNode",
]);

const CORE_REPOS = new Set([
  "https://github.com/comfyanonymous/comfyui",
  "https://github.com/comfy-org/comfyui",
]);

function normalisePack(pack: string): string {
  return pack.trim().toLowerCase().replace(/\/+$/, "").replace(/\.git$/, "");
}

/**
 * Whether two pack names mean the same pack. Two URLs must match exactly (forks differ only by owner); a
 * registry id matches a URL whose repository name is that id (registry ids are lowercased repo names).
 */
export function samePack(a: string, b: string): boolean {
  const x = normalisePack(a);
  const y = normalisePack(b);
  if (x === y) return true;
  if (x.includes("/") === y.includes("/")) return false;
  const [url, id] = x.includes("/") ? [x, y] : [y, x];
  return url.slice(url.lastIndexOf("/") + 1) === id;
}

const ManagerMeta = z.looseObject({
  title_aux: z.string().optional(),
  title: z.string().optional(),
  nodename_pattern: z.string().optional(),
  preemptions: z.array(z.string()).optional().catch(undefined),
});
const ManagerEntry = z.tuple([z.array(z.string()), ManagerMeta]).rest(z.unknown());

export class NodePackResolver {
  readonly coreTypes: ReadonlySet<string>;
  private readonly byType = new Map<string, NodePackEntry[]>();
  private readonly patterns: { re: RegExp; entry: NodePackEntry }[] = [];

  private readonly entries: NodePackEntry[];
  /** Classes of the packs installed in the environment (class -> pack), asked before the index. */
  private readonly installed: ReadonlyMap<string, string>;

  constructor(
    entries: NodePackEntry[],
    coreTypes: Set<string>,
    installed: ReadonlyMap<string, string> = new Map(),
  ) {
    this.entries = entries;
    this.installed = installed;
    this.coreTypes = new Set([...CORE_NODE_TYPES, ...coreTypes]);
    for (const e of entries) {
      if (e.namePattern !== undefined) {
        const re = safeRegex(e.namePattern);
        if (re) this.patterns.push({ re, entry: e });
        continue;
      }
      const list = this.byType.get(e.classType);
      if (list) list.push(e);
      else this.byType.set(e.classType, [e]);
    }
  }

  /** The same resolver with more core types (those of the environment's own ComfyUI checkout). */
  withCoreTypes(extra: Iterable<string>): NodePackResolver {
    return new NodePackResolver(this.entries, new Set([...this.coreTypes, ...extra]), this.installed);
  }

  /** The same resolver that knows which installed pack provides which class (class -> pack). */
  withEnvironment(installed: ReadonlyMap<string, string>): NodePackResolver {
    return new NodePackResolver(this.entries, new Set(this.coreTypes), installed);
  }

  /** Entries known for an exact type name (no patterns); for `node find`-like listings. */
  entriesFor(classType: string): readonly NodePackEntry[] {
    return this.byType.get(classType) ?? [];
  }

  get size(): number {
    return this.byType.size;
  }

  /**
   * Builds a resolver from extension-node-map.json: `{repoUrl: [[classNames...], {title_aux, ...}]}`.
   * Malformed entries are skipped (the file is third-party data); a file that is not a map is an error.
   */
  static fromExtensionNodeMap(json: unknown): NodePackResolver {
    if (json === null || typeof json !== "object" || Array.isArray(json)) {
      throw new CdError(
        "NODE_MAP_INVALID",
        "extension-node-map: expected a JSON object of repo URL -> entry",
        {
          hint: "pass ComfyUI-Manager's extension-node-map.json (--node-map FILE or COMFYDOCK_NODE_MAP)",
        },
      );
    }
    const entries: NodePackEntry[] = [];
    const core = new Set<string>();
    for (const [repo, raw] of Object.entries(json as Record<string, unknown>)) {
      const parsed = ManagerEntry.safeParse(raw);
      if (!parsed.success) continue;
      const [types, meta] = parsed.data;
      if (CORE_REPOS.has(repo.toLowerCase().replace(/\.git$/, ""))) {
        for (const t of types) core.add(t);
        continue;
      }
      const title = meta.title_aux ?? meta.title;
      for (const t of types) entries.push({ classType: t, pack: repo, title, source: "manager-map" });
      for (const t of meta.preemptions ?? []) {
        entries.push({ classType: t, pack: repo, title, source: "manager-map", preempts: true });
      }
      if (meta.nodename_pattern) {
        entries.push({
          classType: "",
          pack: repo,
          title,
          source: "manager-map",
          namePattern: meta.nodename_pattern,
        });
      }
    }
    return new NodePackResolver(entries, core);
  }

  resolve(classType: string, hints: ResolveHints = {}): NodeResolution {
    if (FRONTEND_NODE_TYPES.has(classType)) {
      return { kind: "frontend", package: null, candidates: [], ambiguous: false };
    }
    if (hints.cnrId) {
      const kind = hints.cnrId === CORE_PACKAGE ? "core" : "custom";
      return { kind, package: hints.cnrId, candidates: [hints.cnrId], ambiguous: false };
    }
    if (hints.auxId) {
      const pack = /^[\w.-]+\/[\w.-]+$/.test(hints.auxId) ? `https://github.com/${hints.auxId}` : hints.auxId;
      return { kind: "custom", package: pack, candidates: [pack], ambiguous: false };
    }
    if (this.coreTypes.has(classType)) {
      return { kind: "core", package: CORE_PACKAGE, candidates: [CORE_PACKAGE], ambiguous: false };
    }
    const installed = this.installed.get(classType);
    if (installed) return { kind: "custom", package: installed, candidates: [installed], ambiguous: false };
    let entries = this.byType.get(classType) ?? [];
    if (entries.length === 0) entries = this.patterns.filter((p) => p.re.test(classType)).map((p) => p.entry);
    const candidates = [...new Map(entries.map((e) => [normalisePack(e.pack), e.pack])).values()];
    if (candidates.length === 0) return { kind: "unknown", package: null, candidates: [], ambiguous: false };
    if (candidates.length === 1) {
      return { kind: "custom", package: candidates[0], candidates, ambiguous: false };
    }
    const preempting = [...new Set(entries.filter((e) => e.preempts).map((e) => normalisePack(e.pack)))];
    if (preempting.length === 1) {
      const pack = candidates.find((c) => normalisePack(c) === preempting[0])!;
      return { kind: "custom", package: pack, candidates, ambiguous: false };
    }

    if (hints.otherPacks && hints.otherPacks.size > 0) {
      const used = [...hints.otherPacks];
      const inUse = candidates.filter((c) => used.some((u) => samePack(u, c)));
      if (inUse.length === 1) return { kind: "custom", package: inUse[0], candidates, ambiguous: false };
    }
    const best = mostPopular(entries);
    if (best) return { kind: "custom", package: best, candidates, ambiguous: false };
    return { kind: "custom", package: null, candidates, ambiguous: true };
  }
}

/** The pack with strictly the highest popularity, or null when there is no clear winner. */
function mostPopular(entries: NodePackEntry[]): string | null {
  let best: NodePackEntry | null = null;
  let tie = false;
  for (const e of entries) {
    if (e.popularity === undefined) continue;
    if (!best || e.popularity > (best.popularity ?? 0)) {
      best = e;
      tie = false;
    } else if (e.popularity === best.popularity && !samePack(e.pack, best.pack)) tie = true;
  }
  return best && !tie ? best.pack : null;
}

/** Third-party patterns may be invalid or catastrophic; reject what does not compile or is overlong. */
function safeRegex(source: string): RegExp | null {
  if (source.length > 500) return null;
  try {
    return new RegExp(source);
  } catch {
    return null;
  }
}
