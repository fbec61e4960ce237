/**
 * Sharing one workflow: what `workflow export` puts in a workflow bundle's manifest (the custom packs with
 * their pins from `.cec`, the models with hash, size and sources), and reading the plain JSON export of
 * earlier versions (`format: "comfydock-workflow"`) into the same shape. Pure.
 */
import { basename } from "node:path";
import { z } from "zod";
import type { DesiredState } from "../../reconcile/desired.ts";
import { ModelSource, type ModelSpec, NodeSpec } from "../../reconcile/schema.ts";
import { type ModelRef, requirements, type WorkflowAnalysis } from "./analyze.ts";
import { samePack } from "./node_map.ts";

/** The `format` of the plain JSON export (read for compatibility; exports are bundles now). */
export const EXPORT_FORMAT = "comfydock-workflow";

/** The desired model entry a workflow reference means: same hash, else same file name (and folder). */
/** The dependency manifest an import may come with (a workflow bundle's `workflow` section). */
export interface ImportManifest {
  nodes: Record<string, NodeSpec>;
  models: Record<string, ModelSpec>;
}

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

export interface WorkflowDependencies extends ImportManifest {
  /** Packs the workflow uses that `.cec` does not pin (the importer resolves them again). */
  unpinnedPacks: string[];
  unknownTypes: string[];
  /** Models `.cec` has no entry for (they travel only as the workflow's own name/URL). */
  unrecorded: ModelRef[];
}

/** The dependency manifest of a workflow bundle: the environment's pins of what the workflow uses. */
export function workflowDependencies(
  analysis: WorkflowAnalysis,
  desired: DesiredState,
): WorkflowDependencies {
  const req = requirements(analysis);
  const out: WorkflowDependencies = {
    nodes: {},
    models: {},
    unpinnedPacks: [],
    unknownTypes: req.unknownTypes,
    unrecorded: [],
  };
  for (const p of req.packages) {
    const found = findDesiredNode(p, desired);
    if (found) out.nodes[found[0]] = found[1];
    else out.unpinnedPacks.push(p);
  }
  for (const m of req.models) {
    const found = findDesiredModel(m, desired);
    if (found) out.models[found[0]] = found[1];
    else out.unrecorded.push(m);
  }
  return out;
}

const LegacyExport = z.looseObject({
  format: z.literal(EXPORT_FORMAT),
  format_version: z.literal(1),
  name: z.string().min(1),
  nodes: z.array(z.looseObject({ package: z.string(), spec: z.unknown().optional() })).default([]),
  models: z.array(z.looseObject({
    name: z.string(),
    category: z.string(),
    key: z.string().optional(),
    url: z.string().optional(),
    hash: z.string().optional(),
    sha256: z.string().optional(),
    size: z.number().optional(),
    sources: z.array(z.unknown()).optional(),
  })).default([]),
  workflow: z.unknown(),
});

/**
 * A parsed JSON import: the plain export of earlier versions (workflow + manifest, turned into the bundle's
 * manifest shape; entries that do not validate are left out) or a bare workflow.
 */
export function unwrapImport(json: unknown): { workflow: unknown; name?: string; manifest?: ImportManifest } {
  const p = LegacyExport.safeParse(json);
  if (!p.success) return { workflow: json };
  const manifest: ImportManifest = { nodes: {}, models: {} };
  for (const n of p.data.nodes) {
    const spec = NodeSpec.safeParse(n.spec);
    if (spec.success) manifest.nodes[n.package] = spec.data;
  }
  for (const m of p.data.models) {
    if (!m.sha256 || !/^[0-9a-f]{64}$/.test(m.sha256)) continue;
    const sources = (m.sources ?? []).flatMap((s) => {
      const r = ModelSource.safeParse(s);
      return r.success ? [r.data] : [];
    });
    if (!sources.length && m.url && URL.canParse(m.url)) sources.push({ type: "url", url: m.url });
    manifest.models[m.key ?? m.name] = {
      hash: `sha256:${m.sha256}`,
      sha256: m.sha256,
      ...(m.size !== undefined ? { size: m.size } : {}),
      category: m.category,
      filename: m.name,
      sources,
    };
  }
  return { workflow: p.data.workflow, name: p.data.name, manifest };
}
