/**
 * Settings: every outside URL, token, binary, timeout and test hook the tool uses, read ONCE at the edge
 * (the CLI, the Action, a test) from the process environment and the workspace config, then passed down
 * (like uv's settings). Nothing below the faces reads `Deno.env`, so a library caller or a test can run two
 * differently configured operations in one process.
 */
import { delimiter, join } from "node:path";
import { homedir } from "node:os";

export const DEFAULT_REGISTRY_URL = "https://api.comfy.org";
export const DEFAULT_COMFYUI_URL = "https://github.com/comfyanonymous/ComfyUI";
export const DEFAULT_NODE_MAP_URL =
  "https://raw.githubusercontent.com/ltdrdata/ComfyUI-Manager/main/extension-node-map.json";
export const DEFAULT_HF_ENDPOINT = "https://huggingface.co";
export const DEFAULT_CIVITAI_API = "https://civitai.com/api/v1";
export const DEFAULT_GITHUB_API = "https://api.github.com";

/** Timeouts and retries of API calls (COMFYDOCK_HTTP_TIMEOUT_MS, COMFYDOCK_HTTP_RETRY_BASE_MS). */
export const DEFAULT_HTTP = { timeoutMs: 15_000, retryBaseMs: 250 };
/**
 * Bounds of downloads: 64 GiB when nobody declared a size (the largest single model files published are
 * ~25-40 GB), and at least 1 KiB/s over every 60 s (a stalled or dripping server is cut, a slow line is not).
 */
export const DEFAULT_DOWNLOAD = { maxBytes: 64 * 1024 ** 3, minRate: 1024, stallMs: 60_000 };

export interface Settings {
  /** ComfyUI Registry API base (COMFYDOCK_REGISTRY_URL). */
  registryUrl: string;
  /** ComfyUI git repository for new environments (COMFYDOCK_COMFYUI_URL). */
  comfyuiUrl: string;
  /** ComfyUI-Manager's extension-node-map.json for `node index update` (COMFYDOCK_NODE_MAP_URL). */
  nodeMapUrl: string;
  /** A local extension-node-map.json for workflow analysis without an index (COMFYDOCK_NODE_MAP). */
  nodeMapFile: string | null;
  /** The uv binary (COMFYDOCK_UV); null: `uv` on the search path. */
  uv: string | null;
  /** Machine-local package indexes and mirrors (workspace config); applied to every uv call, never in `.cec`. */
  indexes: PackageIndexSettings;
  hf: { endpoint: string; token: string | null };
  civitai: { api: string; token: string | null };
  github: { api: string; token: string | null };
  http: {
    /** Per attempt (COMFYDOCK_HTTP_TIMEOUT_MS). */
    timeoutMs: number;
    /** First backoff delay, doubling (COMFYDOCK_HTTP_RETRY_BASE_MS). */
    retryBaseMs: number;
  };
  /** First backoff delay of model downloads (COMFYDOCK_DOWNLOAD_RETRY_MS). */
  downloadRetryMs: number;
  /**
   * Bounds of every download (model files, node archives, the node map, workflow URLs), so no server can
   * fill the disk or hang a command (README "Configuration").
   */
  download: {
    /** Most bytes of a download whose size nobody declared (COMFYDOCK_DOWNLOAD_MAX_BYTES, default 64 GiB). */
    maxBytes: number;
    /** Slowest transfer accepted, in bytes/s over each window (COMFYDOCK_DOWNLOAD_MIN_RATE, default 1024). */
    minRate: number;
    /** The window, in ms (COMFYDOCK_DOWNLOAD_STALL_SECONDS, default 60 s). */
    stallMs: number;
  };
  /** Time limit of `comfydock health` / `apply --verify` (COMFYDOCK_HEALTH_TIMEOUT, seconds; default 300). */
  healthTimeoutMs: number;
  /** Fault injection for tests (COMFYDOCK_FAULT, COMFYDOCK_CREATE_FAULT). */
  faults: { apply: string | null; create: string | null };
  /** Where binaries are looked for (PATH), and the home and pyenv root for Python discovery. */
  system: { path: string[]; home: string; pyenvRoot: string };
}

