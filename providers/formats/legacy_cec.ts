/**
 * `.cec/pyproject.toml` of ComfyGit (`[tool.comfygit]`, comfyhub-org/comfygit) and of ComfyDock 1.x (the
 * same tool before its rename: `[tool.comfydock]` without `comfyui_commit`), converted to this schema. Pure.
 *
 * Their layout (read from comfygit_core's `EnvironmentManifestSnapshot`, `NodeInfo`, `ManifestModel`,
 * `ManifestWorkflowModel` and 1.x's `PyprojectManager`):
 *   [tool.comfygit]            schema_version, comfyui_version, comfyui_version_type (release|branch|commit),
 *                              comfyui_repository, comfyui_commit_sha, python_version, manifest_state,
 *                              sync.extras
 *   [tool.comfygit.nodes.<id>] name (the custom_nodes folder), registry_id, repository, version (registry
 *                              version, git commit or "dev"), download_url, source (registry|git|development|
 *                              bundled), dependency_sources, criticality, branch, pinned_commit, bundle_path
 *   [tool.comfygit.models.<short hash>]  filename, size, relative_path, category, sources (URLs), criticality
 *   [tool.comfygit.workflows.<name>]     path, nodes, models (per-reference tables), custom_node_map,
 *                              execution_contract
 *   [dependency-groups]        1.x names a node's group `<name>-<sha256(repository or id)[:8]>`
 * 1.x has only comfyui_version (a tag, branch or commit), python_version, nodes, models, workflows.
 *
 * Every key under the tool table gets a report line; the rules are tables keyed by the key's name, so a key
 * is easy to add. Everything outside the tool table ([project], [tool.uv], other groups) is kept as it is.
 */
import { createHash } from "node:crypto";
import type { ModelSource, ModelSpec, NodeSpec, WorkflowSpec } from "../../reconcile/schema.ts";
import { hfSourceFromUrl } from "../models/find_sources.ts";
import { keyFromFilename } from "../models/add.ts";
import { MappingReport } from "./report.ts";

export type LegacyKind = "comfygit" | "comfydock1";

type Table = Record<string, unknown>;

const isTable = (v: unknown): v is Table => !!v && typeof v === "object" && !Array.isArray(v);
const SHA = /^[0-9a-f]{40}$/;

/** Which legacy layout a parsed pyproject has, or null (ours, or not a `.cec` at all). */
export function legacyKind(raw: unknown): LegacyKind | null {
  if (!isTable(raw) || !isTable(raw.tool)) return null;
  if (isTable(raw.tool.comfygit)) return "comfygit";
  const cd = raw.tool.comfydock;
  // Our schema requires comfyui_commit; 1.x never wrote one.
  if (isTable(cd) && !("comfyui_commit" in cd)) return "comfydock1";
  return null;
}

export interface LegacyContext {
  /** The environment name the converted project gets. */
  name: string;
  /** sha256 of a file with this name (and size) in the local model index, if one was fully hashed. */
  findModel: (filename: string, size: number | undefined) => string | null;
  hfEndpoint: string;
}

export interface LegacyConversion {
  kind: LegacyKind;
  /** The converted document; `tool.comfydock` lacks the ComfyUI pin, which the caller resolves. */
  doc: Table;
  comfyui: { version?: string; versionType?: string; commit?: string; repository?: string };
  /** `X.Y`, when the file names one. */
  pythonVersion?: string;
  /** No torch index in `[tool.uv]` (ComfyGit keeps the backend outside the file): the caller adds one. */
  needsTorchIndex: boolean;
  report: MappingReport;
}

interface State {
  prefix: string;
  ctx: LegacyContext;
  report: MappingReport;
  out: LegacyConversion;
  nodes: Record<string, NodeSpec>;
  models: Record<string, ModelSpec>;
  /** legacy model hash -> our model key */
  modelKeys: Map<string, string>;
  workflows: Record<string, WorkflowSpec>;
  /** dependency group -> node id it belongs to */
  groupOwner: Map<string, string>;
  groups: Table;
}

