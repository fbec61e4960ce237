/**
 * What importing a workflow adds (Model Resolution Flow), as data: each custom pack the environment lacks
 * (pinned as the bundle's manifest says, else by the node index's name for it), each model (already in
 * `.cec`; in the bundle's manifest; on this machine by hash, then file name in its folder, then file name
 * anywhere; else the workflow's own download URL), and what could not be resolved, with why. Pure apart
 * from the model index lookups passed in.
 */
import type { DesiredState } from "../../reconcile/desired.ts";
import type { ModelSpec, NodeSpec } from "../../reconcile/schema.ts";
import type { ModelIndex } from "../models/index_db.ts";
import { resolveModelReference } from "../models/resolve.ts";
import { type ModelRef, requirements, type WorkflowAnalysis } from "./analyze.ts";
import { findDesiredModel, findDesiredNode, type ImportManifest } from "./bundle.ts";
import { samePack } from "./node_map.ts";

export type NodeItem =
  /** Already pinned in `.cec`. */
  | { status: "present"; pack: string; id: string; types: string[] }
  /** To add with `spec` (what `node add` takes: registry id[@version] or git URL[@ref]). */
  | { status: "add"; pack: string; spec: string; pinned: boolean; types: string[] }
  /** Several packs provide the type and nothing tells them apart. */
  | { status: "choose"; types: string[]; candidates: string[]; reason: string }
  | { status: "unresolved"; types: string[]; reason: string };

interface ModelBase {
  name: string;
  category: string;
  optional: boolean;
  url?: string;
  hash?: string;
}

export type ModelItem =
  & ModelBase
  & (
    | { status: "present"; key: string }
    /** The bundle's own entry (hash + sources), added as it is. */
    | { status: "manifest"; key: string; spec: ModelSpec; local: string | null }
    /** A file on this machine (the model index). */
    | {
      status: "local";
      via: "hash" | "name-in-category" | "name";
      path: string;
      sha256: string | null;
      size: number;
    }
    /** To download: `source` is what `model add` takes (hf:REPO/FILE, civitai:ID or the URL). */
    | { status: "download"; source: string }
    | {
      status: "choose";
      candidates: { path: string; sha256: string | null; size: number }[];
      reason: string;
    }
    | { status: "unresolved"; reason: string }
  );

export interface ImportPlan {
  nodes: NodeItem[];
  models: ModelItem[];
}

/** Where the Hub and Civitai are (models/sources.ts SourceConfig fits this shape). */
export interface SourceBases {
  hfEndpoint: string;
  civitaiApi: string;
}

/**
 * A download URL as the most specific `model add` source: Hugging Face file URLs become `hf:` (the Hub
 * publishes the sha256, so nothing is downloaded before apply), Civitai download/model-page URLs become
 * `civitai:VERSION`; anything else stays a plain URL.
 */
export function sourceForUrl(url: string, bases: SourceBases): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url;
  }
  const hubHosts = new Set(["huggingface.co", "hf.co"]);
  try {
    hubHosts.add(new URL(bases.hfEndpoint).host);
  } catch {
    // an unusable HF_ENDPOINT only means fewer URLs are recognised
  }
  const hf = /^\/([^/]+)\/([^/]+)\/(?:resolve|blob)\/([^/]+)\/(.+)$/.exec(u.pathname);
  if (hubHosts.has(u.host) && hf) {
    const file = decodeURIComponent(hf[4]);
    return `hf:${hf[1]}/${hf[2]}/${file}${hf[3] !== "main" ? `@${hf[3]}` : ""}`;
  }
  const civitaiHosts = new Set(["civitai.com"]);
  try {
    civitaiHosts.add(new URL(bases.civitaiApi).host);
  } catch {
    // as above
  }
  if (civitaiHosts.has(u.host)) {
    const dl = /\/api\/download\/models\/(\d+)/.exec(u.pathname);
    if (dl) return `civitai:${dl[1]}`;
    const version = u.searchParams.get("modelVersionId");
    if (/^\/models\/\d+/.test(u.pathname) && version && /^\d+$/.test(version)) return `civitai:${version}`;
  }
  return url;
}

/** `node add` spec of a manifest pin (exact version / commit), or null for local nodes. */
function pinSpec(id: string, spec: NodeSpec): string | null {
  if (spec.source === "registry") return `${spec.registry_id ?? id}@${spec.version}`;
  if (spec.source === "git") return `${spec.repository}@${spec.commit}`;
  return null;
}

