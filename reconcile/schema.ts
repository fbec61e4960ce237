/**
 * The desired-state schema: `.cec/pyproject.toml` as zod types (DESIGN §3). Validation happens here, at the
 * boundary; everything past it trusts the types.
 *
 * Desired state is untrusted input (DESIGN §6b): every name that becomes part of a path (node ids and
 * directories, model categories and filenames, workflow files) must be a safe name as the path door
 * (lib/safe_path.ts) defines it, so `validate` and `plan` name the offending key before anything is built.
 */
import { z } from "zod";
import { credentialsProblem } from "../lib/redact.ts";
import { relPathProblem, segmentProblem } from "../lib/safe_path.ts";

const hex = (n: number) => new RegExp(`^[0-9a-f]{${n}}$`);

/** One folder or file name (a node id, a node's directory, a single-file node's filename). */
export const SafeName = z.string().superRefine((v, ctx) => {
  const why = segmentProblem(v);
  if (why) {
    ctx.addIssue({
      code: "custom",
      message: `'${v}' ${why}; it names a folder or file, so it must be a plain name`,
    });
  }
});

/** A relative path of plain names joined by '/' (a model category or filename, a workflow file). */
export const SafeRelPath = z.string().superRefine((v, ctx) => {
  const why = relPathProblem(v);
  if (why) {
    ctx.addIssue({ code: "custom", message: `'${v}' ${why}; it must be a relative path inside its folder` });
  }
});

/** A URL or path handed to git: one starting with '-' would be read as an option. */
/**
 * A URL `.cec` may keep: no credentials. `.cec` is committed and shared, and one from someone else would make
 * this machine send their token (`model add` keeps Hugging Face and Civitai tokens in the key store instead).
 */
const noCredentials = (kind: "download" | "git") => (v: string, ctx: z.RefinementCtx) => {
  const why = credentialsProblem(v, kind);
  if (why) {
    ctx.addIssue({
      code: "custom",
      message: `${why}: .cec is shared, so they would be committed; remove them (a Hugging Face or Civitai ` +
        "token belongs in 'comfydock config set-key')",
    });
  }
};

const GitUrl = z.string().min(1).refine((v) => !v.startsWith("-"), "must not start with '-'")
  .superRefine(noCredentials("git"));

/** Fields every node entry has. */
const common = {
  name: z.string().optional(),
  /** Folder name under custom_nodes/ (default: the node id). */
  directory: SafeName.optional(),
  /**
   * `false`: installed but disabled the way ComfyUI-Manager does it (a folder moves to
   * `custom_nodes/.disabled/<dir>`, a single file becomes `<file>.disabled`); ComfyUI skips both.
   */
  enabled: z.boolean().optional(),
};

export const RegistryNodeSpec = z.object({
  ...common,
  source: z.literal("registry"),
  registry_id: z.string().optional(),
  version: z.string().min(1),
  repository: z.string().optional(),
  /** sha256 of the downloaded archive, verified on reinstall. */
  sha256: z.string().regex(hex(64), "must be 64 lowercase hex digits").optional(),
  download_url: z.string().url().optional(),
});

export const GitNodeSpec = z.object({
  ...common,
  source: z.literal("git"),
  registry_id: z.string().optional(),
  repository: GitUrl,
  commit: z.string().regex(hex(40), "must be a full 40-hex git commit sha"),
  /** The branch or tag the commit came from (`node update` follows it); handed to git like the URL. */
  ref: z.string().min(1).refine((v) => !v.startsWith("-"), "must not start with '-'").optional(),
});

export const LocalNodeSpec = z.object({
  ...common,
  source: z.enum(["local", "dev"]),
  /** The user's own source folder (may be anywhere): only ever linked from custom_nodes, never written. */
  path: z.string().min(1),
});

/**
 * A single-file node (`custom_nodes/<filename>`, which ComfyUI loads as a module), pinned by the sha256 of
 * its content. Its bytes come from `url` (how ComfyUI-Manager installs them; downloaded once, verified,
 * cached) or, without a url, from `.cec/nodes/<filename>`: the copy travels with `.cec`, so another machine
 * can rebuild the node from the desired state alone.
 */
