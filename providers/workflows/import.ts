/**
 * `workflow import`: reading what to import (a workflow bundle `.tar.gz`, the plain JSON export of earlier
 * versions, or a bare workflow; from a file or an http(s) URL, with the analysis size limits), and turning
 * a decided import plan into ONE desired-state change: the node packs (pinned like `node add`), the models
 * (entries like `model add`), the workflow file in `.cec/workflows/` and its tracked entry.
 */
import { basename, join } from "node:path";
import { DEFAULT_NET, fetchBytes, type NetSettings } from "../../lib/http.ts";
import { CdError, errorMessage } from "../../lib/errors.ts";
import { exists, removeIfExists } from "../../lib/fsx.ts";
import type { DesiredState } from "../../reconcile/desired.ts";
import type { TomlEdit } from "../../reconcile/pyproject_edit.ts";
import type { ModelSpec } from "../../reconcile/schema.ts";
import type { EnvPaths } from "../../reconcile/paths.ts";
import type { Settings } from "../../lib/settings.ts";
import { BundleManager } from "../bundles/bundle.ts";
import { buildModelEntry, keyFromFilename, parseAddSource, sourceOfInput } from "../models/add.ts";
import type { DownloadOptions } from "../models/download.ts";
import { sourceConfig, withoutCredentialsInUrls } from "../models/sources.ts";
import type { ModelIndex } from "../models/index_db.ts";
import { addEdits, parseNodeSpec, type ResolvedNode, resolveNodeSpec } from "../nodes/add.ts";
import type { RegistryClient } from "../nodes/registry.ts";
import { MAX_WORKFLOW_BYTES, parseWorkflowText, type WorkflowAnalysis } from "./analyze.ts";
import { type ImportManifest, unwrapImport } from "./bundle.ts";
import { workflowFromBytes } from "./embedded.ts";
import { CEC_PREFIX, nameOfRel } from "./files.ts";
import { type ImportPlan, type ModelItem, type NodeItem, sourceForUrl } from "./import_plan.ts";
import { relOfName, requiresOf, TRACKED } from "./track.ts";

export interface ImportSource {
  workflow: unknown;
  /** The workflow file's text as it will be stored (a bare file's bytes are kept as they are). */
  text: string;
  /** The name the source suggests (bundle / export name, else the file name). */
  name: string;
  manifest?: ImportManifest;
  format: "bundle" | "export-json" | "workflow" | "png" | "webp";
}

const GZIP = [0x1f, 0x8b];

async function download(source: string, net: NetSettings): Promise<Uint8Array> {
  const failed = (why: string) =>
    new CdError("WORKFLOW_DOWNLOAD_FAILED", `could not download ${source}: ${why}`, {
      hint: "check the URL and your network, or download the file and import it by path",
    });
  return await fetchBytes(source, {
    what: `downloading ${source}`,
    net,
    maxBytes: MAX_WORKFLOW_BYTES,
    failed: (status) => failed(`HTTP ${status}`),
    limited: (e) =>
      e.kind === "too-large"
        ? new CdError("WORKFLOW_TOO_LARGE", `${source}: more than ${MAX_WORKFLOW_BYTES} bytes`, {
          hint: "is this really a workflow file?",
        })
        : failed(e.message),
    unreachableHint: "check the URL and your network, or download the file and import it by path",
  });
}

async function readLocal(path: string): Promise<Uint8Array> {
  const st = await Deno.stat(path).catch(() => null);
  if (!st?.isFile) {
    throw new CdError("WORKFLOW_NOT_FOUND", `${path} does not exist`, {
      hint: "give a workflow JSON, a bundle made by 'comfydock workflow export', or an http(s) URL",
    });
  }
  if (st.size > MAX_WORKFLOW_BYTES) {
    throw new CdError("WORKFLOW_TOO_LARGE", `${path}: ${st.size} bytes is larger than the limit`, {
      hint: `workflows and workflow bundles are limited to ${MAX_WORKFLOW_BYTES / 1024 / 1024} MiB`,
    });
  }
  return await Deno.readFile(path);
}

/** The name a file or URL suggests: its last path part without `.json`, `.tar.gz` and the export suffix. */
function nameOfSource(source: string): string {
  const last = /^https?:\/\//i.test(source)
    ? new URL(source).pathname.split("/").at(-1) ?? ""
    : basename(source);
  return decodeURIComponent(last).replace(/\.(json|tar\.gz|tgz|png|webp)$/i, "").replace(
    /\.comfydock-workflow$/i,
    "",
  ) ||
    "imported";
}

