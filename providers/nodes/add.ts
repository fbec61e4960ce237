/**
 * `node add` / `node update` / `node remove` as desired-state edits: a SPEC is parsed (registry
 * id[@version] | git URL[@ref] | path with --dev), resolved to an exact pin (registry version + archive
 * sha256, or a full git commit), the pack's requirements are read from its files, and the result is a set
 * of pyproject edits: `[tool.comfydock.nodes.<id>]` and `[dependency-groups].<id>`. Nothing here writes
 * `.cec`: the caller hands the edits to changeDesired, which re-locks with uv before anything is written.
 * The archive downloaded to read requirements lands in the content-addressed store, so the apply that
 * follows installs offline.
 */
import { basename, isAbsolute, join, relative, resolve } from "node:path";
import { CdError } from "../../lib/errors.ts";
import { exists } from "../../lib/fsx.ts";
import { isWithin, segmentProblem } from "../../lib/safe_path.ts";
import { urlCredentials } from "../../lib/redact.ts";
import type { TomlEdit } from "../../reconcile/pyproject_edit.ts";
import type { DesiredState } from "../../reconcile/desired.ts";
import { type NodeSpec, type Pyproject, specEntryName } from "../../reconcile/schema.ts";
import { findDesiredNode } from "../workflows/bundle.ts";
import type { EnvPaths } from "../../reconcile/paths.ts";
import type { NetSettings } from "../../lib/http.ts";
import { fetchArchive, readZipFiles } from "./archive.ts";
import { describeDirty, showFile } from "../git/git.ts";
import { ensureMirror, fetchMirror, resolveRef } from "../git/mirror.ts";
import { cecCopy, downloadNodeFile, fileNameOf } from "./file_node.ts";
import { folderFor } from "./diff.ts";
import { normaliseRepo } from "./node_index.ts";
import { fileNodeId, observeNodes } from "./observe.ts";
import {
  assertUsableVersion,
  isBadStatus,
  type NodeVersion,
  type RegistryClient,
  statusWord,
} from "./registry.ts";
import { folderReader, nodeRequirements } from "./requirements.ts";
import type { Progress } from "../../lib/progress.ts";

export type ParsedSpec =
  | { kind: "registry"; id: string; version?: string }
  | { kind: "git"; url: string; ref?: string }
  | { kind: "file"; url: string }
  | { kind: "dev"; path: string };

const URL_LIKE = /^(https?|ssh|git|file):\/\/|^git@[^:]+:/;

/** Parses one SPEC of `node add`. */
export function parseNodeSpec(raw: string, opts: { dev?: boolean } = {}): ParsedSpec {
  const s = raw.trim();
  if (!s) {
    throw new CdError("NODE_SPEC_INVALID", "empty node spec", {
      hint: "give a registry id, a git URL or a path",
    });
  }
  if (opts.dev) return { kind: "dev", path: s };
  // A single .py file served over HTTP: how ComfyUI-Manager installs single-file nodes ("copy").
  if (/^https?:\/\//.test(s) && fileNameOf(s).endsWith(".py")) return { kind: "file", url: s };
  if (URL_LIKE.test(s) || s.endsWith(".git")) {
    // URL@ref: the '@' must come after the last '/', so 'git@host:owner/repo' keeps its user part.
    const m = /^(.*\/[^/@]+)@([^/@]+)$/.exec(s);
    return m ? { kind: "git", url: m[1], ref: m[2] } : { kind: "git", url: s };
  }
  if (s.startsWith(".") || s.startsWith("/") || s.includes("/")) {
    throw new CdError("NODE_SPEC_INVALID", `'${s}' looks like a path`, {
      hint: `add a local node you develop with 'comfydock node add ${s} --dev'`,
    });
  }
  const at = s.lastIndexOf("@");
  const id = at > 0 ? s.slice(0, at) : s;
  const version = at > 0 ? s.slice(at + 1) : undefined;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(id) || version === "") {
    throw new CdError("NODE_SPEC_INVALID", `'${s}' is not a registry id[@version], a git URL or a path`, {
      hint: "examples: comfyui-impact-pack, comfyui-impact-pack@8.1.0, https://github.com/owner/repo@v1.0",
    });
  }
  return version ? { kind: "registry", id, version } : { kind: "registry", id };
}

export interface ResolvedNode {
  id: string;
  spec: NodeSpec;
  requirements: string[];
  warnings: string[];
  /** One line for humans: what was pinned. */
  summary: string;
}