type Rule = (value: unknown, key: string, st: State) => void;

const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

// ---------------------------------------------------------------------------------------------------------
// The tool table

const TOP: Record<string, Rule> = {
  schema_version: (v, k, st) =>
    st.report.notMapped(
      `${st.prefix}.${k} = ${JSON.stringify(v)}`,
      "ComfyGit's own format version; not needed",
    ),
  comfyui_version: (v, k, st) => {
    st.out.comfyui.version = str(v);
    st.report.mapped(`${st.prefix}.${k} = ${JSON.stringify(v)}`, "tool.comfydock.comfyui_version (resolved)");
  },
  comfyui_version_type: (v, k, st) => {
    st.out.comfyui.versionType = str(v);
    st.report.mapped(`${st.prefix}.${k} = ${JSON.stringify(v)}`, "used to resolve comfyui_version");
  },
  comfyui_commit_sha: (v, k, st) => {
    st.out.comfyui.commit = str(v);
    st.report.mapped(`${st.prefix}.${k}`, "tool.comfydock.comfyui_commit");
  },
  comfyui_repository: (v, k, st) => {
    st.out.comfyui.repository = str(v);
    st.report.mapped(`${st.prefix}.${k} = ${JSON.stringify(v)}`, "tool.comfydock.comfyui_url");
  },
  python_version: (v, k, st) => {
    const m = /^(\d+)\.(\d+)/.exec(String(v ?? ""));
    if (!m) return st.report.notMapped(`${st.prefix}.${k} = ${JSON.stringify(v)}`, "not a Python version");
    st.out.pythonVersion = `${m[1]}.${m[2]}`;
    st.report.mapped(
      `${st.prefix}.${k} = ${JSON.stringify(v)}`,
      `tool.comfydock.python_version = "${m[1]}.${m[2]}"`,
    );
  },
  manifest_state: (v, k, st) =>
    st.report.notMapped(
      `${st.prefix}.${k} = ${JSON.stringify(v)}`,
      "ComfyGit's local/exportable marker; ComfyDock checks exports as they are made",
    ),
  sync: (v, k, st) =>
    st.report.notMapped(
      `${st.prefix}.${k} = ${JSON.stringify(v)}`,
      "uv extras ComfyGit synced; ComfyDock syncs every dependency group",
    ),
  torch_backend: (v, k, st) => {
    st.report.mapped(`${st.prefix}.${k} = ${JSON.stringify(v)}`, "tool.comfydock.torch_backend");
  },
  nodes: (v, k, st) => {
    if (!isTable(v)) return st.report.notMapped(`${st.prefix}.${k}`, "not a table");
    for (const [id, n] of Object.entries(v)) convertNode(id, n, st);
  },
  models: (v, k, st) => {
    if (!isTable(v)) return st.report.notMapped(`${st.prefix}.${k}`, "not a table");
    for (const [hash, m] of Object.entries(v)) convertModel(hash, m, st);
  },
  workflows: (v, k, st) => {
    if (!isTable(v)) return st.report.notMapped(`${st.prefix}.${k}`, "not a table");
    for (const [name, w] of Object.entries(v)) convertWorkflow(name, w, st);
  },
};

// ---------------------------------------------------------------------------------------------------------
// Nodes

/** 1.x's dependency-group name of a node (`NodeHandler.generate_group_name`). */
export function legacyGroupName(id: string, n: Table): string {
  const base = (str(n.name) ?? str(n.registry_id) ?? id).toLowerCase().replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  const hashSource = str(n.repository) ?? str(n.registry_id) ?? str(n.name) ?? id;
  return `${base}-${createHash("sha256").update(hashSource).digest("hex").slice(0, 8)}`;
}

