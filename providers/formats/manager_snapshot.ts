/**
 * ComfyUI-Manager snapshots, read and written in the Manager's own shape (its `get_current_snapshot` /
 * `save_snapshot_with_postfix` / `restore_snapshot`):
 *
 *   { "comfyui": "<commit>" | null,
 *     "git_custom_nodes": { "<remote url>": { "hash": "<commit>", "disabled": false } },
 *     "cnr_custom_nodes": { "<registry id>": "<version>" },
 *     "file_custom_nodes": [ { "filename": "x.py", "disabled": false } ],
 *     "pips": { "numpy==1.26.4": "", "torch": "https://.../torch-2.5.1+cu124-....whl" } }
 *
 * JSON as written by the Manager UI and `cm-cli save-snapshot --output x.json`; YAML (`--output x.yaml`)
 * wraps the same mapping in a top-level `custom_nodes` key. Older snapshots lack `cnr_custom_nodes` and
 * `pips`; `comfyui` is null for `custom_nodes_only` snapshots and `pips` null there too.
 */
import { z } from "zod";
import { CdError, errorMessage } from "../../lib/errors.ts";

const SHA = /^[0-9a-f]{40}$/;

export const ManagerSnapshot = z.object({
  comfyui: z.string().regex(SHA, "must be a full 40-hex git commit").nullable().default(null),
  git_custom_nodes: z.record(
    z.string(),
    z.object({
      hash: z.string().regex(SHA, "must be a full 40-hex git commit"),
      disabled: z.boolean().default(false),
    }),
  ).default({}),
  cnr_custom_nodes: z.record(z.string(), z.string().min(1)).default({}),
  file_custom_nodes: z.array(z.object({ filename: z.string().min(1), disabled: z.boolean().default(false) }))
    .default([]),
  pips: z.record(z.string(), z.string()).nullable().default(null),
});
export type ManagerSnapshot = z.infer<typeof ManagerSnapshot>;

/** Top-level keys of a snapshot this tool reads; any other key is reported as not mapped. */
export const SNAPSHOT_KEYS = ["comfyui", "git_custom_nodes", "cnr_custom_nodes", "file_custom_nodes", "pips"];

export function isSnapshotFileName(file: string): boolean {
  return /\.(json|ya?ml)$/i.test(file);
}

/**
 * YAML is read with every scalar as a string (a version `1.10` must not become the number 1.1), then the few
 * booleans and nulls of the format are turned back into what they are.
 */
function fromYamlStrings(raw: unknown): unknown {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) return raw;
  const top = raw as Record<string, unknown>;
  const snap = {
    ...((top.custom_nodes && typeof top.custom_nodes === "object") ? top.custom_nodes : top),
  } as Record<string, unknown>;
  const nullish = (v: unknown) => v === "null" || v === "~" || v === "" || v === "Null" || v === "NULL";
  const bool = (v: unknown) => (typeof v === "string" && /^(true|false)$/i.test(v) ? /^true$/i.test(v) : v);
  if (nullish(snap.comfyui)) snap.comfyui = null;
  if (nullish(snap.pips)) snap.pips = null;
  const git = snap.git_custom_nodes;
  if (git && typeof git === "object") {
    snap.git_custom_nodes = Object.fromEntries(
      Object.entries(git).map((
        [k, v],
      ) => [
        k,
        v && typeof v === "object" ? { ...v, disabled: bool((v as { disabled?: unknown }).disabled) } : v,
      ]),
    );
  }
  if (Array.isArray(snap.file_custom_nodes)) {
    snap.file_custom_nodes = snap.file_custom_nodes.map((f) =>
      f && typeof f === "object" ? { ...f, disabled: bool((f as { disabled?: unknown }).disabled) } : f
    );
  }
  return snap;
}

interface ParsedSnapshot {
  snapshot: ManagerSnapshot;
  format: "json" | "yaml";
  /** Top-level keys this tool does not read. */
  unknownKeys: string[];
}

/** Parses a snapshot file's text; errors name the file, the key and the bad value. */
export async function parseManagerSnapshot(text: string, file: string): Promise<ParsedSnapshot> {
  const yaml = /\.ya?ml$/i.test(file);
  let raw: unknown;
  try {
    if (yaml) {
      const { parse } = await import("yaml");
      raw = fromYamlStrings(parse(text, { schema: "failsafe" }));
    } else raw = JSON.parse(text);
  } catch (e) {
    throw new CdError(
      "SNAPSHOT_SYNTAX",
      `${file} is not valid ${yaml ? "YAML" : "JSON"}: ${errorMessage(e).split("\n")[0]}`,
      {
        hint: "pass a snapshot saved by ComfyUI-Manager (Manager menu > Snapshot, or 'cm-cli save-snapshot')",
      },
    );
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw) || !SNAPSHOT_KEYS.some((k) => k in raw)) {
    throw new CdError(
      "SNAPSHOT_INVALID",
      `${file} is not a ComfyUI-Manager snapshot: it has none of the keys ${SNAPSHOT_KEYS.join(", ")}`,
      {
        hint:
          "import a snapshot (.json/.yaml from ComfyUI-Manager), a bundle (.tar.gz), a git URL or a .cec path",
      },
    );
  }
  const r = ManagerSnapshot.safeParse(raw);
  if (!r.success) {
    const lines = r.error.issues.slice(0, 5).map((i) => {
      let v: unknown = raw;
      for (const k of i.path) {
        v = v && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[k as PropertyKey] : undefined;
      }
      return `${file}: ${i.path.map(String).join(".")}: ${i.message} (got ${
        JSON.stringify(v)?.slice(0, 80)
      })`;
    });
    throw new CdError("SNAPSHOT_INVALID", lines.join("\n"), {
      hint:
        "the snapshot was edited or damaged; fix the keys named above or save a new one in ComfyUI-Manager",
    });
  }
  const unknownKeys = Object.keys(raw).filter((k) => !SNAPSHOT_KEYS.includes(k));
  return { snapshot: r.data, format: yaml ? "yaml" : "json", unknownKeys };
}

/** Text of a snapshot in the Manager's JSON layout (its `json.dump(..., indent=4)`). */
export function renderManagerSnapshot(s: ManagerSnapshot): string {
  const ordered = {
    comfyui: s.comfyui,
    git_custom_nodes: s.git_custom_nodes,
    cnr_custom_nodes: s.cnr_custom_nodes,
    file_custom_nodes: s.file_custom_nodes,
    pips: s.pips,
  };
  return JSON.stringify(ordered, null, 4) + "\n";
}
