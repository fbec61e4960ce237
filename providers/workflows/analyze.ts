/**
 * Pure analysis of one ComfyUI workflow: which node types it uses (and from which pack), which model files
 * it loads (and from which ComfyUI models folder). Both formats: the UI format the frontend saves (`nodes[]`,
 * `definitions.subgraphs[]`, `extra.groupNodes`) and the API format (`{id: {class_type, inputs}}`).
 *
 * Workflows come from strangers: the text is size- and depth-checked before JSON.parse, the shape is
 * validated loosely with zod (only the fields this module reads), and malformed model entries become
 * warnings instead of failures, so any input gives a result or a CdError, never a crash or a hang.
 */
import { z } from "zod";
import { CdError, errorMessage } from "../../lib/errors.ts";
import { type NodeKind, NodePackResolver } from "./node_map.ts";

/** Workflows are kilobytes to a few megabytes; anything past this is refused before it is parsed. */
export const MAX_WORKFLOW_BYTES = 32 * 1024 * 1024;
/** Real workflows nest about 10 levels; the limit keeps recursive walks far from the stack's end. */
const MAX_JSON_DEPTH = 200;
/** Subgraphs inside subgraphs: ComfyUI flattens them, but a hostile file may not. */
const MAX_SUBGRAPH_DEPTH = 32;

export type NodeMode = "active" | "muted" | "bypassed";

export interface AnalyzedNode {
  /** Top-level node id; `<subgraph id>:<id>` inside a subgraph; `<group name>:<index>` inside a group node. */
  id: string;
  type: string;
  package: string | null;
  kind: NodeKind;
  mode: NodeMode;
  title?: string;
  /** Packs claiming this type when the index could not decide. */
  candidates?: string[];
  ambiguous?: boolean;
}

export interface ModelRef {
  name: string;
  /** The ComfyUI models folder (checkpoints, loras, vae, text_encoders, ...). */
  category: string;
  url?: string;
  /** `<algorithm>:<hex>` when the workflow states one. */
  hash?: string;
  /** Null for models listed at the workflow's top level. */
  node_id: string | null;
  node_type: string | null;
  /** The loading node is muted or bypassed: the workflow runs without this file. */
  optional: boolean;
}

export interface WorkflowAnalysis {
  format: "ui" | "api";
  nodes: AnalyzedNode[];
  models: ModelRef[];
  warnings: string[];
}

// ---------------------------------------------------------------------------------------------------------
// Parsing with limits

/** Parses workflow text; refuses oversized or too deeply nested JSON before JSON.parse sees it. */
export function parseWorkflowText(text: string, file = "workflow"): unknown {
  if (text.length > MAX_WORKFLOW_BYTES) {
    throw new CdError("WORKFLOW_TOO_LARGE", `${file}: ${text.length} bytes is larger than the limit`, {
      hint: `workflows are limited to ${
        MAX_WORKFLOW_BYTES / 1024 / 1024
      } MiB; is this really a workflow file?`,
    });
  }
  const depth = jsonDepth(text);
  if (depth > MAX_JSON_DEPTH) {
    throw new CdError("WORKFLOW_TOO_DEEP", `${file}: JSON nested deeper than ${MAX_JSON_DEPTH} levels`, {
      hint: "ComfyUI never writes such files; check where this file came from",
    });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    // V8 quotes the start of the input ('"\x89PNG..." is not valid JSON'): keep only the position.
    const why = errorMessage(e).replace(/,? *".*" is not valid JSON\s*$/s, "").replace(/[^\x20-\x7e]/g, "?")
      .slice(0, 200);
    throw new CdError("WORKFLOW_NOT_JSON", `${file}: not valid JSON (${why})`, {
      hint: "export the workflow again from ComfyUI (Workflow > Export)",
    });
  }
}

/** Maximum bracket nesting outside strings, stopping early once past the limit. */
function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > max) {
        max = depth;
        if (max > MAX_JSON_DEPTH) return max;
      }
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth--;
  }
  return max;
}

// ---------------------------------------------------------------------------------------------------------
// Loose shapes of the two formats (only the fields read here)

