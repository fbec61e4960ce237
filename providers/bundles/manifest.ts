/**
 * `comfydock-bundle.json`: the first entry of every bundle. It lists every other file with its size and
 * sha256, so an import can reject a file before reading its bytes (wrong size, not listed) and after
 * (wrong hash), and notice what is missing.
 */
import { z } from "zod";
import { CdError } from "../../lib/errors.ts";
import { ModelSpec, NodeSpec } from "../../reconcile/schema.ts";
import denoJson from "../../deno.json" with { type: "json" };
import { pathProblem } from "./archive.ts";

export const MANIFEST_NAME = "comfydock-bundle.json";
/** Bumped when a bundle written by this version could be misread by an older one. */
export const BUNDLE_FORMAT_VERSION = 1;
export const TOOL_VERSION: string = denoJson.version;

const SafePath = z.string().superRefine((p, ctx) => {
  const why = pathProblem(p);
  if (why) ctx.addIssue({ code: "custom", message: `'${p}' ${why}` });
});

export const ManifestFile = z.object({
  path: SafePath,
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits"),
});
export type ManifestFile = z.infer<typeof ManifestFile>;

/** What a workflow bundle says its workflow needs (node and model specs as in pyproject). */
export const WorkflowDeps = z.object({
  name: z.string().min(1),
  file: SafePath,
  nodes: z.record(z.string(), NodeSpec).default({}),
  models: z.record(z.string(), ModelSpec).default({}),
});
export type WorkflowDeps = z.infer<typeof WorkflowDeps>;

export const BundleManifest = z.object({
  format_version: z.literal(BUNDLE_FORMAT_VERSION),
  tool: z.object({ name: z.literal("comfydock"), version: z.string().min(1) }),
  created_at: z.string().datetime(),
  source_environment: z.string().min(1),
  kind: z.enum(["environment", "workflow"]),
  files: z.array(ManifestFile).superRefine((files, ctx) => {
    const seen = new Set<string>();
    for (const f of files) {
      if (seen.has(f.path)) ctx.addIssue({ code: "custom", message: `'${f.path}' is listed twice` });
      seen.add(f.path);
    }
  }),
  workflow: WorkflowDeps.optional(),
});
export type BundleManifest = z.infer<typeof BundleManifest>;

/** Parses and validates manifest text; a newer format_version gets its own error telling to upgrade. */
export function parseManifest(text: string, where: string): BundleManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw invalid(where, `${MANIFEST_NAME} is not valid JSON (${(e as Error).message})`);
  }
  const version = (raw as { format_version?: unknown } | null)?.format_version;
  if (typeof version === "number" && Number.isInteger(version) && version > BUNDLE_FORMAT_VERSION) {
    const tool = (raw as { tool?: { version?: unknown } }).tool?.version;
    throw new CdError(
      "BUNDLE_TOO_NEW",
      `${where}: bundle format_version ${version} is newer than this ComfyDock understands ` +
        `(${BUNDLE_FORMAT_VERSION}, comfydock ${TOOL_VERSION})` +
        (typeof tool === "string" ? `; it was made by comfydock ${tool}` : ""),
      {
        hint:
          "upgrade comfydock to a version at least as new as the one that made the bundle, then import again",
      },
    );
  }
  const parsed = BundleManifest.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.slice(0, 5).map((i) =>
      `${i.path.map(String).join(".") || "(root)"}: ${i.message}`
    );
    throw invalid(where, `${MANIFEST_NAME} is invalid: ${lines.join("; ")}`);
  }
  return parsed.data;
}

function invalid(where: string, what: string): CdError {
  return new CdError("BUNDLE_MANIFEST_INVALID", `${where}: ${what}`, {
    hint: "the bundle was not made by 'comfydock export' or was edited: export it again",
  });
}

export function newManifest(
  fields: Pick<BundleManifest, "source_environment" | "kind" | "files" | "workflow">,
): BundleManifest {
  return {
    format_version: BUNDLE_FORMAT_VERSION,
    tool: { name: "comfydock", version: TOOL_VERSION },
    created_at: new Date().toISOString(),
    ...fields,
  };
}