export interface ResolveContext {
  paths: EnvPaths;
  registry: RegistryClient;
  /** Timeouts and download bounds for the archive (default: the documented defaults). */
  net?: NetSettings;
  log?: (line: string) => void;
  /** Shows a git clone (git's own meters). */
  progress?: Progress;
}

async function resolveRegistry(
  p: { id: string; version?: string },
  ctx: ResolveContext,
): Promise<ResolvedNode> {
  const node = await ctx.registry.getNode(p.id);
  const id = node.id; // the registry may redirect a differently spelled id to the canonical one
  let version: NodeVersion;
  if (p.version) version = await ctx.registry.getVersion(id, p.version);
  else if (node.latest_version && !isBadStatus(node.latest_version.status, "version")) {
    version = node.latest_version;
  } else {
    const usable = (await ctx.registry.listVersions(id)).find((v) => !isBadStatus(v.status, "version"));
    if (!usable) {
      throw new CdError("REGISTRY_NO_VERSION", `node '${id}' has no installable version in the registry`, {
        hint: node.repository
          ? `install it from git instead: comfydock node add ${node.repository}`
          : undefined,
      });
    }
    version = usable;
  }
  assertUsableVersion(id, version);
  const label = `node '${id}' ${version.version}`;
  ctx.log?.(`downloading ${label}`);
  const archive = await fetchArchive(ctx.paths.workspace.nodeStore, {
    url: version.downloadUrl,
    label,
    net: ctx.net,
  });
  const files = await readZipFiles(
    archive.bytes,
    label,
    (path) => ["requirements.txt", "pyproject.toml", "install.py"].includes(path),
  );
  const dec = new TextDecoder();
  const reqs = await nodeRequirements(
    id,
    (name) => Promise.resolve(files.has(name) ? dec.decode(files.get(name)) : null),
    `ComfyUI/custom_nodes/${id}`,
  );
  const warnings = [...reqs.warnings];
  if (version.deprecated) {
    warnings.push(`${id}: version ${version.version} is marked deprecated by its author`);
  }
  const spec: NodeSpec = {
    source: "registry",
    ...(node.name ? { name: node.name } : {}),
    version: version.version,
    ...(node.repository ? { repository: node.repository } : {}),
    sha256: archive.sha256,
    ...(version.downloadUrl ? { download_url: version.downloadUrl } : {}),
  };
  return {
    id,
    spec,
    requirements: reqs.requirements,
    warnings,
    summary: `${id} ${version.version} (registry)`,
  };
}

/** The registry id of a repository URL, when the registry knows the repository (null when unsure). */
async function registryIdFor(url: string, registry: RegistryClient): Promise<string | null> {
  try {
    const want = normaliseRepo(url);
    const hits = await registry.searchByRepository(url);
    return hits.find((n) => n.repository && normaliseRepo(n.repository) === want)?.id ?? null;
  } catch {
    // The registry is optional for git nodes: without it the id comes from the repository name.
    return null;
  }
}

async function resolveGit(p: { url: string; ref?: string }, ctx: ResolveContext): Promise<ResolvedNode> {
  ctx.log?.(`fetching ${p.url}`);
  const mirror = await ensureMirror(ctx.paths.workspace.gitMirrors, p.url, { progress: ctx.progress });
  // A branch moves: what it names now is what gets pinned.
  await fetchMirror(mirror, ctx.progress);
  const commit = await resolveRef(mirror, p.ref);
  const registryId = /^(https?|ssh):\/\/|^git@/.test(p.url) || p.url.startsWith("file://")
    ? await registryIdFor(p.url, ctx.registry)
    : null;
  const id = registryId ?? basename(p.url.replace(/\/+$/, "")).replace(/\.git$/, "").toLowerCase();
  const reqs = await nodeRequirements(
    id,
    (name) => showFile(mirror.dir, commit, name),
    `ComfyUI/custom_nodes/${id}`,
  );
  const spec: NodeSpec = {
    source: "git",
    repository: p.url,
    commit,
    ...(p.ref ? { ref: p.ref } : {}),
    ...(registryId ? { registry_id: registryId } : {}),
  };
  return {
    id,
    spec,
    requirements: reqs.requirements,
    warnings: reqs.warnings,
    summary: `${id} ${commit.slice(0, 12)}${p.ref ? ` (${p.ref})` : ""} (git)`,
  };
}