const Widgets = z.union([z.array(z.unknown()), z.record(z.string(), z.unknown())]);
const Properties = z.looseObject({
  cnr_id: z.string().optional(),
  aux_id: z.string().optional(),
  models: z.array(z.unknown()).optional(),
  proxyWidgets: z.array(z.unknown()).optional(),
});
const UiNode = z.looseObject({
  id: z.union([z.number(), z.string()]),
  type: z.string(),
  mode: z.number().optional(),
  title: z.string().optional(),
  properties: Properties.optional(),
  widgets_values: Widgets.nullable().optional(),
  widgets_values_named: z.record(z.string(), z.unknown()).optional(),
});
type UiNode = z.infer<typeof UiNode>;
const Subgraph = z.looseObject({
  id: z.string(),
  name: z.string().optional(),
  nodes: z.array(UiNode).default([]),
  definitions: z.looseObject({ subgraphs: z.array(z.unknown()).optional() }).optional(),
});
const GroupNodeDef = z.looseObject({
  nodes: z.array(UiNode.extend({ id: z.union([z.number(), z.string()]).optional() }).loose()).default([]),
});
const UiWorkflow = z.looseObject({
  nodes: z.array(UiNode),
  models: z.array(z.unknown()).optional(),
  definitions: z.looseObject({ subgraphs: z.array(z.unknown()).optional() }).optional(),
  extra: z.looseObject({ groupNodes: z.record(z.string(), z.unknown()).optional() }).nullable().optional(),
});
const ApiNode = z.looseObject({
  class_type: z.string(),
  inputs: z.record(z.string(), z.unknown()).default({}),
  _meta: z.looseObject({ title: z.string().optional() }).optional(),
});
const ModelProperty = z.looseObject({
  name: z.string().min(1),
  directory: z.string().min(1),
  url: z.string().optional(),
  hash: z.string().optional(),
  hash_type: z.string().optional(),
});

function invalid(file: string, where: string, error: z.ZodError): CdError {
  const issue = error.issues[0];
  const path = [where, ...issue.path.map(String)].filter(Boolean).join(".");
  return new CdError("WORKFLOW_INVALID", `${file}: ${path || "(root)"}: ${issue.message}`, {
    hint: "this does not look like a ComfyUI workflow (UI or API format); export it again from ComfyUI",
  });
}

// ---------------------------------------------------------------------------------------------------------
// Model loaders: node type -> which widget (index in widgets_values, or input name) holds which folder's file

interface LoaderInput {
  input: string;
  index: number;
  category: string;
}

const one = (input: string, category: string): LoaderInput[] => [{ input, index: 0, category }];
const clips = (n: number): LoaderInput[] =>
  Array.from({ length: n }, (_, i) => ({ input: `clip_name${i + 1}`, index: i, category: "text_encoders" }));