/**
 * Where this machine gets Python packages from, when not from the canonical indexes `.cec` names (PyPI and
 * download.pytorch.org): `comfydock config set torch_index_mirror|default_index|extra_indexes`, credentials
 * with `comfydock config set-key index:<name>`.
 */
export interface PackageIndexSettings {
  /** Serves what https://download.pytorch.org/whl serves, same layout (`<mirror>/cu124/...`). */
  torchMirror: string | null;
  /** Replaces PyPI (https://pypi.org/simple) as the default index. */
  defaultIndex: string | null;
  /** More indexes searched after the project's own (uv's `--index`). */
  extraIndexes: { name: string; url: string }[];
  /** Index name (`pytorch`, `default`, an extra index's name) -> credentials, from the key store. */
  credentials: Record<string, { username: string; password: string }>;
}

export const NO_INDEX_SETTINGS: PackageIndexSettings = {
  torchMirror: null,
  defaultIndex: null,
  extraIndexes: [],
  credentials: {},
};

type Env = Record<string, string | undefined>;

function trimSlash(url: string): string {
  return url.replace(/\/+$/, "");
}

function num(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  const v = Number(raw);
  return raw !== undefined && raw !== "" && Number.isFinite(v) && v >= 0 ? v : fallback;
}

/** Settings from a process environment (pure: the caller passes `Deno.env.toObject()`). */
export function settingsFromEnv(env: Env): Settings {
  const home = env.HOME || env.USERPROFILE || homedir();
  return {
    registryUrl: trimSlash(env.COMFYDOCK_REGISTRY_URL || DEFAULT_REGISTRY_URL),
    comfyuiUrl: env.COMFYDOCK_COMFYUI_URL || DEFAULT_COMFYUI_URL,
    nodeMapUrl: env.COMFYDOCK_NODE_MAP_URL || DEFAULT_NODE_MAP_URL,
    nodeMapFile: env.COMFYDOCK_NODE_MAP || null,
    uv: env.COMFYDOCK_UV || null,
    indexes: NO_INDEX_SETTINGS,
    hf: { endpoint: trimSlash(env.HF_ENDPOINT || DEFAULT_HF_ENDPOINT), token: env.HF_TOKEN || null },
    civitai: {
      api: trimSlash(env.CIVITAI_API_URL || DEFAULT_CIVITAI_API),
      token: env.CIVITAI_API_TOKEN || null,
    },
    github: { api: trimSlash(env.GITHUB_API_URL || DEFAULT_GITHUB_API), token: env.GITHUB_TOKEN || null },
    http: {
      timeoutMs: num(env, "COMFYDOCK_HTTP_TIMEOUT_MS", DEFAULT_HTTP.timeoutMs),
      retryBaseMs: num(env, "COMFYDOCK_HTTP_RETRY_BASE_MS", DEFAULT_HTTP.retryBaseMs),
    },
    downloadRetryMs: num(env, "COMFYDOCK_DOWNLOAD_RETRY_MS", 1000),
    download: {
      maxBytes: num(env, "COMFYDOCK_DOWNLOAD_MAX_BYTES", DEFAULT_DOWNLOAD.maxBytes),
      minRate: num(env, "COMFYDOCK_DOWNLOAD_MIN_RATE", DEFAULT_DOWNLOAD.minRate),
      stallMs: num(env, "COMFYDOCK_DOWNLOAD_STALL_SECONDS", DEFAULT_DOWNLOAD.stallMs / 1000) * 1000,
    },
    healthTimeoutMs: num(env, "COMFYDOCK_HEALTH_TIMEOUT", 300) * 1000,
    faults: { apply: env.COMFYDOCK_FAULT || null, create: env.COMFYDOCK_CREATE_FAULT || null },
    system: {
      path: (env.PATH ?? "").split(delimiter).filter(Boolean),
      home,
      pyenvRoot: env.PYENV_ROOT || join(home, ".pyenv"),
    },
  };
}