async function resolveDev(p: { path: string }, ctx: ResolveContext): Promise<ResolvedNode> {
  // A relative path is taken from the current directory, else from the environment's root (so the
  // 'ComfyUI/custom_nodes/x' that plans print works from anywhere).
  const here = resolve(p.path);
  const inEnv = resolve(ctx.paths.root, p.path);
  const abs = !isAbsolute(p.path) && !(await exists(here)) && await exists(inEnv) ? inEnv : here;
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(abs);
  } catch {
    throw new CdError("NODE_PATH_NOT_FOUND", `${abs} does not exist`, {
      hint: "give the folder of your node",
    });
  }
  if (!st.isDirectory) {
    throw new CdError("NODE_PATH_NOT_DIR", `${abs} is not a folder`, {
      hint: "give the folder of your node",
    });
  }
  const id = basename(abs).toLowerCase();
  const rel = relative(ctx.paths.root, abs);
  // Inside the environment: stored relative, so the environment can move; elsewhere: absolute.
  const path = !rel.startsWith("..") && !isAbsolute(rel) ? rel : abs;
  const reqs = await nodeRequirements(id, folderReader(abs), abs);
  return {
    id,
    spec: { source: "dev", path },
    requirements: reqs.requirements,
    warnings: reqs.warnings,
    summary: `${id} -> ${abs} (dev, linked; never overwritten)`,
  };
}

/** A single-file node from a URL: downloaded once (bounded), pinned by its sha256, kept in the store. */
async function resolveFile(p: { url: string }, ctx: ResolveContext): Promise<ResolvedNode> {
  // The url is recorded in .cec as it is: a token in it would be committed (and nothing could keep it apart).
  const creds = urlCredentials(p.url);
  if (creds) {
    throw new CdError(
      "NODE_URL_CREDENTIALS",
      `the URL carries credentials (${creds.where.join(", ")}); they would be committed to .cec`,
      {
        hint:
          "pass a URL that needs none, or download the file into custom_nodes/ and run 'comfydock capture'",
      },
    );
  }
  const filename = fileNameOf(p.url);
  const unsafe = segmentProblem(filename);
  if (unsafe) {
    throw new CdError("NODE_SPEC_INVALID", `${p.url}: the file name '${filename}' ${unsafe}`, {
      hint: "the URL must end with the node's plain file name (x.py)",
    });
  }
  const id = fileNodeId(filename);
  ctx.log?.(`downloading ${p.url}`);
  const { sha256 } = await downloadNodeFile(ctx.paths.workspace.nodeStore, p.url, `node '${id}'`, ctx.net);
  return {
    id,
    spec: { source: "file", filename, sha256, url: p.url },
    requirements: [],
    warnings: [],
    summary: `${id} -> custom_nodes/${filename} (single file, sha256 ${sha256.slice(0, 12)})`,
  };
}

export function resolveNodeSpec(p: ParsedSpec, ctx: ResolveContext): Promise<ResolvedNode> {
  switch (p.kind) {
    case "registry":
      return resolveRegistry(p, ctx);
    case "git":
      return resolveGit(p, ctx);
    case "file":
      return resolveFile(p, ctx);
    default:
      return resolveDev(p, ctx);
  }
}

/** The pyproject edits that pin resolved nodes and their requirement groups. */
export function addEdits(pyproject: Pyproject, nodes: ResolvedNode[]): TomlEdit[] {
  const edits: TomlEdit[] = [];
  for (const n of nodes) {
    edits.push({ path: ["tool", "comfydock", "nodes", n.id], value: n.spec });
    if (n.requirements.length) edits.push({ path: ["dependency-groups", n.id], value: n.requirements });
    else if (n.id in pyproject["dependency-groups"]) {
      edits.push({ path: ["dependency-groups", n.id], value: undefined });
    }
  }
  return edits;
}

/**
 * `node enable` / `node disable`: the edit of `enabled` (absent means enabled, so enabling removes the key),
 * or null when the node is already so. A local node used in place is refused: its folder is its identity,
 * and ComfyDock never moves code it does not own.
 */