/** Node fields handled by the source rules below, and what becomes of the rest. */
const NODE_FIELDS: Record<string, (n: Table, item: string, st: State) => void> = {
  name: () => {},
  registry_id: () => {},
  repository: () => {},
  version: () => {},
  download_url: () => {},
  source: () => {},
  branch: () => {},
  pinned_commit: () => {},
  bundle_path: () => {},
  dependency_sources: (n, item, st) =>
    st.report.kept(
      `${item}.dependency_sources = ${JSON.stringify(n.dependency_sources)}`,
      "the uv sources they name stay in [tool.uv.sources]",
    ),
  criticality: (n, item, st) => {
    if (n.criticality === "optional") {
      st.report.notMapped(
        `${item}.criticality = "optional"`,
        "ComfyDock installs every node in .cec; remove the node if it is not wanted",
      );
    }
  },
};

function convertNode(id: string, raw: unknown, st: State): void {
  const item = `${st.prefix}.nodes.${id}`;
  if (!isTable(raw)) return st.report.notMapped(item, "not a table");
  const n = raw;
  for (const f of Object.keys(n)) {
    const rule = NODE_FIELDS[f];
    if (rule) rule(n, item, st);
    else st.report.notMapped(`${item}.${f}`, "not a node field of ComfyGit's format");
  }
  const dir = str(n.name);
  const directory = dir && dir !== id ? { directory: dir } : {};
  const source = str(n.source) ?? "unknown";
  const version = str(n.version);
  const commit = [version, str(n.pinned_commit)].find((c) => c && SHA.test(c));
  let spec: NodeSpec | null = null;
  let what = "";
  if (source === "registry") {
    if (!version) return st.report.notMapped(item, "a registry node without a version");
    const url = str(n.download_url);
    spec = {
      source: "registry",
      version,
      ...(str(n.registry_id) && n.registry_id !== id ? { registry_id: str(n.registry_id) } : {}),
      ...(str(n.repository) ? { repository: str(n.repository) } : {}),
      ...(url && URL.canParse(url) ? { download_url: url } : {}),
      ...directory,
    };
    what = `registry ${version}`;
  } else if (source === "git" || (source === "development" && str(n.repository) && commit)) {
    const repository = str(n.repository);
    if (!repository) return st.report.notMapped(item, "a git node without a repository");
    if (!commit) {
      return st.report.notMapped(
        item,
        `a git node pinned to '${version ?? "nothing"}', not a full commit: add it with ` +
          `'comfydock node add ${repository}@REF'`,
      );
    }
    spec = {
      source: "git",
      repository,
      commit,
      ...(str(n.branch) ? { ref: str(n.branch) } : {}),
      ...(str(n.registry_id) ? { registry_id: str(n.registry_id) } : {}),
      ...directory,
    };
    what = source === "git"
      ? `git ${commit.slice(0, 12)}`
      : `git ${commit.slice(0, 12)} (a development node shared by its pinned commit)`;
  } else if (source === "development") {
    const path = `ComfyUI/custom_nodes/${dir ?? id}`;
    spec = { source: "dev", path, ...directory };
    what = `dev node at ${path} (its code is not in .cec: put it there)`;
  } else if (source === "bundled") {
    return st.report.notMapped(
      item,
      `a ComfyGit bundled node (${str(n.bundle_path) ?? "no bundle_path"}): its code lives in ComfyGit's ` +
        "portable bundle; copy it into custom_nodes and run 'comfydock capture'",
    );
  } else {
    return st.report.notMapped(
      item,
      `source '${source}' is not one ComfyDock knows (registry, git, development)`,
    );
  }
  st.nodes[id] = spec;
  for (const g of [legacyGroupName(id, n), id]) if (g in st.groups) st.groupOwner.set(g, id);
  st.report.mapped(item, `[tool.comfydock.nodes.${id}] ${what}`);
}

// ---------------------------------------------------------------------------------------------------------
// Models

function modelSource(url: string, ctx: LegacyContext): ModelSource | null {
  const hf = hfSourceFromUrl(url, ctx.hfEndpoint);
  if (hf) return hf;
  const civitai = /^https?:\/\/(?:www\.)?civitai\.com\/api\/download\/models\/(\d+)/.exec(url);
  if (civitai) return { type: "civitai", version_id: Number(civitai[1]) };
  return URL.canParse(url) ? { type: "url", url } : null;
}

