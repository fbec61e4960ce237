/**
 * Resolving a model reference from a workflow (`properties.models[]`, a loader's filename input) to a model
 * on this machine, in the seed's order: by hash, by filename within the category, by filename anywhere,
 * then the workflow's own download URL. Unresolved references say why.
 */
import type { ModelIndex, ModelInfo } from "./index_db.ts";

export interface ModelReference {
  /** Filename as the workflow names it (may include subfolders: `sd15/model.safetensors`). */
  name: string;
  /** ComfyUI folder (`checkpoints`, `loras`, ...), when the workflow says. */
  category?: string;
  /** `sha256:<hex>`, `blake3:<hex>` or bare sha256 hex. */
  hash?: string;
  url?: string;
}

export type ModelResolution =
  | { status: "resolved"; via: "hash" | "name-in-category" | "name"; model: ModelInfo; path: string }
  | { status: "ambiguous"; via: "name-in-category" | "name"; candidates: ModelInfo[]; reason: string }
  | { status: "downloadable"; via: "url"; url: string; reason: string }
  | { status: "unresolved"; reason: string };

function pick(m: ModelInfo, category?: string): string {
  return (m.files.find((f) => f.category === category) ?? m.files[0]).path;
}

export function resolveModelReference(given: ModelReference, index: ModelIndex): ModelResolution {
  // Subfolders saved on Windows (`hyvideo\model.safetensors`) are the same file as with `/`.
  const ref = { ...given, name: given.name.replaceAll("\\", "/") };
  const tried: string[] = [];
  if (ref.hash) {
    const m = index.resolveByHash(ref.hash);
    if (m && m.files.length) {
      return { status: "resolved", via: "hash", model: m, path: pick(m, ref.category) };
    }
    tried.push(`no indexed file has hash ${ref.hash}`);
  }
  if (ref.category) {
    const inCat = index.resolveByName(ref.name, ref.category);
    if (inCat.length === 1) {
      return {
        status: "resolved",
        via: "name-in-category",
        model: inCat[0],
        path: pick(inCat[0], ref.category),
      };
    }
    if (inCat.length > 1) {
      return {
        status: "ambiguous",
        via: "name-in-category",
        candidates: inCat,
        reason: `${inCat.length} different files named ${ref.name} in ${ref.category}; pick one by hash`,
      };
    }
    tried.push(`no file named ${ref.name} in ${ref.category}`);
  }
  const any = index.resolveByName(ref.name);
  if (any.length === 1) {
    return { status: "resolved", via: "name", model: any[0], path: pick(any[0], ref.category) };
  }
  if (any.length > 1) {
    return {
      status: "ambiguous",
      via: "name",
      candidates: any,
      reason: `${any.length} different files named ${ref.name}; pick one by hash`,
    };
  }
  tried.push(`no file named ${ref.name} anywhere in the index`);
  if (ref.url) return { status: "downloadable", via: "url", url: ref.url, reason: tried.join("; ") };
  return {
    status: "unresolved",
    reason: `${
      tried.join("; ")
    }; the workflow gives no download URL (index a folder with 'comfydock model scan PATH')`,
  };
}
