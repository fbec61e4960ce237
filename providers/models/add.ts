/**
 * `model add`: turns what the user typed (a local path, a URL, a hash, `hf:REPO/FILE`, `civitai:VERSION`)
 * into a `[tool.comfydock.models.<key>]` entry identified by sha256. Where the source publishes the hash
 * (Hugging Face LFS, Civitai) nothing is downloaded here: apply does it, verified. A plain URL has to be
 * downloaded first to learn its hash; the file then lands in the workspace store, so apply only links it.
 */
import { basename, dirname, join, resolve } from "node:path";
import { CdError } from "../../lib/errors.ts";
import { urlCredentials } from "../../lib/redact.ts";
import type { ModelSource } from "../../reconcile/schema.ts";
import type { WorkspacePaths } from "../../reconcile/paths.ts";
import type { Settings } from "../../lib/settings.ts";
import { downloadModel, type DownloadOptions } from "./download.ts";
import { rememberSource } from "./find_sources.ts";
import type { ModelIndex } from "./index_db.ts";
import {
  CIVITAI_CATEGORY,
  civitaiByHash,
  civitaiVersion,
  describeSource,
  huggingfaceFileInfo,
  keyServiceOf,
  pickCivitaiFile,
  type SourceConfig,
  sourceConfig,
} from "./sources.ts";
import { downloadsDir, storePathFor } from "./store.ts";
import { categoryOf } from "./walk.ts";

export interface NewModelEntry {
  key: string;
  spec: {
    hash: string;
    sha256: string;
    size?: number;
    category: string;
    filename: string;
    sources: ModelSource[];
  };
  /** What happened, for the user ("indexed in place", "downloaded to the store"). */
  note: string;
}

export type AddInput =
  | { kind: "path"; path: string }
  | { kind: "url"; url: string }
  | { kind: "hash"; sha256: string }
  | { kind: "huggingface"; repo: string; file: string; revision?: string }
  | { kind: "civitai"; versionId: string };