export const MODEL_LOADERS: Readonly<Record<string, readonly LoaderInput[]>> = {
  CheckpointLoaderSimple: one("ckpt_name", "checkpoints"),
  CheckpointLoader: [
    { input: "config_name", index: 0, category: "configs" },
    { input: "ckpt_name", index: 1, category: "checkpoints" },
  ],
  ImageOnlyCheckpointLoader: one("ckpt_name", "checkpoints"),
  unCLIPCheckpointLoader: one("ckpt_name", "checkpoints"),
  DiffusersLoader: one("model_path", "diffusers"),
  LoraLoader: one("lora_name", "loras"),
  LoraLoaderModelOnly: one("lora_name", "loras"),
  VAELoader: one("vae_name", "vae"),
  UNETLoader: one("unet_name", "diffusion_models"),
  CLIPLoader: one("clip_name", "text_encoders"),
  DualCLIPLoader: clips(2),
  TripleCLIPLoader: clips(3),
  QuadrupleCLIPLoader: clips(4),
  ControlNetLoader: one("control_net_name", "controlnet"),
  DiffControlNetLoader: one("control_net_name", "controlnet"),
  UpscaleModelLoader: one("model_name", "upscale_models"),
  LatentUpscaleModelLoader: one("model_name", "latent_upscale_models"),
  CLIPVisionLoader: one("clip_name", "clip_vision"),
  StyleModelLoader: one("style_model_name", "style_models"),
  GLIGENLoader: one("gligen_name", "gligen"),
  HypernetworkLoader: one("hypernetwork_name", "hypernetworks"),
  PhotoMakerLoader: one("photomaker_model_name", "photomaker"),
  ModelPatchLoader: one("name", "model_patches"),
  AudioEncoderLoader: one("audio_encoder_name", "audio_encoders"),
  LTXVAudioVAELoader: one("ckpt_name", "checkpoints"),
  LTXAVTextEncoderLoader: [
    { input: "text_encoder", index: 0, category: "text_encoders" },
    { input: "ckpt_name", index: 1, category: "checkpoints" },
  ],
  LoadDA3Model: one("model_name", "geometry_estimation"),
  // city96/ComfyUI-GGUF: the most used custom loaders; their files live in the core folders.
  UnetLoaderGGUF: one("unet_name", "diffusion_models"),
  CLIPLoaderGGUF: one("clip_name", "text_encoders"),
  DualCLIPLoaderGGUF: clips(2),
  TripleCLIPLoaderGGUF: clips(3),
};

/**
 * A model file name as ComfyUI lists it on this machine: workflows saved on Windows name subfolders with
 * `\` (`hyvideo\model.safetensors`), which never matches a file elsewhere; `/` does everywhere.
 */
export function modelName(name: string): string {
  return name.trim().replaceAll("\\", "/");
}

/** Loader choices that name a built-in, not a file (VAELoader's approximations and pixel space). */
const NOT_FILES = new Set(["", "None", "none", "pixel_space", "taesd", "taesdxl", "taesd3", "taef1"]);

