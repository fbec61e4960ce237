/**
 * Client of the ComfyUI Registry REST API (https://api.comfy.org, `COMFYDOCK_REGISTRY_URL`). Replies are
 * validated with zod (unknown extra fields are accepted and dropped). The install endpoint
 * (`/nodes/{id}/install`) is never called: it counts an install, and `/nodes/{id}/versions/{v}` gives the
 * same downloadUrl without side effects.
 */
import { z } from "zod";
import { distance } from "fastest-levenshtein";
import { CdError } from "../../lib/errors.ts";
import type { ApiCache } from "./api_cache.ts";
import { httpFetch } from "../../lib/http.ts";
import type { Settings } from "../../lib/settings.ts";

const str = z.string().nullish();

export const NodeVersion = z.object({
  id: str,
  version: z.string(),
  node_id: str,
  createdAt: str,
  changelog: str,
  dependencies: z.array(z.string()).nullish(),
  downloadUrl: str,
  deprecated: z.boolean().nullish(),
  /** NodeVersionStatusActive | Deleted | Banned | Pending | Flagged (kept open: new values must not crash). */
  status: str,
  status_reason: str,
});
export type NodeVersion = z.infer<typeof NodeVersion>;

export const RegistryNode = z.object({
  id: z.string(),
  name: str,
  description: str,
  author: str,
  license: str,
  repository: str,
  tags: z.array(z.string()).nullish(),
  latest_version: NodeVersion.nullish(),
  rating: z.number().nullish(),
  downloads: z.number().nullish(),
  github_stars: z.number().nullish(),
  publisher: z.object({ id: str, name: str }).nullish(),
  /** NodeStatusActive | NodeStatusDeleted | NodeStatusBanned */
  status: str,
  status_detail: str,
});
export type RegistryNode = z.infer<typeof RegistryNode>;

const NodePage = z.object({
  nodes: z.array(RegistryNode).nullish(),
  total: z.number().nullish(),
  page: z.number().nullish(),
  limit: z.number().nullish(),
  totalPages: z.number().nullish(),
});
export type NodePage = {
  nodes: RegistryNode[];
  total: number;
  page: number;
  limit: number;
  totalPages: number;
};

const ComfyNode = z.object({
  // The backend spec calls it comfy_node_id, the newer API comfy_node_name: accept both.
  comfy_node_name: str,
  comfy_node_id: str,
  category: str,
  deprecated: z.boolean().nullish(),
});
const ComfyNodePage = z.object({
  comfy_nodes: z.array(ComfyNode).nullish(),
  totalNumberOfPages: z.number().nullish(),
});

const BulkResult = z.object({
  identifier: z.object({ node_id: z.string(), version: z.string() }),
  status: z.string(),
  node_version: NodeVersion.nullish(),
  error_message: str,
});
const BulkResponse = z.object({ node_versions: z.array(BulkResult) });
export type BulkResult = z.infer<typeof BulkResult>;

/** Page size the API serves at most (larger requests are clamped; the served size is echoed back). */
const MAX_PAGE = 100;
const TTL = { node: 10 * 60_000, version: 24 * 3600_000, search: 10 * 60_000, list: 3600_000 } as const;

export interface RegistryOptions {
  baseUrl: string;
  cache?: ApiCache;
  /** Ignore cached replies (still stores fresh ones). */
  refresh?: boolean;
  timeoutMs?: number;
  retries?: number;
  retryBaseMs?: number;
}

export function isBadStatus(status: string | null | undefined, kind: "node" | "version"): boolean {
  const prefix = kind === "node" ? "NodeStatus" : "NodeVersionStatus";
  return status === `${prefix}Banned` || status === `${prefix}Deleted`;
}

/** "banned", "deleted", ... of a node or version status, for messages. */
export function statusWord(status: string | null | undefined): string {
  return (status ?? "").replace(/^Node(Version)?Status/, "").toLowerCase() || "unknown";
}

export class RegistryClient {
  readonly baseUrl: string;
  readonly #opts: RegistryOptions;

  /** The client the settings describe (base URL, timeouts), with an optional reply cache. */
  static fromSettings(
    settings: Settings,
    opts: { cache?: ApiCache; refresh?: boolean } = {},
  ): RegistryClient {
    return new RegistryClient({ baseUrl: settings.registryUrl, ...settings.http, ...opts });
  }

  constructor(opts: RegistryOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
    this.#opts = opts;
  }