export function enableEdits(
  paths: EnvPaths,
  id: string,
  spec: NodeSpec,
  enabled: boolean,
): TomlEdit[] | null {
  if (spec.source === "local" || spec.source === "dev") {
    const target = resolve(paths.root, spec.path);
    if (isWithin(paths.customNodes, target)) {
      throw new CdError(
        "NODE_IN_PLACE",
        `'${id}' is a ${spec.source} node used in place (${target}): ComfyDock does not move code it does not own`,
        {
          hint:
            `move the folder yourself (into custom_nodes/.disabled/ to disable it, the way ComfyUI-Manager ` +
            `does), then run 'comfydock node remove ${id}' and 'comfydock capture'`,
        },
      );
    }
  }
  if ((spec.enabled !== false) === enabled) return null;
  return [{ path: ["tool", "comfydock", "nodes", id, "enabled"], value: enabled ? undefined : false }];
}

/**
 * Tracked workflows whose `requires.nodes` names node `id` (by id, registry id or repository), so that
 * `node remove` can name them before it removes what they need.
 */
export function workflowsNeeding(desired: DesiredState, id: string): string[] {
  return Object.entries(desired.workflows).filter(([, wf]) =>
    (wf.requires?.nodes ?? []).some((pack) => findDesiredNode(pack, desired)?.[0] === id)
  ).map(([name]) => name).sort();
}

/** `.cec` files that go with a node entry: the kept copy of a single-file node without a url. */
export function removedFiles(spec: NodeSpec): { path: string; content: null }[] {
  return spec.source === "file" && !spec.url ? [{ path: cecCopy(spec.filename), content: null }] : [];
}

export function removeEdits(pyproject: Pyproject, id: string): TomlEdit[] {
  const edits: TomlEdit[] = [{ path: ["tool", "comfydock", "nodes", id], value: undefined }];
  if (id in pyproject["dependency-groups"]) edits.push({ path: ["dependency-groups", id], value: undefined });
  return edits;
}

/**
 * `node remove` of a git node whose checkout has uncommitted changes refuses before `.cec` is touched,
 * unless `force` (then the apply moves the edited checkout to the trash): the same rule as plan/apply.
 */
export async function assertRemovable(
  paths: EnvPaths,
  id: string,
  spec: NodeSpec,
  force: boolean,
): Promise<void> {
  if (force || (spec.source !== "registry" && spec.source !== "git")) return;
  const observed = await observeNodes(paths.customNodes);
  const dir = folderFor(id, spec, observed);
  const o = observed.nodes.find((n) => !n.disabled && n.dir === dir);
  if (o?.kind !== "git" || !o.dirty.length) return;
  throw new CdError(
    "NODE_DIRTY",
    `node '${id}': custom_nodes/${o.path} has uncommitted changes (${
      describeDirty(o.dirty)
    }); .cec was left as it is`,
    {
      hint: `commit and push them first, or run 'comfydock node remove ${id} --force' to move the edited ` +
        "checkout to the trash",
    },
  );
}

/**
 * Refuses to add a node that is already pinned (update is the way to move it). One exception: a dev node
 * whose path is the pinned node's own folder in custom_nodes turns that node into a dev node in place (how a
 * git checkout edited by hand is kept: the code stays, the pin goes).
 */
export function assertNotPresent(pyproject: Pyproject, node: ResolvedNode, paths: EnvPaths): void {
  const existing = pyproject.tool.comfydock.nodes[node.id];
  if (!existing) return;
  if (
    node.spec.source === "dev" &&
    resolve(paths.root, node.spec.path) === join(paths.customNodes, specEntryName(node.id, existing))
  ) return;
  const asked = node.spec.source === "registry"
    ? node.spec.version
    : node.spec.source === "git"
    ? node.spec.ref
    : null;
  const how = existing.source === "registry"
    ? ` --version ${asked ?? "V"}`
    : existing.source === "git"
    ? ` --ref ${asked ?? "REF"}`
    : "";
  throw new CdError(
    "NODE_ALREADY_ADDED",
    `node '${node.id}' is already in .cec/pyproject.toml (${
      existing.source === "registry" ? `version ${existing.version}` : existing.source
    })`,
    { hint: `move it with 'comfydock node update ${node.id}${how}', or remove it first` },
  );
}

/** The node entry of an id, or an error naming the closest ids. */
export function requireNode(pyproject: Pyproject, id: string): NodeSpec {
  const spec = pyproject.tool.comfydock.nodes[id];
  if (spec) return spec;
  const ids = Object.keys(pyproject.tool.comfydock.nodes);
  throw new CdError("NODE_NOT_IN_CEC", `node '${id}' is not in .cec/pyproject.toml`, {
    hint: ids.length ? `nodes in this environment: ${ids.join(", ")}` : "this environment has no nodes yet",
  });
}