const MODEL_FIELDS = new Set(["filename", "size", "relative_path", "category", "sources", "criticality"]);

function convertModel(hash: string, raw: unknown, st: State): void {
  const item = `${st.prefix}.models.${hash}`;
  if (!isTable(raw)) return st.report.notMapped(item, "not a table");
  for (const f of Object.keys(raw)) {
    if (!MODEL_FIELDS.has(f)) st.report.notMapped(`${item}.${f}`, "not a model field of ComfyGit's format");
  }
  const rel = (str(raw.relative_path) ?? str(raw.filename) ?? "").replace(/\\/g, "/").replace(/^\/+/, "");
  const parts = rel.split("/").filter(Boolean);
  const category = parts.length > 1 ? parts[0] : str(raw.category);
  const filename = parts.length > 1 ? parts.slice(1).join("/") : str(raw.filename);
  const size = typeof raw.size === "number" ? raw.size : undefined;
  const urls = Array.isArray(raw.sources)
    ? raw.sources.filter((s): s is string => typeof s === "string")
    : [];
  const sources = urls.map((u) => modelSource(u, st.ctx)).filter((s): s is ModelSource => s !== null);
  if (!category || !filename) return st.report.notMapped(item, "no category or file name");
  const sha256 = st.ctx.findModel(filename.split("/").pop()!, size);
  if (!sha256) {
    return st.report.notMapped(
      item,
      `${category}/${filename}${
        size !== undefined ? ` (${size} bytes)` : ""
      }: ComfyGit identifies models by a ` +
        "sampled short hash, which cannot verify a download" +
        (urls.length
          ? `; add it with 'comfydock model add ${urls[0]} --category ${category}'`
          : `; scan the folder that holds it ('comfydock model scan PATH') and import again, or ` +
            `'comfydock model add PATH'`),
    );
  }
  let key = keyFromFilename(filename);
  for (let i = 2; key in st.models; i++) key = `${keyFromFilename(filename)}_${i}`;
  st.models[key] = {
    sha256,
    ...(size !== undefined ? { size } : {}),
    category,
    filename,
    sources,
  } as ModelSpec;
  st.modelKeys.set(hash, key);
  if (raw.criticality === "optional") {
    st.report.notMapped(`${item}.criticality = "optional"`, "every model in .cec is installed");
  }
  st.report.mapped(
    item,
    `[tool.comfydock.models.${key}] (sha256 from the local model index${
      sources.length ? `, ${sources.length} source(s)` : ""
    })`,
  );
}

// ---------------------------------------------------------------------------------------------------------
// Workflows

const WORKFLOW_FIELDS: Record<string, (w: Table, item: string, st: State) => void> = {
  path: () => {},
  nodes: () => {},
  models: () => {},
  custom_node_map: (w, item, st) =>
    st.report.notMapped(
      `${item}.custom_node_map`,
      "ComfyGit's per-workflow node-type choices; ComfyDock maps node types through its node index " +
        `(${Object.keys(isTable(w.custom_node_map) ? w.custom_node_map : {}).length} entries)`,
    ),
  execution_contract: (_w, item, st) =>
    st.report.notMapped(`${item}.execution_contract`, "ComfyGit's run contract; no equivalent"),
};

