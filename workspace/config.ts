/**
 * ConfigManager (seed): workspace settings in `.metadata/workspace.json` (`settings`), and API keys in
 * `.metadata/keys.json` (mode 0600, outside every environment so never in `.cec`). Keys are only ever
 * shown masked (`hf_****abcd`); nothing here prints or logs them.
 */
import { chmod } from "node:fs/promises";
import { z } from "zod";
import { CdError } from "../lib/errors.ts";
import { readTextIfExists, writeFileAtomic } from "../lib/fsx.ts";
import type { WorkspacePaths } from "../reconcile/paths.ts";
import { type PackageIndexSettings, type Settings, settingsFromEnv } from "../lib/settings.ts";
import { readWorkspaceMeta, updateWorkspaceMeta } from "./workspace.ts";

/** An index URL kept on this machine: http(s) or file, no credentials in it (those go to the key store). */
const IndexUrl = z.string().url().refine((u) => /^(https?|file):/i.test(u), "must be an http(s) or file URL")
  .refine((u) => !/^[a-z]+:\/\/[^/]*@/i.test(u), {
    message: "must not contain credentials (store them with 'comfydock config set-key index:NAME')",
  });
const IndexName = z.string().regex(
  /^[A-Za-z0-9][A-Za-z0-9_-]*$/,
  "index names are letters, digits, '-', '_'",
);

function list(raw: string): unknown {
  return raw.trim().startsWith("[") ? JSON.parse(raw) : raw.split(",").map((s) => s.trim()).filter(Boolean);
}

/** Known settings: how a `config set` string is parsed, and what it means. */
export const SETTINGS = {
  model_paths: {
    schema: z.array(z.string().min(1)),
    parse: list,
    help:
      "folders with your own models, indexed and offered to every environment (comma-separated or a JSON list)",
  },
  default_python: {
    schema: z.string().regex(/^\d+\.\d+$/, "must look like 3.12"),
    parse: (raw: string): unknown => raw.trim(),
    help: "Python X.Y for new environments",
  },
  default_torch_backend: {
    schema: z.string().regex(
      /^(auto|cpu|pypi|cu\d{3}|rocm\d+\.\d+(\.\d+)?)$/,
      "must be auto, cpu, cuXXX, rocmX.Y or pypi",
    ),
    parse: (raw: string): unknown => raw.trim(),
    help: "torch backend for new environments",
  },
  comfyui_url: {
    schema: z.string().min(1),
    parse: (raw: string): unknown => raw.trim(),
    help: "ComfyUI git URL for new environments",
  },
  registry_url: {
    schema: z.string().url(),
    parse: (raw: string): unknown => raw.trim(),
    help: "ComfyUI Registry API base URL",
  },
  torch_index_mirror: {
    schema: IndexUrl,
    parse: (raw: string): unknown => raw.trim().replace(/\/+$/, ""),
    help: "a mirror of https://download.pytorch.org/whl on this machine (same layout: <mirror>/cu124); " +
      ".cec keeps the canonical index",
  },
  default_index: {
    schema: IndexUrl,
    parse: (raw: string): unknown => raw.trim().replace(/\/+$/, ""),
    help: "the package index this machine uses instead of PyPI (a mirror's .../simple); .cec keeps PyPI",
  },
  extra_indexes: {
    schema: z.array(
      z.string().transform((e, c) => {
        const i = e.indexOf("=");
        const name = IndexName.safeParse(e.slice(0, Math.max(i, 0)));
        const url = IndexUrl.safeParse(e.slice(i + 1));
        if (i <= 0 || !name.success || !url.success) {
          c.addIssue({
            code: "custom",
            message: `'${e}' is not NAME=URL (an http(s) URL without credentials)`,
          });
          return z.NEVER;
        }
        return `${name.data}=${url.data}`;
      }),
    ),
    parse: list,
    help: "more package indexes for this machine, NAME=URL (comma-separated or a JSON list)",
  },
} as const;
export type SettingKey = keyof typeof SETTINGS;

export const SERVICES = ["civitai", "huggingface", "github"] as const;
/** A key-store entry: an API service, or `index:NAME` (USER:PASSWORD of a package index). */
export type Service = (typeof SERVICES)[number] | `index:${string}`;