async function readBundle(file: string, where: string): Promise<ImportSource> {
  const staging = await Deno.makeTempDir({ prefix: "comfydock-wf-import-" });
  const dir = join(staging, "bundle");
  try {
    const info = await new BundleManager().extractBundle(file, dir);
    const wf = info.manifest.workflow;
    if (info.manifest.kind !== "workflow" || !wf) {
      throw new CdError("WORKFLOW_NOT_A_WORKFLOW_BUNDLE", `${where} is an environment bundle`, {
        hint: `import an environment with 'comfydock import ${where}'`,
      });
    }
    const text = await Deno.readTextFile(join(dir, wf.file));
    return {
      workflow: parseWorkflowText(text, `${where}:${wf.file}`),
      text,
      name: wf.name,
      manifest: { nodes: wf.nodes, models: wf.models },
      format: "bundle",
    };
  } finally {
    await removeIfExists(staging);
  }
}

/** Reads a bundle, an earlier JSON export or a bare workflow, from a file or an http(s) URL. */
export async function readImportSource(
  source: string,
  net: NetSettings = DEFAULT_NET,
): Promise<ImportSource> {
  const remote = /^https?:\/\//i.test(source);
  const bytes = remote ? await download(source, net) : await readLocal(source);
  if (bytes[0] === GZIP[0] && bytes[1] === GZIP[1]) {
    if (!remote) return await readBundle(source, source);
    const tmp = await Deno.makeTempFile({ prefix: "comfydock-wf-", suffix: ".tar.gz" });
    try {
      await Deno.writeFile(tmp, bytes);
      return await readBundle(tmp, source);
    } finally {
      await removeIfExists(tmp);
    }
  }
  const { json, text, from } = workflowFromBytes(bytes, source);
  const unwrapped = unwrapImport(json);
  if (unwrapped.manifest) {
    return {
      workflow: unwrapped.workflow,
      text: JSON.stringify(unwrapped.workflow),
      name: unwrapped.name ?? nameOfSource(source),
      manifest: unwrapped.manifest,
      format: "export-json",
    };
  }
  // From an image the workflow is stored as its JSON text (the .cec copy is a workflow file, not a PNG).
  return { workflow: json, text, name: nameOfSource(source), format: from === "json" ? "workflow" : from };
}

/**
 * Refuses a name that is taken anywhere: tracked in `.cec`, a file in `.cec/workflows/`, or a file in
 * ComfyUI's workflows folder (nothing of the user's is ever overwritten). Returns the file and the name.
 */
export async function assertNameFree(
  paths: EnvPaths,
  desired: DesiredState,
  name: string,
): Promise<{ rel: string; name: string }> {
  const rel = relOfName(name);
  const clean = nameOfRel(rel);
  const where = desired.workflows[clean]
    ? `tracked in ${paths.pyproject}`
    : await exists(join(paths.cecWorkflows, rel))
    ? `at ${join(paths.cecWorkflows, rel)}`
    : await exists(join(paths.userWorkflows, rel))
    ? `in ComfyUI at ${join(paths.userWorkflows, rel)}`
    : null;
  if (where) {
    throw new CdError("WORKFLOW_EXISTS", `a workflow named '${clean}' already exists (${where})`, {
      hint: "import it under another name with --name NAME (nothing was changed)",
    });
  }
  return { rel, name: clean };
}

export interface Skipped {
  what: string;
  known: string;
  todo: string;
}

export interface ImportChange {
  edits: TomlEdit[];
  files: { path: string; content: string }[];
  nodes: ResolvedNode[];
  models: { key: string; spec: ModelSpec; note: string }[];
  skipped: Skipped[];
  warnings: string[];
}

/** What the user can do about a node item that is not added. */
function skippedNode(item: Extract<NodeItem, { status: "choose" | "unresolved" }>): Skipped {
  const types = item.types.join(", ");
  return item.status === "choose"
    ? {
      what: `node type ${types}`,
      known: `${item.reason}: ${item.candidates.join(", ")}`,
      todo: `add the right one with 'comfydock node add ${item.candidates[0]}' (or another candidate)`,
    }
    : {
      what: `node type ${types}`,
      known: item.reason,
      todo: "'comfydock node index update' then import again, or 'comfydock node find " +
        `${item.types[0]}' and 'comfydock node add ID'`,
    };
}

function skippedModel(item: Extract<ModelItem, { status: "choose" | "unresolved" }>): Skipped {
  return item.status === "choose"
    ? {
      what: `model ${item.category}/${item.name}`,
      known: `${item.reason}: ${item.candidates.map((c) => c.path).join(", ")}`,
      todo: `add the right file with 'comfydock model add PATH --category ${item.category}'`,
    }
    : {
      what: `model ${item.category}/${item.name}`,
      known: item.reason,
      todo: `'comfydock model add URL|hf:REPO/FILE|PATH --category ${item.category}' once you have a source` +
        " (or 'comfydock model scan FOLDER' if it is on this machine)",
    };
}

function uniqueKey(wanted: string, taken: Set<string>): string {
  const base = /^[A-Za-z0-9_-]+$/.test(wanted) ? wanted : keyFromFilename(wanted);
  let key = base;
  for (let i = 2; taken.has(key); i++) key = `${base}_${i}`;
  taken.add(key);
  return key;
}