function convertWorkflow(name: string, raw: unknown, st: State): void {
  const item = `${st.prefix}.workflows.${name}`;
  if (!isTable(raw)) return st.report.notMapped(item, "not a table");
  for (const f of Object.keys(raw)) {
    const rule = WORKFLOW_FIELDS[f];
    if (rule) rule(raw, item, st);
    else st.report.notMapped(`${item}.${f}`, "not a workflow field of ComfyGit's format");
  }
  const file = (str(raw.path) ?? `workflows/${name}.json`).replace(/\\/g, "/");
  const nodes = Array.isArray(raw.nodes) ? raw.nodes.filter((n): n is string => typeof n === "string") : [];
  const models: string[] = [];
  for (const m of Array.isArray(raw.models) ? raw.models : []) {
    if (!isTable(m)) continue;
    const hash = str(m.hash);
    const key = hash ? st.modelKeys.get(hash) : undefined;
    if (key) models.push(key);
    else if (str(m.filename)) models.push(`${str(m.category) ?? "unknown"}/${str(m.filename)}`);
  }
  st.workflows[name] = {
    file: file.startsWith("workflows/") ? file : `workflows/${file}`,
    requires: { nodes, models: [...new Set(models)].sort(), python: [] },
  };
  st.report.mapped(
    item,
    `[tool.comfydock.workflows.tracked.${name}] (${nodes.length} node pack(s), ${models.length} model(s))`,
  );
}

// ---------------------------------------------------------------------------------------------------------

function hasTorchIndex(uv: unknown): boolean {
  if (!isTable(uv)) return false;
  const indexes = Array.isArray(uv.index) ? uv.index : [];
  return indexes.some((i) =>
    isTable(i) && typeof i.url === "string" && /pytorch|torch/i.test(i.url + (i.name ?? ""))
  );
}

/** Converts a legacy pyproject (parsed TOML). `raw` is not modified. */
export function convertLegacyPyproject(raw: Table, ctx: LegacyContext): LegacyConversion {
  const kind = legacyKind(raw)!;
  const tool = raw.tool as Table;
  const legacy = (kind === "comfygit" ? tool.comfygit : tool.comfydock) as Table;
  const prefix = `tool.${kind === "comfygit" ? "comfygit" : "comfydock"}`;
  const report = new MappingReport();
  const out: LegacyConversion = {
    kind,
    doc: {},
    comfyui: {},
    needsTorchIndex: !hasTorchIndex(tool.uv),
    report,
  };
  const groups: Table = isTable(raw["dependency-groups"]) ? { ...raw["dependency-groups"] } : {};
  const st: State = {
    prefix,
    ctx,
    report,
    out,
    nodes: {},
    models: {},
    modelKeys: new Map(),
    workflows: {},
    groupOwner: new Map(),
    groups,
  };
  // Models before workflows (their references name model keys); the rest in file order.
  const order = Object.keys(legacy).sort((a, b) => Number(b === "models") - Number(a === "models"));
  for (const k of order) {
    const rule = TOP[k];
    if (rule) rule(legacy[k], k, st);
    else report.notMapped(`${prefix}.${k}`, "not a key of ComfyGit's format");
  }

  const renamed: Table = {};
  for (const [g, reqs] of Object.entries(groups)) {
    const owner = st.groupOwner.get(g);
    if (owner && owner !== g) {
      renamed[owner] = reqs;
      report.mapped(`dependency-groups.${g}`, `dependency-groups.${owner} (the node's id names its group)`);
    } else {
      renamed[g] = reqs;
      report.kept(`dependency-groups.${g}`, "as it is");
    }
  }
  const project = isTable(raw.project) ? { ...raw.project } : {};
  if (project.name !== ctx.name) {
    report.mapped(`project.name = ${JSON.stringify(project.name)}`, `"${ctx.name}" (the environment's name)`);
  }
  project.name = ctx.name;
  for (const k of Object.keys(raw)) {
    if (!["project", "tool", "dependency-groups"].includes(k)) report.kept(k, "as it is");
  }
  for (const k of Object.keys(tool)) {
    if (k !== "comfygit" && k !== "comfydock") report.kept(`tool.${k}`, "as it is");
  }
  const newTool: Table = { ...tool };
  delete newTool.comfygit;
  newTool.comfydock = {
    version: "1",
    ...(isTable(legacy) && str(legacy.torch_backend) ? { torch_backend: str(legacy.torch_backend) } : {}),
    nodes: st.nodes,
    models: st.models,
    workflows: { tracked: st.workflows },
  };
  out.doc = { ...raw, project, "dependency-groups": renamed, tool: newTool };
  return out;
}