/** Environment variables that override a stored key (the tools' usual names). */
export const KEY_ENV: Record<(typeof SERVICES)[number], string> = {
  civitai: "CIVITAI_API_TOKEN",
  huggingface: "HF_TOKEN",
  github: "GITHUB_TOKEN",
};

function settingKey(key: string): SettingKey {
  if (!(key in SETTINGS)) {
    throw new CdError("UNKNOWN_SETTING", `unknown setting '${key}'`, {
      hint: `known settings: ${
        Object.keys(SETTINGS).join(", ")
      }; API keys: 'comfydock config set-key SERVICE'`,
    });
  }
  return key as SettingKey;
}

export function serviceName(s: string): Service {
  if (s.startsWith("index:") && IndexName.safeParse(s.slice(6)).success) return s as Service;
  if (!(SERVICES as readonly string[]).includes(s)) {
    throw new CdError("UNKNOWN_SERVICE", `unknown service '${s}'`, {
      hint: `use one of: ${SERVICES.join(", ")}, or index:NAME for a package index (pytorch, default, ` +
        "or an extra index's name)",
    });
  }
  return s as Service;
}

/** `hf_abcdef123456` -> `hf_****3456`; short keys show nothing of themselves. */
export function maskKey(key: string): string {
  const prefix = /^([A-Za-z]{1,4}_)/.exec(key)?.[1] ?? "";
  return key.length - prefix.length >= 8 ? `${prefix}****${key.slice(-4)}` : `${prefix}****`;
}

const KeysFile = z.record(z.string(), z.string());

/**
 * The settings of one run: the process environment first, then the workspace's settings and keys.json,
 * then the defaults. Read once by the faces and passed down.
 */
export async function loadSettings(
  ws: WorkspacePaths,
  env: Record<string, string | undefined>,
): Promise<Settings> {
  const s = settingsFromEnv(env);
  const meta = await readTextIfExists(ws.workspaceJson) === null ? null : await readWorkspaceMeta(ws);
  const stored = meta?.settings ?? {};
  if (!env.COMFYDOCK_REGISTRY_URL && typeof stored.registry_url === "string") {
    s.registryUrl = stored.registry_url.replace(/\/+$/, "");
  }
  if (!env.COMFYDOCK_COMFYUI_URL && typeof stored.comfyui_url === "string") s.comfyuiUrl = stored.comfyui_url;
  const config = new ConfigManager(ws, env);
  s.hf.token = await config.getKey("huggingface");
  s.civitai.token = await config.getKey("civitai");
  s.github.token = await config.getKey("github");
  const extra = storedSetting(ws, stored, "extra_indexes") ?? [];
  s.indexes = {
    torchMirror: storedSetting(ws, stored, "torch_index_mirror"),
    defaultIndex: storedSetting(ws, stored, "default_index"),
    extraIndexes: extra.map((e) => ({ name: e.slice(0, e.indexOf("=")), url: e.slice(e.indexOf("=") + 1) })),
    credentials: await config.indexCredentials(),
  };
  return s;
}

/** A setting as stored in workspace.json, checked again (the file may have been edited by hand). */
function storedSetting<K extends SettingKey>(
  ws: WorkspacePaths,
  stored: Record<string, unknown>,
  key: K,
): z.output<(typeof SETTINGS)[K]["schema"]> | null {
  if (stored[key] === undefined || stored[key] === null) return null;
  const r = SETTINGS[key].schema.safeParse(stored[key]);
  if (!r.success) {
    throw new CdError(
      "INVALID_SETTING",
      `${ws.workspaceJson}: settings.${key}: ${r.error.issues[0].message}`,
      {
        hint: `set it again with 'comfydock config set ${key} VALUE' (${SETTINGS[key].help})`,
      },
    );
  }
  return r.data as z.output<(typeof SETTINGS)[K]["schema"]>;
}

export class ConfigManager {
  constructor(readonly ws: WorkspacePaths, private readonly env: Record<string, string | undefined>) {}

  async get(key: string): Promise<unknown> {
    const k = settingKey(key);
    return (await readWorkspaceMeta(this.ws)).settings[k] ?? null;
  }