/** Classifies the argument of `model add`. */
export function parseAddSource(arg: string): AddInput {
  if (arg.startsWith("hf:")) {
    const [spec, revision] = arg.slice(3).split("@");
    const parts = spec.split("/").filter(Boolean);
    if (parts.length < 3) {
      throw new CdError("MODEL_BAD_SOURCE", `'${arg}' is not hf:OWNER/REPO/FILE`, {
        hint: "e.g. hf:stabilityai/sdxl-vae/sdxl_vae.safetensors (optionally @revision)",
      });
    }
    return {
      kind: "huggingface",
      repo: parts.slice(0, 2).join("/"),
      file: parts.slice(2).join("/"),
      revision,
    };
  }
  if (arg.startsWith("civitai:")) {
    const id = arg.slice(8);
    if (!/^\d+$/.test(id)) {
      throw new CdError("MODEL_BAD_SOURCE", `'${arg}' is not civitai:VERSION_ID`, {
        hint: "use the numeric model version id (the ?modelVersionId= in a Civitai URL)",
      });
    }
    return { kind: "civitai", versionId: id };
  }
  if (/^https?:\/\//i.test(arg)) return { kind: "url", url: arg };
  const hash = /^(?:sha256:)?([0-9a-fA-F]{64})$/.exec(arg);
  if (hash) return { kind: "hash", sha256: hash[1].toLowerCase() };
  return { kind: "path", path: arg };
}

function hubSource(
  input: Extract<AddInput, { kind: "huggingface" }>,
): Extract<ModelSource, { type: "huggingface" }> {
  return {
    type: "huggingface",
    repo: input.repo,
    file: input.file,
    ...(input.revision ? { revision: input.revision } : {}),
  };
}

/**
 * The `.cec` source a `model add` argument names as it is given (hf:, civitai:, a URL), without asking
 * anyone; null for a local file or a bare hash.
 */
export function sourceOfInput(input: AddInput): ModelSource | null {
  switch (input.kind) {
    case "huggingface":
      return hubSource(input);
    case "civitai":
      return { type: "civitai", version_id: input.versionId };
    case "url":
      return URL.canParse(input.url) ? { type: "url", url: input.url } : null;
    default:
      return null;
  }
}

/** A pyproject key from a filename: lowercase letters, digits, `_` and `-`. */
export function keyFromFilename(filename: string): string {
  const stem = basename(filename).replace(/\.[^.]+$/, "");
  const key = stem.toLowerCase().replace(/[^a-z0-9_-]+/g, "_").replace(/^_+|_+$/g, "");
  return key || "model";
}

type MakeEntry = (
  sha256: string,
  size: number | undefined,
  category: string | undefined | null,
  filename: string,
  sources: ModelSource[],
  note: string,
) => NewModelEntry;

/**
 * What to do with credentials in a model URL (they must never reach `.cec`): `store` (the user typed the
 * URL: a token for Hugging Face or Civitai goes to the key store, anything else is refused), or `drop`
 * (the URL came from someone else's workflow: their token is not ours to keep or to use). Without a
 * policy a URL with credentials is refused.
 */
export type CredentialPolicy =
  | { kind: "store"; store: (service: "huggingface" | "civitai", token: string) => Promise<void> }
  | { kind: "drop" };

function credentialsRefused(where: string[], service: string | null): CdError {
  return new CdError(
    "MODEL_URL_CREDENTIALS",
    `the URL carries credentials (${where.join(", ")}); they would be committed to .cec`,
    {
      hint: service
        ? `store the token with 'comfydock config set-key ${service}' and pass the URL without it`
        : "pass the URL without them (ComfyDock keeps tokens for Hugging Face and Civitai only: " +
          "'comfydock config set-key SERVICE')",
    },
  );
}

/** The URL to record for a `model add URL`, and the config to download it with (see CredentialPolicy). */
async function withoutCredentials(
  url: string,
  cfg: SourceConfig,
  policy: CredentialPolicy | undefined,
): Promise<{ url: string; cfg: SourceConfig; note: string | null }> {
  const found = urlCredentials(url);
  if (!found) return { url, cfg, note: null };
  if (policy?.kind === "drop") {
    return { url: found.clean, cfg, note: `credentials in the URL (${found.where.join(", ")}) were dropped` };
  }
  const service = keyServiceOf(found.clean, cfg);
  if (!policy || !service || found.values.length !== 1) throw credentialsRefused(found.where, service);
  const token = found.values[0];
  await policy.store(service, token);
  return {
    url: found.clean,
    cfg: service === "huggingface" ? { ...cfg, hfToken: token } : { ...cfg, civitaiToken: token },
    note: `the token in the URL is now the ${service} key (comfydock config set-key ${service}); ` +
      ".cec records the URL without it",
  };
}

function needCategory(what: string): never {
  throw new CdError("MODEL_CATEGORY_REQUIRED", `cannot tell which ComfyUI models folder ${what} belongs in`, {
    hint: "pass --category (checkpoints, loras, vae, text_encoders, diffusion_models, controlnet, ...)",
  });
}

export async function buildModelEntry(
  input: AddInput,
  opts: { category?: string; key?: string },
  ctx: {
    ws: WorkspacePaths;
    settings: Settings;
    index: ModelIndex;
    download?: DownloadOptions;
    credentials?: CredentialPolicy;
  },
): Promise<NewModelEntry> {
  const cfg = sourceConfig(ctx.settings);
  const entry: MakeEntry = (sha256, size, category, filename, sources, note) => {
    const cat = opts.category ?? category ?? needCategory(filename);
    return {
      key: opts.key ?? keyFromFilename(filename),
      spec: {
        hash: `sha256:${sha256}`,
        sha256,
        ...(size !== undefined ? { size } : {}),
        category: cat,
        filename: basename(filename),
        sources,
      },
      note,
    };
  };
  switch (input.kind) {
    case "path": {
      const abs = resolve(input.path);
      const st = await Deno.stat(abs).catch(() => null);
      if (!st?.isFile) {
        throw new CdError("MODEL_BAD_SOURCE", `${abs} is not a file`, {
          hint: "pass a model file, a URL, a sha256, hf:REPO/FILE or civitai:VERSION_ID",
        });
      }
      const category = categoryOf(dirname(abs), abs);
      const m = await ctx.index.registerModel(abs, { category: opts.category ?? category });
      return entry(
        m.hashes.sha256!,
        st.size,
        category,
        basename(abs),
        [],
        `indexed ${abs} in place (not copied)`,
      );
    }
    case "huggingface": {
      const source = hubSource(input);
      const info = await huggingfaceFileInfo(cfg, source).catch(() => ({
        sha256: undefined,
        size: undefined,
      }));
      if (info.sha256) {
        return entry(
          info.sha256,
          info.size,
          undefined,
          input.file,
          [source],
          "hash from the Hub (LFS sha256)",
        );
      }
      return await downloadFirst(cfg, source, input.file, opts, ctx, entry);
    }
    case "civitai": {
      const v = await civitaiVersion(cfg, input.versionId);
      const f = pickCivitaiFile(v);
      const sha = f?.hashes?.SHA256?.toLowerCase();
      if (!f || !sha) {
        throw new CdError(
          "MODEL_SOURCE_INVALID",
          `civitai version ${input.versionId} lists no file with a SHA256`,
        );
      }
      return entry(
        sha,
        undefined,
        CIVITAI_CATEGORY[v.model?.type ?? ""],
        f.name,
        [{ type: "civitai", ...(v.modelId ? { model_id: v.modelId } : {}), version_id: v.id }],
        `civitai ${v.model?.name ?? ""} ${v.name ?? ""}`.trim(),
      );
    }
    case "url": {
      const clean = await withoutCredentials(input.url, cfg, ctx.credentials);
      const made = await downloadFirst(
        clean.cfg,
        { type: "url", url: clean.url },
        new URL(clean.url).pathname.split("/").at(-1) || "model",
        opts,
        ctx,
        entry,
      );
      return clean.note ? { ...made, note: `${made.note}; ${clean.note}` } : made;
    }
    case "hash": {
      const m = ctx.index.resolveByHash(`sha256:${input.sha256}`);
      const found = await civitaiByHash(cfg, input.sha256).catch(() => null);
      const f = found ? pickCivitaiFile(found, input.sha256) : undefined;
      const sources: ModelSource[] = found
        ? [{ type: "civitai", ...(found.modelId ? { model_id: found.modelId } : {}), version_id: found.id }]
        : [];
      if (m && m.files.length) {
        const file = m.files[0];
        return entry(
          input.sha256,
          m.size,
          file.category,
          file.filename,
          sources,
          `found in the index: ${file.path}`,
        );
      }
      if (f) {
        return entry(
          input.sha256,
          undefined,
          CIVITAI_CATEGORY[found!.model?.type ?? ""],
          f.name,
          sources,
          "found on Civitai",
        );
      }
      throw new CdError(
        "MODEL_NOT_FOUND",
        `no model with sha256 ${input.sha256} in the index or on Civitai`,
        {
          hint: "scan the folder that holds it ('comfydock model scan PATH') or add it by URL",
        },
      );
    }
  }
}

async function downloadFirst(
  cfg: SourceConfig,
  source: ModelSource,
  filename: string,
  opts: { category?: string },
  ctx: { ws: WorkspacePaths; settings: Settings; index: ModelIndex; download?: DownloadOptions },
  entry: MakeEntry,
): Promise<NewModelEntry> {
  const category = opts.category ?? needCategory(filename);
  const tmp = join(downloadsDir(ctx.ws), `add-${crypto.randomUUID().slice(0, 8)}.download`);
  ctx.download?.log?.(
    `downloading ${describeSource(source)} to learn its sha256 and size (it is kept in the model store, ` +
      "so applying it later downloads nothing)",
  );
  // The file's own name in messages: the temporary one is an internal detail.
  const r = await downloadModel(cfg, [source], {}, tmp, downloadsDir(ctx.ws), {
    retryBaseMs: ctx.settings.downloadRetryMs,
    name: filename,
    ...ctx.download,
  });
  const existing = ctx.index.filesWithHash("sha256", r.sha256)[0];
  if (existing) {
    await Deno.remove(tmp);
    return entry(r.sha256, r.size, category, filename, [source], `already on this machine: ${existing.path}`);
  }
  const dest = await storePathFor(ctx.ws, category, filename, r.sha256);
  await Deno.mkdir(dirname(dest), { recursive: true });
  await Deno.rename(tmp, dest);
  const m = await ctx.index.registerModel(dest, { category, known: { sha256: r.sha256 } });
  rememberSource(ctx.index, m.id, r.source);
  return entry(r.sha256, r.size, category, filename, [source], `downloaded to ${dest}`);
}