  /** A validated GET reply, or null on 404. */
  async #get<T>(path: string, schema: z.ZodType<T>, ttlMs: number): Promise<T | null> {
    const url = this.baseUrl + path;
    const cache = this.#opts.cache;
    if (cache && !this.#opts.refresh) {
      const hit = cache.get(`GET ${url}`, ttlMs);
      if (hit !== null) {
        const parsed = schema.safeParse(hit);
        if (parsed.success) return parsed.data;
      }
    }
    const res = await this.#fetch(url);
    if (res.status === 404) {
      await res.body?.cancel();
      return null;
    }
    if (res.status === 403) {
      const said = await res.text().catch(() => "");
      throw new CdError("REGISTRY_FORBIDDEN", `the ComfyUI Registry refuses ${path} (HTTP 403)`, {
        hint: `the node or version is probably banned${
          said ? `; the server said: ${said.slice(0, 200)}` : ""
        }`,
      });
    }
    const json = await this.#json(res, url);
    const data = this.#validate(json, schema, url);
    cache?.put(`GET ${url}`, json);
    return data;
  }

  #fetch(url: string, init: { method?: string; body?: string } = {}): Promise<Response> {
    return httpFetch(url, {
      ...init,
      headers: init.body ? { "content-type": "application/json" } : undefined,
      what: `the ComfyUI Registry (${this.baseUrl})`,
      unreachableHint:
        "check your network, or COMFYDOCK_REGISTRY_URL; 'comfydock node find' also works offline from the node index",
      timeoutMs: this.#opts.timeoutMs,
      retries: this.#opts.retries,
      retryBaseMs: this.#opts.retryBaseMs,
    });
  }

  async #json(res: Response, url: string): Promise<unknown> {
    if (!res.ok) {
      const text = await res.text().catch(() => "");
      throw new CdError("REGISTRY_ERROR", `the ComfyUI Registry answered HTTP ${res.status} for ${url}`, {
        hint: text ? `the server said: ${text.slice(0, 200)}` : "try again later",
      });
    }
    try {
      return await res.json();
    } catch {
      throw new CdError("REGISTRY_BAD_RESPONSE", `the ComfyUI Registry sent invalid JSON for ${url}`, {
        hint: "is COMFYDOCK_REGISTRY_URL pointing at the registry API?",
      });
    }
  }

  #validate<T>(json: unknown, schema: z.ZodType<T>, url: string): T {
    const r = schema.safeParse(json);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new CdError(
        "REGISTRY_BAD_RESPONSE",
        `unexpected reply from the ComfyUI Registry for ${url}: ${issue.path.join(".")}: ${issue.message}`,
        {
          hint:
            "is COMFYDOCK_REGISTRY_URL pointing at the registry API? (a newer API may need a newer ComfyDock)",
        },
      );
    }
    return r.data;
  }

  /** A node, or null when the registry does not know it. */
  async findNode(id: string): Promise<RegistryNode | null> {
    const data = await this.#get(`/nodes/${encodeURIComponent(id)}`, RegistryNode, TTL.node);
    return data;
  }

  /** A node; unknown ids fail with suggestions, banned/deleted nodes with their status. */
  async getNode(id: string): Promise<RegistryNode> {
    const node = await this.findNode(id);
    if (!node) throw await this.notFound(id);
    if (isBadStatus(node.status, "node")) {
      throw new CdError(
        "REGISTRY_NODE_UNAVAILABLE",
        `node '${id}' is ${statusWord(node.status)} in the ComfyUI Registry${
          node.status_detail ? `: ${node.status_detail}` : ""
        }`,
        {
          hint:
            "pick another node ('comfydock node find ...'), or pin a git commit you trust with URL@COMMIT",
        },
      );
    }
    return node;
  }

  /** The 404 error for an unknown id, with the closest ids the registry's search offers. */
  async notFound(id: string): Promise<CdError> {
    let suggestions: string[] = [];
    try {
      const page = await this.search(id, { limit: 20 });
      suggestions = rankSuggestions(id, page.nodes.map((n) => n.id));
    } catch {
      // Suggestions are a courtesy: the 404 is the error that matters.
    }
    return new CdError(
      "REGISTRY_NODE_NOT_FOUND",
      `no node '${id}' in the ComfyUI Registry${
        suggestions.length ? `; did you mean ${suggestions.map((s) => `'${s}'`).join(", ")}?` : ""
      }`,
      { hint: "search with 'comfydock node find QUERY'; a git URL (https://github.com/...) also works" },
    );
  }

  async listVersions(id: string): Promise<NodeVersion[]> {
    const data = await this.#get(
      `/nodes/${encodeURIComponent(id)}/versions`,
      z.array(NodeVersion),
      TTL.node,
    );
    if (data === null) throw await this.notFound(id);
    return data;
  }

  /** One version (with downloadUrl), without counting an install. */
  async getVersion(id: string, version: string): Promise<NodeVersion> {
    const data = await this.#get(
      `/nodes/${encodeURIComponent(id)}/versions/${encodeURIComponent(version)}`,
      NodeVersion,
      TTL.version,
    );
    if (data === null) {
      let known: string[] = [];
      try {
        known = (await this.listVersions(id)).filter((v) => !isBadStatus(v.status, "version")).map((v) =>
          v.version
        );
      } catch (e) {
        if (e instanceof CdError && e.code === "REGISTRY_NODE_NOT_FOUND") throw e;
      }
      throw new CdError(
        "REGISTRY_VERSION_NOT_FOUND",
        `node '${id}' has no version '${version}' in the ComfyUI Registry`,
        {
          hint: known.length
            ? `available versions: ${known.slice(0, 10).join(", ")}${known.length > 10 ? ", ..." : ""}`
            : "'comfydock node show ID' lists the versions",
        },
      );
    }
    assertUsableVersion(id, data);
    return data;
  }

  async search(query: string, opts: { page?: number; limit?: number } = {}): Promise<NodePage> {
    const q = new URLSearchParams({
      search: query,
      page: String(opts.page ?? 1),
      limit: String(Math.min(opts.limit ?? 20, MAX_PAGE)),
      include_banned: "false",
    });
    const data = await this.#get(`/nodes/search?${q}`, NodePage, TTL.search);
    return normalisePage(data);
  }

  /** Nodes whose repository URL matches (the registry's repository_url_search). */
  async searchByRepository(url: string): Promise<RegistryNode[]> {
    const q = new URLSearchParams({ repository_url_search: url, limit: "20", include_banned: "false" });
    const data = await this.#get(`/nodes/search?${q}`, NodePage, TTL.search);
    return normalisePage(data).nodes;
  }

  async listNodesPage(page: number, limit = MAX_PAGE): Promise<NodePage> {
    const q = new URLSearchParams({ page: String(page), limit: String(limit), include_banned: "false" });
    const data = await this.#get(`/nodes?${q}`, NodePage, TTL.list);
    return normalisePage(data);
  }

  /**
   * Every node, page by page. The stride is the page size the server echoes back (it clamps large
   * requests), and totalPages is computed from it, so no row is skipped.
   */
  async listAllNodes(onPage?: (done: number, total: number) => void): Promise<RegistryNode[]> {
    const out: RegistryNode[] = [];
    let page = 1;
    for (;;) {
      const p = await this.listNodesPage(page);
      out.push(...p.nodes);
      onPage?.(page, p.totalPages);
      if (p.nodes.length === 0 || page >= p.totalPages) break;
      page++;
    }
    return out;
  }

  /** The ComfyUI class names (comfy-nodes) a node version provides. */
  async listComfyNodes(id: string, version: string): Promise<string[]> {
    const names: string[] = [];
    for (let page = 1;; page++) {
      const q = new URLSearchParams({ page: String(page), limit: "1000" });
      const data = await this.#get(
        `/nodes/${encodeURIComponent(id)}/versions/${encodeURIComponent(version)}/comfy-nodes?${q}`,
        ComfyNodePage,
        TTL.version,
      );
      if (!data) return names;
      for (const c of data.comfy_nodes ?? []) {
        const name = c.comfy_node_name ?? c.comfy_node_id;
        if (name) names.push(name);
      }
      if (!data.comfy_nodes?.length || page >= (data.totalNumberOfPages ?? 1)) return names;
    }
  }

  /** The registry node that provides a ComfyUI class name, or null. */
  async nodeForClass(className: string): Promise<RegistryNode | null> {
    const data = await this.#get(
      `/comfy-nodes/${encodeURIComponent(className)}/node`,
      RegistryNode,
      TTL.node,
    );
    return data;
  }

  /** Many (id, version) pairs in one request (uncached: used to refresh whole environments). */
  async bulkVersions(pairs: { node_id: string; version: string }[]): Promise<BulkResult[]> {
    const url = `${this.baseUrl}/bulk/nodes/versions`;
    const res = await this.#fetch(url, { method: "POST", body: JSON.stringify({ node_versions: pairs }) });
    const json = await this.#json(res, url);
    return this.#validate(json, BulkResponse, url).node_versions;
  }
}

