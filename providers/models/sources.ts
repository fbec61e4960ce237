/**
 * Where models come from: Hugging Face (`{HF_ENDPOINT}/{repo}/resolve/{rev}/{file}`), Civitai
 * (`{CIVITAI_API_URL}/model-versions/{id}` and `/model-versions/by-hash/{sha256}`) and plain URLs.
 * Tokens come from the environment (HF_TOKEN, CIVITAI_API_TOKEN) or `.metadata/keys.json` (ConfigManager);
 * they go into request headers/URLs only and are scrubbed from every message (`scrub`).
 */
import { z } from "zod";
import { CdError } from "../../lib/errors.ts";
import { DEFAULT_NET, httpFetch, type HttpOptions, type NetSettings } from "../../lib/http.ts";
import { redactSecrets, urlCredentials } from "../../lib/redact.ts";
import type { ModelSource } from "../../reconcile/schema.ts";
import type { Settings } from "../../lib/settings.ts";

export interface SourceConfig {
  hfEndpoint: string;
  civitaiApi: string;
  hfToken?: string;
  civitaiToken?: string;
  /** Timeouts and download bounds (default: the documented defaults). */
  net?: NetSettings;
}

/** Base URLs and tokens of the model hosts (tokens: env var first, then keys.json, resolved at the edge). */
/** `signal`: the interrupt of the change the downloads belong to (ObserveContext.signal). */
export function sourceConfig(settings: Settings, signal?: AbortSignal): SourceConfig {
  return {
    hfEndpoint: settings.hf.endpoint,
    civitaiApi: settings.civitai.api,
    hfToken: settings.hf.token ?? undefined,
    civitaiToken: settings.civitai.token ?? undefined,
    net: { http: settings.http, download: settings.download, ...(signal ? { signal } : {}) },
  };
}

/** `text` with the configured tokens (and every other credential shape) replaced, to show or store it. */
export function scrub(text: string, cfg: SourceConfig): string {
  return redactSecrets(text, [cfg.hfToken, cfg.civitaiToken]);
}

/** The model host a URL belongs to (by origin: scheme, host and port of the configured endpoints). */
export function keyServiceOf(url: string, cfg: SourceConfig): "huggingface" | "civitai" | null {
  const origin = (u: string) => {
    try {
      return new URL(u).origin;
    } catch {
      return null;
    }
  };
  const o = origin(url);
  if (o === null) return null;
  if (o === origin(cfg.hfEndpoint)) return "huggingface";
  if (o === origin(cfg.civitaiApi)) return "civitai";
  return null;
}

/** Sources as `.cec` may keep them: `url` sources without credentials (someone else's token is dropped). */
export function withoutCredentialsInUrls(sources: ModelSource[]): ModelSource[] {
  return sources.map((s) => s.type === "url" ? { ...s, url: urlCredentials(s.url)?.clean ?? s.url } : s);
}

/** A source as a user reads it (no tokens, no query strings). */
export function describeSource(s: ModelSource): string {
  switch (s.type) {
    case "huggingface":
      return `huggingface ${s.repo}/${s.file}${s.revision ? `@${s.revision}` : ""}`;
    case "civitai":
      return `civitai version ${s.version_id}`;
    case "url": {
      try {
        const u = new URL(s.url);
        return `${u.origin}${u.pathname}`;
      } catch {
        return "url";
      }
    }
  }
}

export interface ResolvedDownload {
  url: string;
  headers: Record<string, string>;
  label: string;
  /** What the source itself says about the file (Civitai publishes both). */
  sha256?: string;
  size?: number;
  filename?: string;
}

const CivitaiFile = z.object({
  name: z.string(),
  sizeKB: z.number().optional(),
  downloadUrl: z.string(),
  primary: z.boolean().optional(),
  type: z.string().optional(),
  hashes: z.record(z.string(), z.string()).optional(),
});

export const CivitaiVersion = z.object({
  id: z.number(),
  modelId: z.number().optional(),
  name: z.string().optional(),
  model: z.object({ name: z.string().optional(), type: z.string().optional() }).optional(),
  files: z.array(CivitaiFile),
});
export type CivitaiVersion = z.infer<typeof CivitaiVersion>;

/** Civitai model types -> ComfyUI model folders. */
export const CIVITAI_CATEGORY: Record<string, string> = {
  Checkpoint: "checkpoints",
  LORA: "loras",
  LoCon: "loras",
  DoRA: "loras",
  TextualInversion: "embeddings",
  VAE: "vae",
  Controlnet: "controlnet",
  Upscaler: "upscale_models",
  Hypernetwork: "hypernetworks",
};

/** Options of an API call to a model host: its timeouts, and its tokens never shown in a message. */
function apiOptions(cfg: SourceConfig, what: string): HttpOptions {
  const http = (cfg.net ?? DEFAULT_NET).http;
  return {
    what,
    timeoutMs: http.timeoutMs,
    retryBaseMs: http.retryBaseMs,
    secrets: [cfg.hfToken, cfg.civitaiToken],
    unreachableHint: "check the network, or CIVITAI_API_URL / HF_ENDPOINT",
  };
}