const EMBEDDING = /embedding:([^\s,()[\]{}<>|"':]+)/gi;

// ---------------------------------------------------------------------------------------------------------
// The walk

/** One node as both formats reduce to: identity, pack hints, and a way to read its widget values. */
interface RawNode {
  id: string;
  type: string;
  mode: NodeMode;
  title?: string;
  cnrId?: string;
  auxId?: string;
  /** Reads a widget/input value by loader spec. */
  value: (spec: LoaderInput) => unknown;
  strings: () => string[];
  modelProps: unknown[];
  /** A subgraph instance's override of an inner widget: a source of models, not a node of its own. */
  proxy?: true;
}

function modeOf(mode: number | undefined): NodeMode {
  return mode === 4 ? "bypassed" : mode === 2 ? "muted" : "active";
}

function uiRaw(n: UiNode, id: string, inherited: NodeMode): RawNode {
  const w = n.widgets_values ?? undefined;
  const named = n.widgets_values_named;
  const own = modeOf(n.mode);
  return {
    id,
    type: n.type,
    mode: inherited !== "active" ? inherited : own,
    title: n.title,
    cnrId: n.properties?.cnr_id || undefined,
    auxId: n.properties?.aux_id || undefined,
    value: (spec) => {
      if (named && spec.input in named) return named[spec.input];
      if (Array.isArray(w)) return w[spec.index];
      return w ? w[spec.input] : undefined;
    },
    strings: () => (Array.isArray(w) ? w : w ? Object.values(w) : []).filter((v) => typeof v === "string"),
    modelProps: n.properties?.models ?? [],
  };
}

function isApiFormat(json: Record<string, unknown>): boolean {
  const values = Object.values(json);
  return values.length > 0 &&
    values.every((v) => v !== null && typeof v === "object" && "class_type" in (v as object));
}

/** Analyses a parsed workflow. `file` only names the source in errors and warnings. */
export function analyzeWorkflow(
  json: unknown,
  resolver: NodePackResolver,
  file = "workflow",
): WorkflowAnalysis {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new CdError("WORKFLOW_INVALID", `${file}: expected a JSON object, got ${kindOf(json)}`, {
      hint: "a ComfyUI workflow is a JSON object (UI format with 'nodes', or API format keyed by node id)",
    });
  }
  const obj = json as Record<string, unknown>;
  const warnings: string[] = [];
  let raws: RawNode[];
  let format: "ui" | "api";
  let topModels: unknown[] = [];
  if (Array.isArray(obj.nodes)) {
    format = "ui";
    const parsed = UiWorkflow.safeParse(obj);
    if (!parsed.success) throw invalid(file, "", parsed.error);
    raws = collectUi(parsed.data, file, warnings);
    topModels = parsed.data.models ?? [];
  } else if (isApiFormat(obj)) {
    format = "api";
    raws = collectApi(obj, file);
  } else {
    throw new CdError("WORKFLOW_INVALID", `${file}: neither a UI workflow ('nodes' array) nor API format`, {
      hint:
        "export the workflow from ComfyUI (UI format), or use an API-format prompt {id: {class_type, inputs}}",
    });
  }

  const nodes = classify(raws, resolver);
  const models = new ModelCollector();
  for (const raw of raws) extractModels(raw, models, warnings, file);
  for (const [i, m] of topModels.entries()) {
    const p = ModelProperty.safeParse(m);
    if (p.success) models.add(fromProperty(p.data, null, null, false));
    else warnings.push(`${file}: models[${i}] skipped: ${p.error.issues[0].message}`);
  }
  return { format, nodes, models: models.list(), warnings };
}

function kindOf(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "an array" : typeof v;
}

function collectUi(wf: z.infer<typeof UiWorkflow>, file: string, warnings: string[]): RawNode[] {
  const out: RawNode[] = [];
  const subgraphs = new Map<string, z.infer<typeof Subgraph>>();
  const gatherSubgraphs = (list: unknown[] | undefined, where: string, depth: number) => {
    if (!list || depth > MAX_SUBGRAPH_DEPTH) return;
    for (const [i, s] of list.entries()) {
      const p = Subgraph.safeParse(s);
      if (!p.success) throw invalid(file, `${where}[${i}]`, p.error);
      if (subgraphs.has(p.data.id)) continue;
      subgraphs.set(p.data.id, p.data);
      gatherSubgraphs(p.data.definitions?.subgraphs, `${where}[${i}].definitions.subgraphs`, depth + 1);
    }
  };
  gatherSubgraphs(wf.definitions?.subgraphs, "definitions.subgraphs", 0);

  const groups = new Map<string, z.infer<typeof GroupNodeDef>>();
  for (const [name, g] of Object.entries(wf.extra?.groupNodes ?? {})) {
    const p = GroupNodeDef.safeParse(g);
    if (!p.success) throw invalid(file, `extra.groupNodes.${name}`, p.error);
    groups.set(name, p.data);
  }

  const addNodes = (nodes: UiNode[], prefix: string) => {
    for (const n of nodes) {
      const id = prefix + String(n.id);
      const raw = uiRaw(n, id, "active");
      const sub = subgraphs.get(n.type);
      if (sub) {
        raw.title ??= sub.name;
        out.push(raw);
        out.push(...proxiedWidgets(n, id, sub.nodes));
        continue;
      }
      out.push(raw);
    }
  };
  addNodes(wf.nodes, "");
  for (const [sid, sub] of subgraphs) addNodes(sub.nodes, `${sid}:`);
  for (const [name, g] of groups) {
    for (const [i, n] of g.nodes.entries()) {
      out.push(
        uiRaw({ ...n, id: n.id ?? i }, `${name}:${typeof n.index === "number" ? n.index : i}`, "active"),
      );
    }
  }
  if (subgraphs.size > 0 && out.length === 0) warnings.push(`${file}: subgraphs without nodes`);
  return out;
}

/**
 * A subgraph instance may override the inner nodes' widgets it exposes (`properties.proxyWidgets`, values in
 * its own widgets_values). Each override becomes a pseudo node of the inner type so a model chosen on the
 * instance is found too.
 */
function proxiedWidgets(instance: UiNode, instanceId: string, inner: UiNode[]): RawNode[] {
  const proxies = instance.properties?.proxyWidgets;
  const values = instance.widgets_values;
  if (!proxies || !Array.isArray(values) || values.length === 0) return [];
  const out: RawNode[] = [];
  for (const [i, p] of proxies.entries()) {
    if (!Array.isArray(p) || p.length < 2 || i >= values.length) continue;
    const target = inner.find((n) => String(n.id) === String(p[0]));
    const specs = target ? MODEL_LOADERS[target.type] : undefined;
    const spec = specs?.find((s) => s.input === p[1]);
    if (!target || !spec) continue;
    const value = values[i];
    out.push({
      id: `${instanceId}>${target.id}`,
      type: target.type,
      mode: modeOf(instance.mode),
      cnrId: target.properties?.cnr_id,
      value: (s) => (s.input === spec.input ? value : undefined),
      strings: () => [],
      modelProps: [],
      proxy: true,
    });
  }
  return out;
}

function collectApi(obj: Record<string, unknown>, file: string): RawNode[] {
  const parsed = new Map<string, z.infer<typeof ApiNode>>();
  for (const [id, v] of Object.entries(obj)) {
    const p = ApiNode.safeParse(v);
    if (!p.success) throw invalid(file, id, p.error);
    parsed.set(id, p.data);
  }
  /** Follows a link `[sourceId, slot]` to a primitive's literal value (one hop: primitives have no inputs). */
  const literal = (v: unknown): unknown => {
    if (!Array.isArray(v) || v.length !== 2) return v;
    const src = parsed.get(String(v[0]));
    if (!src || !src.class_type.startsWith("Primitive")) return undefined;
    return src.inputs.value;
  };
  return [...parsed].map(([id, n]) => ({
    id,
    type: n.class_type,
    mode: "active" as const,
    title: n._meta?.title,
    value: (spec: LoaderInput) => literal(n.inputs[spec.input]),
    strings: () => Object.values(n.inputs).filter((v): v is string => typeof v === "string"),
    modelProps: [],
  }));
}

// ---------------------------------------------------------------------------------------------------------
// Classification: two passes so an ambiguous type can lean on the packs the rest of the workflow uses

const SUBGRAPH_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function classify(raws: RawNode[], resolver: NodePackResolver): AnalyzedNode[] {
  // A type marked with a pack on one node is that pack everywhere in the file (older saves lack the marks).
  const marked = new Map<string, { cnrId?: string; auxId?: string }>();
  for (const r of raws) {
    if ((r.cnrId || r.auxId) && !marked.has(r.type)) marked.set(r.type, { cnrId: r.cnrId, auxId: r.auxId });
  }
  const hintsOf = (
    r: RawNode,
  ) => (r.cnrId || r.auxId ? { cnrId: r.cnrId, auxId: r.auxId } : marked.get(r.type));
  const isContainer = (r: RawNode) => SUBGRAPH_ID.test(r.type) || /^workflow[>/]/.test(r.type);
  const real = raws.filter((r) => !r.proxy);

  const first = real.map((r) => (isContainer(r) ? null : resolver.resolve(r.type, hintsOf(r))));
  const otherPacks = new Set<string>();
  for (const res of first) {
    if (res?.kind === "custom" && res.package && !res.ambiguous) otherPacks.add(res.package);
  }

  return real.map((r, i) => {
    const node: AnalyzedNode = { id: r.id, type: r.type, package: null, kind: "frontend", mode: r.mode };
    if (r.title !== undefined) node.title = r.title;
    let res = first[i];
    if (res === null) return node;
    if (res.ambiguous) res = resolver.resolve(r.type, { ...hintsOf(r), otherPacks });
    node.kind = res.kind;
    node.package = res.package;
    if (res.candidates.length > 1) node.candidates = res.candidates;
    if (res.ambiguous) node.ambiguous = true;
    return node;
  });
}

// ---------------------------------------------------------------------------------------------------------
// Models

class ModelCollector {
  private readonly byKey = new Map<string, ModelRef>();

  add(ref: ModelRef): void {
    const key = `${ref.node_id}\0${ref.category}\0${ref.name}`;
    const had = this.byKey.get(key);
    if (!had) {
      this.byKey.set(key, ref);
      return;
    }
    had.url ??= ref.url;
    had.hash ??= ref.hash;
  }

  list(): ModelRef[] {
    return [...this.byKey.values()].map(cleanRef);
  }
}

/** The same reference without absent optional members (JSON output and TOML stay free of nulls). */
function cleanRef(m: ModelRef): ModelRef {
  const out: ModelRef = {
    name: m.name,
    category: m.category,
    node_id: m.node_id,
    node_type: m.node_type,
    optional: m.optional,
  };
  if (m.url) out.url = m.url;
  if (m.hash) out.hash = m.hash;
  return out;
}

function fromProperty(
  p: z.infer<typeof ModelProperty>,
  nodeId: string | null,
  nodeType: string | null,
  optional: boolean,
): ModelRef {
  const ref: ModelRef = {
    name: modelName(p.name),
    category: p.directory,
    node_id: nodeId,
    node_type: nodeType,
    optional,
  };
  if (p.url) ref.url = p.url;
  if (p.hash) {
    const algo = (p.hash_type ?? (p.hash.includes(":") ? "" : "sha256")).toLowerCase();
    ref.hash = algo ? `${algo}:${p.hash.toLowerCase()}` : p.hash.toLowerCase();
  }
  return ref;
}

function extractModels(raw: RawNode, out: ModelCollector, warnings: string[], file: string): void {
  const optional = raw.mode !== "active";
  for (const spec of MODEL_LOADERS[raw.type] ?? []) {
    const v = raw.value(spec);
    if (typeof v === "string" && !NOT_FILES.has(v.trim())) {
      out.add({
        name: modelName(v),
        category: spec.category,
        node_id: raw.id,
        node_type: raw.type,
        optional,
      });
    }
  }
  for (const [i, m] of raw.modelProps.entries()) {
    const p = ModelProperty.safeParse(m);
    if (p.success) out.add(fromProperty(p.data, raw.id, raw.type, optional));
    else {warnings.push(
        `${file}: node ${raw.id} properties.models[${i}] skipped: ${p.error.issues[0].message}`,
      );}
  }
  for (const s of raw.strings()) {
    if (!s.includes("embedding:")) continue;
    for (const match of s.matchAll(EMBEDDING)) {
      out.add({ name: match[1], category: "embeddings", node_id: raw.id, node_type: raw.type, optional });
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Summaries used by track, import and export

export interface WorkflowRequirements {
  /** Custom packs the workflow needs (registry ids or repository URLs), sorted. */
  packages: string[];
  /** Node types no index knows. */
  unknownTypes: string[];
  /** Types several packs claim, with their candidates. */
  ambiguous: { type: string; candidates: string[] }[];
  /** Model files the workflow loads (optional ones only when nothing else loads the same file). */
  models: ModelRef[];
}

export function requirements(a: WorkflowAnalysis): WorkflowRequirements {
  const packages = new Set<string>();
  const unknown = new Set<string>();
  const ambiguous = new Map<string, string[]>();
  for (const n of a.nodes) {
    if (n.kind === "custom" && n.package) packages.add(n.package);
    else if (n.kind === "unknown") unknown.add(n.type);
    else if (n.ambiguous) ambiguous.set(n.type, n.candidates ?? []);
  }
  const models = new Map<string, ModelRef>();
  for (const m of a.models) {
    const key = `${m.category}/${m.name}`;
    const had = models.get(key);
    if (!had || (had.optional && !m.optional) || (!had.url && m.url)) {
      const optional = m.optional && (had?.optional ?? true);
      models.set(key, { ...m, url: m.url ?? had?.url, hash: m.hash ?? had?.hash, optional });
    }
  }
  return {
    packages: [...packages].sort(),
    unknownTypes: [...unknown].sort(),
    ambiguous: [...ambiguous].map(([type, candidates]) => ({ type, candidates })),
    models: [...models.values()].map(cleanRef),
  };
}