export interface UpdateOptions {
  /** Registry nodes: the version to pin (default: the latest). */
  version?: string;
  /** Git nodes: a branch, tag or commit to pin (default: the head of the node's recorded ref). */
  ref?: string;
  /** Git nodes: another repository (a fork) to take `ref` from. */
  repository?: string;
}

const SHA_PREFIX = /^[0-9a-f]{7,40}$/;

/**
 * The new pin of an existing node for `node update`: registry nodes to `version` or the latest, git nodes to
 * `ref` (in `repository`, for a fork) or the head of their recorded ref, fetched; a git node's requirements
 * are re-read from the new commit, so its dependency group follows the commit. Null when it is already
 * there; dev nodes are never updated.
 */
export async function resolveUpdate(
  id: string,
  spec: NodeSpec,
  opts: UpdateOptions,
  ctx: ResolveContext,
): Promise<ResolvedNode | null> {
  const invalid = (message: string, hint: string) => new CdError("NODE_UPDATE_INVALID", message, { hint });
  if (spec.source === "registry") {
    if (opts.ref || opts.repository) {
      throw invalid(
        `--ref and --repository apply to git nodes; '${id}' is a registry node`,
        `pin a version with 'comfydock node update ${id} --version V'`,
      );
    }
    const r = await resolveRegistry({ id: spec.registry_id ?? id, version: opts.version }, ctx);
    if (r.spec.source === "registry" && r.spec.version === spec.version && r.spec.sha256 === spec.sha256) {
      return null;
    }
    return {
      ...r,
      id,
      spec: {
        ...r.spec,
        ...(spec.directory ? { directory: spec.directory } : {}),
        ...(spec.enabled === false ? { enabled: false } : {}),
      },
    };
  }
  if (spec.source === "git") {
    if (opts.version) {
      throw invalid(
        `--version applies to registry nodes; '${id}' is a git node`,
        `pin a branch, tag or commit with 'comfydock node update ${id} --ref ${opts.version}'`,
      );
    }
    const repository = opts.repository ?? spec.repository;
    const ref = opts.ref ?? spec.ref;
    const r = await resolveGit({ url: repository, ref }, ctx);
    if (r.spec.source !== "git") return null;
    // A commit is a pin of its own: recording it as `ref` would make plain `update` stay there forever.
    const named = ref !== undefined && !(SHA_PREFIX.test(ref) && r.spec.commit.startsWith(ref));
    const { ref: _old, ...rest } = spec;
    const next: NodeSpec = { ...rest, repository, commit: r.spec.commit, ...(named ? { ref } : {}) };
    if (next.commit === spec.commit && next.repository === spec.repository && next.ref === spec.ref) {
      return null;
    }
    return {
      ...r,
      id,
      spec: next,
      summary: `${id} ${r.spec.commit.slice(0, 12)}${named ? ` (${ref})` : ""} (git)`,
    };
  }
  if (opts.version || opts.ref || opts.repository) {
    throw invalid(
      `'${id}' is a ${spec.source} node: its code is used as it is`,
      "version, ref and repository apply to registry and git nodes",
    );
  }
  return null;
}

/**
 * Warnings about pinned registry versions that the registry has since banned, deleted or forgotten (one
 * bulk request for the whole environment).
 */
export async function pinnedVersionWarnings(
  nodes: Record<string, NodeSpec>,
  registry: RegistryClient,
): Promise<string[]> {
  const pins = Object.entries(nodes).flatMap(([id, s]) =>
    s.source === "registry" ? [{ id, node_id: s.registry_id ?? id, version: s.version }] : []
  );
  if (!pins.length) return [];
  const results = await registry.bulkVersions(pins.map(({ node_id, version }) => ({ node_id, version })));
  const warnings: string[] = [];
  for (const r of results) {
    const id = pins.find((p) => p.node_id === r.identifier.node_id)?.id ?? r.identifier.node_id;
    const v = r.identifier.version;
    if (r.status === "not_found") {
      warnings.push(
        `${id}: the pinned version ${v} is no longer in the registry (the cached archive still works)`,
      );
    } else if (r.node_version && isBadStatus(r.node_version.status, "version")) {
      warnings.push(
        `${id}: the pinned version ${v} is ${statusWord(r.node_version.status)} in the registry${
          r.node_version.status_reason ? ` (${r.node_version.status_reason})` : ""
        }; update it`,
      );
    }
  }
  return warnings;
}
