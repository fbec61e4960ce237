/**
 * Sharing one workflow: `workflow export` writes the workflow with a dependency manifest (packs, model
 * files with hashes and download sources); `workflow import` reads such a file or a bare workflow and works
 * out what the environment lacks. Pure: the model index is passed in as a lookup.
 */
import { basename } from "node:path";
import { z } from "zod";
import type { DesiredState } from "../../reconcile/desired.ts";
import type { ModelSource, ModelSpec, NodeSpec } from "../../reconcile/schema.ts";
import { type ModelRef, requirements, type WorkflowAnalysis } from "./analyze.ts";
import { samePack } from "./node_map.ts";

export const EXPORT_FORMAT = "comfydock-workflow";

export interface ExportedModel {
  name: string;
  category: string;
  optional: boolean;
  url?: string;
  hash?: string;
  /** The model's key in the exporting environment, with its recorded hashes and sources. */
  key?: string;
  sha256?: string;
  size?: number;
  sources?: ModelSource[];
}

export interface WorkflowExport {
  format: typeof EXPORT_FORMAT;
  format_version: 1;
  name: string;
  exported_at: string;
  /** Custom packs as the environment pins them (registry id + version, or repository + commit). */
  nodes: { package: string; spec?: NodeSpec }[];
  unknown_node_types: string[];
  models: ExportedModel[];
  workflow: unknown;
}

/** The desired model entry a workflow reference means: same hash, else same file name (and folder). */
export function findDesiredModel(m: ModelRef, desired: DesiredState): [string, ModelSpec] | null {
  const hex = m.hash?.replace(/^sha256:/, "");
  const entries = Object.entries(desired.models);
  return entries.find(([, s]) => hex !== undefined && (s.sha256 === hex || s.hash === m.hash)) ??
    entries.find(([, s]) => basename(s.filename) === basename(m.name) && s.category === m.category) ?? null;
}

/** The desired node entry of a pack name (registry id or repository URL). */
export function findDesiredNode(pack: string, desired: DesiredState): [string, NodeSpec] | null {
  return Object.entries(desired.nodes).find(([id, s]) =>
    samePack(id, pack) ||
    ("registry_id" in s && s.registry_id !== undefined && samePack(s.registry_id, pack)) ||
    ("repository" in s && s.repository !== undefined && samePack(s.repository, pack))
  ) ?? null;
}

export function buildExport(
  name: string,
  workflow: unknown,
  analysis: WorkflowAnalysis,
  desired: DesiredState,
  now = new Date(),
): WorkflowExport {
  const req = requirements(analysis);
  return {
    format: EXPORT_FORMAT,
    format_version: 1,
    name,
    exported_at: now.toISOString(),
    nodes: req.packages.map((p) => {
      const found = findDesiredNode(p, desired);
      return found ? { package: p, spec: found[1] } : { package: p };
    }),
    unknown_node_types: req.unknownTypes,
    models: req.models.map((m) => {
      const out: ExportedModel = { name: m.name, category: m.category, optional: m.optional };
      if (m.url) out.url = m.url;
      if (m.hash) out.hash = m.hash;
      const found = findDesiredModel(m, desired);
      if (found) {
        const [key, spec] = found;
        out.key = key;
        if (spec.sha256) out.sha256 = spec.sha256;
        if (spec.hash) out.hash ??= spec.hash;
        if (spec.size !== undefined) out.size = spec.size;
        if (spec.sources.length) out.sources = spec.sources;
      }
      return out;
    }),
    workflow,
  };
}

const ExportFile = z.looseObject({
  format: z.literal(EXPORT_FORMAT),
  format_version: z.literal(1),
  name: z.string().min(1),
  models: z.array(z.looseObject({
    name: z.string(),
    category: z.string(),
    url: z.string().optional(),
    hash: z.string().optional(),
    sha256: z.string().optional(),
  })).default([]),
  workflow: z.unknown(),
});

/** A parsed import file: an export of this tool (workflow + manifest) or a bare workflow. */
export function unwrapImport(json: unknown): {
  workflow: unknown;
  name?: string;
  manifestModels: z.infer<typeof ExportFile>["models"];
} {
  const p = ExportFile.safeParse(json);
  if (p.success) return { workflow: p.data.workflow, name: p.data.name, manifestModels: p.data.models };
  return { workflow: json, manifestModels: [] };
}

/** What the model index can tell about a file (providers/models ModelIndex fits this shape). */
export interface ModelLookup {
  resolveByHash(ref: string): { files: { path: string }[] } | null;
  resolveByName(name: string, category?: string): { files: { path: string }[] }[];
}

export type ModelNeed =
  & { name: string; category: string; optional: boolean; url?: string; hash?: string }
  & (
    | { status: "in-environment"; key: string }
    | { status: "on-disk"; path: string; by: "hash" | "name" }
    | { status: "download"; url: string }
    | { status: "unresolved" }
  );

export interface ImportNeeds {
  nodes: { package: string; status: "in-environment" | "to-add"; types: string[] }[];
  unknownTypes: string[];
  ambiguous: { type: string; candidates: string[] }[];
  models: ModelNeed[];
}

/**
 * Works out what an imported workflow needs (Model Resolution Flow): each model by hash, then by file name
 * and folder in `.cec` and the model index, then the workflow's own download URL; each custom pack against
 * the environment's nodes.
 */
export function importNeeds(
  analysis: WorkflowAnalysis,
  desired: DesiredState,
  index: ModelLookup | null,
  manifestModels: { name: string; category: string; url?: string; hash?: string; sha256?: string }[] = [],
): ImportNeeds {
  const req = requirements(analysis);
  const typesOf = new Map<string, Set<string>>();
  for (const n of analysis.nodes) {
    if (n.kind === "custom" && n.package) {
      typesOf.set(n.package, (typesOf.get(n.package) ?? new Set()).add(n.type));
    }
  }
  const nodes = req.packages.map((p) => ({
    package: p,
    status: findDesiredNode(p, desired) ? "in-environment" as const : "to-add" as const,
    types: [...typesOf.get(p) ?? []].sort(),
  }));
  const models = req.models.map((m): ModelNeed => {
    const extra = manifestModels.find((x) => x.name === m.name && x.category === m.category);
    const hash = m.hash ?? extra?.hash ?? (extra?.sha256 ? `sha256:${extra.sha256}` : undefined);
    const url = m.url ?? extra?.url;
    const base = {
      name: m.name,
      category: m.category,
      optional: m.optional,
      ...(url ? { url } : {}),
      ...(hash ? { hash } : {}),
    };
    const inCec = findDesiredModel({ ...m, hash }, desired);
    if (inCec) return { ...base, status: "in-environment", key: inCec[0] };
    const byHash = hash ? index?.resolveByHash(hash) : null;
    if (byHash?.files.length) return { ...base, status: "on-disk", path: byHash.files[0].path, by: "hash" };
    const byName = index?.resolveByName(m.name, m.category) ?? [];
    if (byName.length === 1 && byName[0].files.length) {
      return { ...base, status: "on-disk", path: byName[0].files[0].path, by: "name" };
    }
    if (url) return { ...base, status: "download", url };
    return { ...base, status: "unresolved" };
  });
  return { nodes, unknownTypes: req.unknownTypes, ambiguous: req.ambiguous, models };
}