async function getJson(url: string, headers: Record<string, string>, cfg: SourceConfig, what: string) {
  const res = await httpFetch(url, {
    ...apiOptions(cfg, what),
    headers: { accept: "application/json", ...headers },
  });
  if (!res.ok) {
    await res.body?.cancel();
    const code = res.status === 404 ? "MODEL_SOURCE_NOT_FOUND" : "MODEL_SOURCE_FAILED";
    throw new CdError(code, `${what}: HTTP ${res.status}`, {
      hint: res.status === 401 || res.status === 403
        ? "set a token with 'comfydock config set-key civitai' (or CIVITAI_API_TOKEN)"
        : undefined,
    });
  }
  return await res.json();
}

function civitaiHeaders(cfg: SourceConfig): Record<string, string> {
  return cfg.civitaiToken ? { authorization: `Bearer ${cfg.civitaiToken}` } : {};
}

export async function civitaiVersion(cfg: SourceConfig, versionId: string | number): Promise<CivitaiVersion> {
  const what = `civitai version ${versionId}`;
  const raw = await getJson(
    `${cfg.civitaiApi}/model-versions/${encodeURIComponent(String(versionId))}`,
    civitaiHeaders(cfg),
    cfg,
    what,
  );
  const parsed = CivitaiVersion.safeParse(raw);
  if (!parsed.success) {
    throw new CdError(
      "MODEL_SOURCE_INVALID",
      `${what}: unexpected reply (${parsed.error.issues[0]?.message})`,
    );
  }
  return parsed.data;
}

/** Civitai's lookup of a file by sha256: the version that contains it, or null when Civitai does not know it. */
export async function civitaiByHash(cfg: SourceConfig, sha256: string): Promise<CivitaiVersion | null> {
  try {
    const raw = await getJson(
      `${cfg.civitaiApi}/model-versions/by-hash/${sha256}`,
      civitaiHeaders(cfg),
      cfg,
      `civitai by-hash ${sha256.slice(0, 12)}`,
    );
    const parsed = CivitaiVersion.safeParse(raw);
    return parsed.success ? parsed.data : null;
  } catch (e) {
    if (e instanceof CdError && e.code === "MODEL_SOURCE_NOT_FOUND") return null;
    throw e;
  }
}

/** The file of a Civitai version that has `sha256`, else its primary file. */
export function pickCivitaiFile(v: CivitaiVersion, sha256?: string) {
  const bySha = sha256 && v.files.find((f) => f.hashes?.SHA256?.toLowerCase() === sha256.toLowerCase());
  return bySha || v.files.find((f) => f.primary) || v.files[0];
}

function hfUrl(cfg: SourceConfig, s: Extract<ModelSource, { type: "huggingface" }>): string {
  const file = s.file.split("/").map(encodeURIComponent).join("/");
  return `${cfg.hfEndpoint}/${s.repo}/resolve/${encodeURIComponent(s.revision || "main")}/${file}`;
}

/** Turns a source into a request (Civitai needs an API call to find the file's URL). */
export async function resolveSource(
  cfg: SourceConfig,
  s: ModelSource,
  expectSha256?: string,
): Promise<ResolvedDownload> {
  const label = describeSource(s);
  switch (s.type) {
    case "huggingface":
      return {
        url: hfUrl(cfg, s),
        headers: cfg.hfToken ? { authorization: `Bearer ${cfg.hfToken}` } : {},
        label,
        filename: s.file.split("/").at(-1),
      };
    case "civitai": {
      const v = await civitaiVersion(cfg, s.version_id);
      const f = pickCivitaiFile(v, expectSha256);
      if (!f) throw new CdError("MODEL_SOURCE_INVALID", `${label}: the version lists no files`);
      const url = new URL(f.downloadUrl);
      // Civitai's documented way for downloads: the token as a query parameter survives the CDN redirect.
      if (cfg.civitaiToken) url.searchParams.set("token", cfg.civitaiToken);
      return {
        url: url.toString(),
        headers: {},
        label,
        sha256: f.hashes?.SHA256?.toLowerCase(),
        filename: f.name,
      };
    }
    case "url": {
      // `.cec` keeps URLs without credentials: a URL on a model host gets the user's key for it here.
      const url = new URL(s.url);
      const service = keyServiceOf(s.url, cfg);
      const headers: Record<string, string> = {};
      if (service === "huggingface" && cfg.hfToken) headers.authorization = `Bearer ${cfg.hfToken}`;
      if (service === "civitai" && cfg.civitaiToken) url.searchParams.set("token", cfg.civitaiToken);
      return { url: url.toString(), headers, label, filename: url.pathname.split("/").at(-1) };
    }
  }
}

/** HEAD on a Hugging Face file: the LFS sha256 and size the Hub reports (x-linked-etag / x-linked-size). */
export async function huggingfaceFileInfo(
  cfg: SourceConfig,
  s: Extract<ModelSource, { type: "huggingface" }>,
): Promise<{ sha256?: string; size?: number }> {
  const res = await httpFetch(hfUrl(cfg, s), {
    ...apiOptions(cfg, `huggingface ${s.repo}/${s.file}`),
    method: "HEAD",
    redirect: "manual",
    headers: cfg.hfToken ? { authorization: `Bearer ${cfg.hfToken}` } : {},
  });
  await res.body?.cancel();
  const etag = (res.headers.get("x-linked-etag") ?? "").replace(/"/g, "").toLowerCase();
  const size = Number(res.headers.get("x-linked-size") ?? NaN);
  return {
    sha256: /^[0-9a-f]{64}$/.test(etag) ? etag : undefined,
    size: Number.isFinite(size) ? size : undefined,
  };
}