export const FileNodeSpec = z.object({
  name: z.string().optional(),
  enabled: z.boolean().optional(),
  source: z.literal("file"),
  filename: SafeName.refine((f) => f.endsWith(".py"), "must end with .py (ComfyUI loads only .py files)"),
  sha256: z.string().regex(hex(64), "must be 64 lowercase hex digits"),
  /** Fetched over HTTP(S) only (a `file:` URL in someone else's `.cec` would read this machine's files). */
  url: z.string().url().refine((u) => /^https?:\/\//i.test(u), "must be an http(s) URL")
    .superRefine(noCredentials("download")).optional(),
});

export const NodeSpec = z.discriminatedUnion("source", [
  RegistryNodeSpec,
  GitNodeSpec,
  LocalNodeSpec,
  FileNodeSpec,
]);
export type NodeSpec = z.infer<typeof NodeSpec>;

/** The entry a node's spec names under custom_nodes/: its file, its `directory`, else its id. */
export function specEntryName(id: string, spec: NodeSpec): string {
  return spec.source === "file" ? spec.filename : spec.directory ?? id;
}

export const ModelSource = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("huggingface"),
    repo: z.string().min(1),
    file: z.string().min(1),
    revision: z.string().optional(),
  }),
  z.object({
    type: z.literal("civitai"),
    model_id: z.union([z.string(), z.number()]).optional(),
    version_id: z.union([z.string(), z.number()]),
  }),
  z.object({ type: z.literal("url"), url: z.string().url().superRefine(noCredentials("download")) }),
]);
export type ModelSource = z.infer<typeof ModelSource>;

export const ModelSpec = z.object({
  name: z.string().optional(),
  /** `blake3:<hex64>` or `sha256:<hex64>`. */
  hash: z.string().regex(/^(blake3|sha256):[0-9a-f]{64}$/, "must be 'blake3:<64 hex>' or 'sha256:<64 hex>'")
    .optional(),
  sha256: z.string().regex(hex(64), "must be 64 lowercase hex digits").optional(),
  size: z.number().int().nonnegative().optional(),
  category: SafeRelPath,
  filename: SafeRelPath,
  sources: z.array(ModelSource).default([]),
  local_path: z.string().optional(),
}).refine((m) => m.hash !== undefined || m.sha256 !== undefined, {
  message: "a model needs 'hash' or 'sha256' (models are identified by content)",
});
export type ModelSpec = z.infer<typeof ModelSpec>;

export const WorkflowSpec = z.object({
  file: SafeRelPath,
  version: z.string().optional(),
  description: z.string().optional(),
  requires: z.object({
    nodes: z.array(z.string()).default([]),
    models: z.array(z.string()).default([]),
    python: z.array(z.string()).default([]),
  }).optional(),
});
export type WorkflowSpec = z.infer<typeof WorkflowSpec>;

export const ComfyDockTable = z.object({
  version: z.string().optional(),
  comfyui_version: z.string().min(1),
  /** The pinned commit of ComfyUI (full sha). */
  comfyui_commit: z.string().regex(hex(40), "must be a full 40-hex git commit sha"),
  comfyui_url: GitUrl.optional(),
  python_version: z.string().regex(/^\d+\.\d+$/, "must look like '3.12'"),
  torch_backend: z.string().optional(),
  nodes: z.record(SafeName, NodeSpec).default({}),
  models: z.record(z.string(), ModelSpec).default({}),
  workflows: z.object({ tracked: z.record(z.string(), WorkflowSpec).default({}) }).default({ tracked: {} }),
});
export type ComfyDockTable = z.infer<typeof ComfyDockTable>;

export const Pyproject = z.object({
  project: z.object({
    name: z.string().min(1),
    version: z.string().optional(),
    "requires-python": z.string().optional(),
    dependencies: z.array(z.string()).default([]),
  }),
  "dependency-groups": z.record(z.string(), z.array(z.union([z.string(), z.record(z.string(), z.unknown())])))
    .default({}),
  tool: z.object({
    uv: z.record(z.string(), z.unknown()).optional(),
    comfydock: ComfyDockTable,
  }),
});
export type Pyproject = z.infer<typeof Pyproject>;