  /** Parses `raw` for the setting's type, validates, stores; returns the stored value. */
  async set(key: string, raw: string): Promise<unknown> {
    const k = settingKey(key);
    let value: unknown;
    try {
      value = SETTINGS[k].parse(raw);
    } catch (e) {
      throw new CdError("INVALID_SETTING", `${k}: cannot read '${raw}': ${e}`, { hint: SETTINGS[k].help });
    }
    const parsed = SETTINGS[k].schema.safeParse(value);
    if (!parsed.success) {
      throw new CdError(
        "INVALID_SETTING",
        `${k}: ${parsed.error.issues[0].message} (got ${JSON.stringify(raw)})`,
        {
          hint: SETTINGS[k].help,
        },
      );
    }
    await updateWorkspaceMeta(this.ws, (m) => {
      m.settings[k] = parsed.data;
    });
    return parsed.data;
  }

  /** Settings and masked keys (where each key comes from: env var or keys.json). */
  async list(): Promise<
    { settings: Record<string, unknown>; keys: Record<string, { masked: string; source: string }> }
  > {
    const settings = (await readWorkspaceMeta(this.ws)).settings;
    const keys: Record<string, { masked: string; source: string }> = {};
    const stored = await this.readKeys();
    for (const s of SERVICES) {
      const fromEnv = this.env[KEY_ENV[s]];
      if (fromEnv) keys[s] = { masked: maskKey(fromEnv), source: `$${KEY_ENV[s]}` };
      else if (stored[s]) keys[s] = { masked: maskKey(stored[s]), source: "keys.json" };
    }
    for (const [s, v] of Object.entries(stored)) {
      if (s.startsWith("index:")) keys[s] = { masked: maskKey(v), source: "keys.json" };
    }
    return { settings, keys };
  }

  private async readKeys(): Promise<Record<string, string>> {
    const text = await readTextIfExists(this.ws.keysFile);
    if (text === null) return {};
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      raw = undefined; // reported below, with what to do, like any other malformed content
    }
    const parsed = KeysFile.safeParse(raw);
    if (!parsed.success) {
      throw new CdError("KEYS_FILE_INVALID", `${this.ws.keysFile} is not a JSON object of strings`, {
        hint: "remove it and store the keys again with 'comfydock config set-key SERVICE'",
      });
    }
    return parsed.data;
  }

  /** Stores a key (mode 0600). The value is trimmed; an empty value removes the key. */
  async setKey(service: string, value: string): Promise<{ service: Service; masked: string | null }> {
    const s = serviceName(service);
    const key = value.trim();
    if (/\s/.test(key)) {
      throw new CdError("INVALID_KEY", `the ${s} key contains whitespace`, { hint: "paste the key alone" });
    }
    if (key && s.startsWith("index:") && !/^[^:]+:.+$/.test(key)) {
      throw new CdError("INVALID_KEY", `the ${s} credentials must be USER:PASSWORD`, {
        hint: "for a token-only index use __token__:TOKEN",
      });
    }
    const keys = await this.readKeys();
    if (key) keys[s] = key;
    else delete keys[s];
    await Deno.mkdir(this.ws.metadata, { recursive: true });
    await writeFileAtomic(this.ws.keysFile, JSON.stringify(keys, null, 2) + "\n", 0o600);
    // writeFileAtomic's mode applies at creation, under the umask: make 0600 exact.
    if (Deno.build.os !== "windows") await chmod(this.ws.keysFile, 0o600);
    return { service: s, masked: key ? maskKey(key) : null };
  }

  /** The key for a service: its environment variable first, then keys.json; null when none. */
  async getKey(service: Service): Promise<string | null> {
    const fromEnv = service in KEY_ENV ? this.env[KEY_ENV[service as keyof typeof KEY_ENV]] : undefined;
    return fromEnv || (await this.readKeys())[service] || null;
  }

  /** Package index credentials of the key store (`index:NAME` = USER:PASSWORD), by index name. */
  async indexCredentials(): Promise<PackageIndexSettings["credentials"]> {
    const out: PackageIndexSettings["credentials"] = {};
    for (const [k, v] of Object.entries(await this.readKeys())) {
      const i = v.indexOf(":");
      if (k.startsWith("index:") && i > 0) {
        out[k.slice(6)] = { username: v.slice(0, i), password: v.slice(i + 1) };
      }
    }
    return out;
  }
}
