/**
 * ComfyUI's `extra_model_paths.yaml`, read the way ComfyUI's `load_extra_path_config` reads it: each section
 * has an optional `base_path` (relative to the file's folder, `~` expanded), an optional `is_default`, and
 * `<category>: <folder>` entries where one value may hold several folders, one per line, each relative to
 * `base_path` (or to the file's folder). `custom_nodes` entries name extra node folders, not models.
 */
import { dirname, isAbsolute, join, normalize, resolve } from "node:path";
import { CdError, errorMessage } from "../../lib/errors.ts";

export interface ExtraModelFolders {
  folders: { category: string; path: string }[];
  /** Entries that are not model folders, with why. */
  skipped: string[];
}

export async function parseExtraModelPaths(
  text: string,
  file: string,
  home: string,
): Promise<ExtraModelFolders> {
  const { parse } = await import("yaml");
  let raw: unknown;
  try {
    raw = parse(text, { schema: "failsafe" });
  } catch (e) {
    throw new CdError(
      "EXTRA_MODEL_PATHS_INVALID",
      `${file} is not valid YAML: ${errorMessage(e).split("\n")[0]}`,
      {
        hint: "fix it (ComfyUI cannot read it either), or move it aside and adopt again",
      },
    );
  }
  const out: ExtraModelFolders = { folders: [], skipped: [] };
  if (!raw || typeof raw !== "object") return out;
  const yamlDir = dirname(file);
  const expand = (p: string) => p.startsWith("~") ? join(home, p.slice(1)) : p;
  for (const [section, conf] of Object.entries(raw as Record<string, unknown>)) {
    if (!conf || typeof conf !== "object") continue;
    const c = { ...(conf as Record<string, unknown>) };
    let base: string | null = null;
    if (typeof c.base_path === "string") {
      base = expand(c.base_path);
      if (!isAbsolute(base)) base = resolve(yamlDir, base);
    }
    delete c.base_path;
    delete c.is_default;
    for (const [category, value] of Object.entries(c)) {
      if (typeof value !== "string") continue;
      if (category === "custom_nodes") {
        out.skipped.push(
          `${section}.custom_nodes: extra custom node folders are not adopted (${value.trim()})`,
        );
        continue;
      }
      for (const line of value.split("\n").map((l) => l.trim()).filter(Boolean)) {
        const p = expand(line);
        const full = base ? join(base, p) : isAbsolute(p) ? p : resolve(yamlDir, p);
        if (/\$\{?\w/.test(full)) {
          out.skipped.push(
            `${section}.${category}: ${line} names an environment variable, not expanded here`,
          );
          continue;
        }
        out.folders.push({ category, path: normalize(full) });
      }
    }
  }
  return out;
}