function planNodes(analysis: WorkflowAnalysis, desired: DesiredState, manifest?: ImportManifest): NodeItem[] {
  const req = requirements(analysis);
  const typesOf = new Map<string, string[]>();
  for (const n of analysis.nodes) {
    if (n.kind !== "custom" || !n.package) continue;
    const list = typesOf.get(n.package) ?? [];
    if (!list.includes(n.type)) list.push(n.type);
    typesOf.set(n.package, list);
  }
  const manifestNodes = Object.entries(manifest?.nodes ?? {});
  const pinOf = (pack: string) =>
    manifestNodes.find(([id, s]) =>
      samePack(id, pack) ||
      ("registry_id" in s && s.registry_id !== undefined && samePack(s.registry_id, pack)) ||
      ("repository" in s && s.repository !== undefined && samePack(s.repository, pack))
    );
  const items: NodeItem[] = [];
  const packs = [...req.packages];
  // The manifest's packs count even when this machine's index cannot name them from the node types.
  for (const [id] of manifestNodes) if (!packs.some((p) => samePack(p, id))) packs.push(id);
  for (const pack of packs) {
    const types = (typesOf.get(pack) ?? []).sort();
    const inEnv = findDesiredNode(pack, desired);
    if (inEnv) {
      items.push({ status: "present", pack, id: inEnv[0], types });
      continue;
    }
    const pin = pinOf(pack);
    const pinned = pin ? pinSpec(pin[0], pin[1]) : null;
    if (pinned) items.push({ status: "add", pack, spec: pinned, pinned: true, types });
    else if (/^[a-z]+:\/\//i.test(pack) || /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(pack)) {
      items.push({ status: "add", pack, spec: pack, pinned: false, types });
    } else {
      items.push({
        status: "unresolved",
        types,
        reason: `pack '${pack}' is neither a registry id nor a git URL`,
      });
    }
  }
  for (const a of req.ambiguous) {
    items.push({
      status: "choose",
      types: [a.type],
      candidates: a.candidates,
      reason: `${a.candidates.length} packs provide ${a.type}`,
    });
  }
  for (const t of req.unknownTypes) {
    items.push({
      status: "unresolved",
      types: [t],
      reason: manifestNodes.length
        ? "no node index names its pack (the bundle's packs above may provide it)"
        : "no node index names its pack",
    });
  }
  return items;
}

function hexOf(hash: string | undefined): string | undefined {
  const m = hash ? /^(?:sha256:)?([0-9a-f]{64})$/i.exec(hash) : null;
  return m ? m[1].toLowerCase() : undefined;
}

function planModel(
  m: ModelRef,
  desired: DesiredState,
  index: ModelIndex | null,
  manifest: ImportManifest | undefined,
  bases: SourceBases,
): ModelItem {
  const sha256 = hexOf(m.hash);
  const fromManifest = Object.entries(manifest?.models ?? {}).find(([, s]) =>
    (sha256 !== undefined && s.sha256 === sha256) ||
    (s.filename === m.name && s.category === m.category)
  );
  const hash = m.hash ??
    (fromManifest?.[1].sha256 ? `sha256:${fromManifest[1].sha256}` : fromManifest?.[1].hash);
  const base: ModelBase = {
    name: m.name,
    category: m.category,
    optional: m.optional,
    ...(m.url ? { url: m.url } : {}),
    ...(hash ? { hash } : {}),
  };
  const inCec = findDesiredModel({ ...m, hash }, desired);
  if (inCec) return { ...base, status: "present", key: inCec[0] };
  if (fromManifest) {
    const [key, spec] = fromManifest;
    const local = index && hash ? index.resolveByHash(hash)?.files[0]?.path ?? null : null;
    if (local || spec.sources.length) return { ...base, status: "manifest", key, spec, local };
  }
  if (index) {
    const r = resolveModelReference({ name: m.name, category: m.category, hash, url: m.url }, index);
    if (r.status === "resolved") {
      const file = r.model.files.find((f) => f.path === r.path);
      return {
        ...base,
        status: "local",
        via: r.via,
        path: r.path,
        sha256: file?.sha256 ?? r.model.hashes.sha256 ?? null,
        size: r.model.size,
      };
    }
    if (r.status === "ambiguous") {
      return {
        ...base,
        status: "choose",
        reason: r.reason,
        candidates: r.candidates.map((c) => ({
          path: c.files.find((f) => f.category === m.category)?.path ?? c.files[0]?.path ?? "",
          sha256: c.hashes.sha256 ?? null,
          size: c.size,
        })),
      };
    }
    if (r.status === "unresolved" || m.optional) {
      return { ...base, status: "unresolved", reason: m.optional ? optionalReason : r.reason };
    }
    return { ...base, status: "download", source: sourceForUrl(r.url, bases) };
  }
  if (m.optional) return { ...base, status: "unresolved", reason: optionalReason };
  if (m.url) return { ...base, status: "download", source: sourceForUrl(m.url, bases) };
  return {
    ...base,
    status: "unresolved",
    reason: "no model index on this machine and the workflow gives no download URL",
  };
}

const optionalReason = "only a bypassed or muted node loads it, so it is not downloaded";

export function planImport(
  analysis: WorkflowAnalysis,
  desired: DesiredState,
  index: ModelIndex | null,
  bases: SourceBases,
  manifest?: ImportManifest,
): ImportPlan {
  return {
    nodes: planNodes(analysis, desired, manifest),
    models: requirements(analysis).models.map((m) => planModel(m, desired, index, manifest, bases)),
  };
}