function normalisePage(data: z.infer<typeof NodePage> | null): NodePage {
  const nodes = data?.nodes ?? [];
  const limit = data?.limit ?? nodes.length;
  const total = data?.total ?? nodes.length;
  return {
    nodes,
    total,
    page: data?.page ?? 1,
    limit,
    totalPages: data?.totalPages ?? (limit > 0 ? Math.ceil(total / limit) : 1),
  };
}

/** Refuses versions that must not be installed (banned, deleted) or cannot be (no download URL). */
export function assertUsableVersion(id: string, v: NodeVersion): void {
  if (isBadStatus(v.status, "version")) {
    throw new CdError(
      "REGISTRY_VERSION_UNAVAILABLE",
      `version ${v.version} of node '${id}' is ${statusWord(v.status)} in the ComfyUI Registry${
        v.status_reason ? `: ${v.status_reason}` : ""
      }`,
      { hint: `pick another version: 'comfydock node show ${id}' lists them` },
    );
  }
  if (!v.downloadUrl) {
    throw new CdError("REGISTRY_NO_DOWNLOAD", `version ${v.version} of node '${id}' has no download URL`, {
      hint: "the registry has no archive for it yet (pending review?); pick another version",
    });
  }
}

/** Up to three ids close to `id` (edit distance, or containing it), the nearest first. */
export function rankSuggestions(id: string, candidates: string[]): string[] {
  const want = id.toLowerCase();
  return [...new Set(candidates.filter((c) => c !== id))]
    .map((c) => ({ c, d: distance(want, c.toLowerCase()) }))
    .filter((x) => x.d <= Math.max(3, Math.floor(id.length / 2)) || x.c.toLowerCase().includes(want))
    .sort((a, b) => a.d - b.d || a.c.localeCompare(b.c))
    .slice(0, 3)
    .map((x) => x.c);
}
