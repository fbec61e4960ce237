/**
 * `model sources KEY`: where else a model's content can be downloaded from, found by its sha256. Civitai's
 * by-hash lookup answers for any file it hosts; Hugging Face has no lookup by hash, so a Hugging Face
 * source is offered only when the model came from the Hub (a configured URL source on the Hub's
 * `resolve/` route, or a download the model index remembers) and the Hub confirms the same LFS sha256.
 * Sources never hold tokens: they are added to requests only (sources.ts).
 */
import { ModelSource, type ModelSpec } from "../../reconcile/schema.ts";
import type { ModelIndex } from "./index_db.ts";
import {
  civitaiByHash,
  type CivitaiVersion,
  describeSource,
  huggingfaceFileInfo,
  type SourceConfig,
} from "./sources.ts";

type HfSource = Extract<ModelSource, { type: "huggingface" }>;

export interface FoundSources {
  /** Sources found that the entry does not list yet, in the order they would be tried. */
  found: ModelSource[];
  civitai: CivitaiVersion | null;
  /** Why a candidate was not offered (Hub unreachable, another sha256, ...). */
  notes: string[];
}

/** Two sources name the same download. */
export function sameSource(a: ModelSource, b: ModelSource): boolean {
  return describeSource(a) === describeSource(b);
}

/**
 * A Hub file URL (`{endpoint}/{owner}/{repo}/resolve/{revision}/{path}`, on the configured endpoint or
 * huggingface.co) as a typed Hugging Face source; null for any other URL (datasets and spaces included).
 */
export function hfSourceFromUrl(url: string, hfEndpoint: string): HfSource | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  const bases = [hfEndpoint, "https://huggingface.co"].map((b) => new URL(b));
  const base = bases.find((b) =>
    b.origin === u.origin && u.pathname.startsWith(b.pathname.replace(/\/?$/, "/"))
  );
  if (!base) return null;
  const rest = u.pathname.slice(base.pathname.replace(/\/?$/, "/").length).split("/").map(decodeURIComponent);
  const [owner, repo, route, revision, ...file] = rest;
  if (!owner || !repo || route !== "resolve" || !revision || !file.length || file.some((p) => !p)) {
    return null;
  }
  if (owner === "datasets" || owner === "spaces") return null;
  return {
    type: "huggingface",
    repo: `${owner}/${repo}`,
    file: file.join("/"),
    ...(revision !== "main" ? { revision } : {}),
  };
}

/** Remembers in the index where a model was downloaded from, so `model sources` can offer it later. */
export function rememberSource(index: ModelIndex, modelId: number, source: ModelSource): void {
  const info = index.getModelInfo(modelId);
  const known = Array.isArray(info?.metadata.sources) ? info.metadata.sources : [];
  const parsed = known.flatMap((s) => {
    const r = ModelSource.safeParse(s);
    return r.success ? [r.data] : [];
  });
  if (parsed.some((s) => sameSource(s, source))) return;
  index.updateMetadata(modelId, { sources: [...parsed, source] });
}

function rememberedSources(index: ModelIndex | null, sha256: string): ModelSource[] {
  const meta = index?.resolveByHash(`sha256:${sha256}`)?.metadata.sources;
  if (!Array.isArray(meta)) return [];
  return meta.flatMap((s) => {
    const r = ModelSource.safeParse(s);
    return r.success ? [r.data] : [];
  });
}

/** Looks up sources for a spec with a sha256; network errors of one service become notes, not failures. */
export async function findSources(
  cfg: SourceConfig,
  spec: ModelSpec & { sha256: string },
  index: ModelIndex | null,
): Promise<FoundSources> {
  const notes: string[] = [];
  const found: ModelSource[] = [];
  const add = (s: ModelSource) => {
    if (![...spec.sources, ...found].some((x) => sameSource(x, s))) found.push(s);
  };

  const hfCandidates: HfSource[] = [];
  for (const s of [...spec.sources, ...rememberedSources(index, spec.sha256)]) {
    const hf = s.type === "huggingface"
      ? s
      : s.type === "url"
      ? hfSourceFromUrl(s.url, cfg.hfEndpoint)
      : null;
    if (hf && !hfCandidates.some((c) => sameSource(c, hf))) hfCandidates.push(hf);
  }
  for (const hf of hfCandidates) {
    if (spec.sources.some((x) => sameSource(x, hf))) continue;
    const info = await huggingfaceFileInfo(cfg, hf).catch(() => null);
    if (!info) notes.push(`${describeSource(hf)}: the Hub did not answer; not added`);
    else if (info.sha256 === spec.sha256) add(hf);
    else if (info.sha256) {
      notes.push(`${describeSource(hf)}: the Hub serves other content (sha256 ${info.sha256.slice(0, 12)}…)`);
    } else notes.push(`${describeSource(hf)}: the Hub reports no LFS sha256 to check it against; not added`);
  }

  let civitai: CivitaiVersion | null = null;
  try {
    civitai = await civitaiByHash(cfg, spec.sha256);
  } catch (e) {
    notes.push(`Civitai: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (civitai) {
    add({
      type: "civitai",
      ...(civitai.modelId ? { model_id: civitai.modelId } : {}),
      version_id: civitai.id,
    });
  }
  return { found, civitai, notes };
}