export interface BuildContext {
  paths: EnvPaths;
  settings: Settings;
  desired: DesiredState;
  registry: RegistryClient;
  index: ModelIndex;
  download?: DownloadOptions;
  log?: (line: string) => void;
}

/**
 * Resolves every `add` / `local` / `manifest` / `download` item to a pin or a model entry (registry
 * archives and plain-URL models are fetched into the workspace caches; nothing in the environment or `.cec`
 * changes) and builds the one change. An item that fails to resolve is skipped and reported, not fatal.
 */
export async function buildImportChange(
  plan: ImportPlan,
  opts: { name: string; rel: string; text: string; analysis: WorkflowAnalysis },
  ctx: BuildContext,
): Promise<ImportChange> {
  const out: ImportChange = { edits: [], files: [], nodes: [], models: [], skipped: [], warnings: [] };
  for (const item of plan.nodes) {
    if (item.status === "choose" || item.status === "unresolved") {
      out.skipped.push(skippedNode(item));
      continue;
    }
    if (item.status !== "add") continue;
    try {
      const r = await resolveNodeSpec(parseNodeSpec(item.spec), {
        net: ctx.settings,
        paths: ctx.paths,
        registry: ctx.registry,
        log: ctx.log,
      });
      if (ctx.desired.nodes[r.id] || out.nodes.some((n) => n.id === r.id)) continue;
      out.nodes.push(r);
      out.warnings.push(...r.warnings);
    } catch (e) {
      out.skipped.push({
        what: `node pack ${item.pack}`,
        known: `${item.types.length ? `provides ${item.types.join(", ")}; ` : ""}${errorMessage(e)}`,
        todo: `'comfydock node add ${item.spec}' once the problem is fixed`,
      });
    }
  }

  const taken = new Set(Object.keys(ctx.desired.models));
  for (const item of plan.models) {
    if (item.status === "choose" || item.status === "unresolved") {
      out.skipped.push(skippedModel(item));
      continue;
    }
    if (item.status === "present") continue;
    try {
      let spec: ModelSpec;
      let note: string;
      let key: string;
      if (item.status === "manifest") {
        key = uniqueKey(item.key, taken);
        // The bundle's own sources, minus any credentials its author left in a URL.
        spec = { ...item.spec, sources: withoutCredentialsInUrls(item.spec.sources) };
        note = item.local ? `on this machine: ${item.local}` : "hash and sources from the bundle";
      } else if (item.status === "local" && item.sha256) {
        key = uniqueKey(keyFromFilename(item.name), taken);
        spec = {
          hash: `sha256:${item.sha256}`,
          sha256: item.sha256,
          size: item.size,
          category: item.category,
          filename: item.name,
          sources: [],
        };
        note = `on this machine: ${item.path} (found by ${item.via})`;
      } else {
        // A local file only quick-hashed so far is hashed now; a download source becomes an entry the
        // way `model add` makes one (Hub/Civitai publish the hash; a plain URL is fetched into the store).
        const input = item.status === "local"
          ? { kind: "path" as const, path: item.path }
          : parseAddSource(item.source);
        const entry = await buildModelEntry(input, { category: item.category }, {
          ws: ctx.paths.workspace,
          settings: ctx.settings,
          index: ctx.index,
          download: ctx.download,
          // A token in a workflow's model URL is its author's: never kept, never used.
          credentials: { kind: "drop" },
        });
        key = uniqueKey(entry.key, taken);
        spec = entry.spec;
        note = entry.note;
      }
      // The workflow names the file (maybe in a subfolder): that is where ComfyUI will look for it.
      spec = { ...spec, category: item.category, filename: item.name };
      // Found here by name, but another machine needs a download: keep the URL the workflow gives (without
      // any credentials its author left in it).
      const fromUrl = spec.sources.length === 0 && item.url
        ? sourceOfInput(parseAddSource(sourceForUrl(item.url, sourceConfig(ctx.settings))))
        : null;
      if (fromUrl) spec = { ...spec, sources: withoutCredentialsInUrls([fromUrl]) };
      out.models.push({ key, spec, note });
    } catch (e) {
      out.skipped.push({
        what: `model ${item.category}/${item.name}`,
        known: errorMessage(e),
        todo: `'comfydock model add ${
          item.status === "download" ? item.source : "SOURCE"
        } --category ${item.category}' once the problem is fixed`,
      });
    }
  }

  out.edits.push(...addEdits(ctx.desired.pyproject, out.nodes));
  for (const m of out.models) out.edits.push({ path: ["tool", "comfydock", "models", m.key], value: m.spec });
  const after = {
    ...ctx.desired,
    models: { ...ctx.desired.models, ...Object.fromEntries(out.models.map((m) => [m.key, m.spec])) },
  };
  out.edits.push({
    path: [...TRACKED, opts.name],
    value: { file: CEC_PREFIX + opts.rel, requires: requiresOf(opts.analysis, after) },
  });
  out.files.push({ path: CEC_PREFIX + opts.rel, content: opts.text });
  return out;
}
