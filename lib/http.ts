/**
 * The one HTTP door (DESIGN §2): requests with a timeout and retries, and body readers with bounds, for
 * the registry, node archives, the node map, workflow URLs, the model hosts' APIs and model downloads
 * (which keep their Range-resume loop on top of `httpFetch` and `bodyChunks`).
 *
 * - `httpFetch` retries network errors, 5xx and 429 with exponential backoff, honouring Retry-After up to a
 *   limit; every other status is returned to the caller, which knows what a 404 means for its request.
 * - Bodies are bounded in size (`maxBytes`: the declared size, or a cap) and in time: a transfer that
 *   brings less than `minRate` bytes/s over a `stallMs` window is cut. A server that sends nothing, or one
 *   byte every few seconds, ends with a clear error instead of hanging a command; one that sends more
 *   than allowed is cut at the limit instead of filling the disk.
 */
import { CdError, errorMessage } from "./errors.ts";
import { redactSecrets } from "./redact.ts";
import { DEFAULT_DOWNLOAD, DEFAULT_HTTP, type Settings } from "./settings.ts";

/** The settings every HTTP caller needs: API timeouts and download bounds. */
export type NetSettings = Pick<Settings, "http" | "download"> & {
  /** The work these requests belong to was interrupted (a change being rolled back): they stop at once. */
  signal?: AbortSignal;
};
/** For library callers without Settings (and benches): the documented defaults. */
export const DEFAULT_NET: NetSettings = { http: DEFAULT_HTTP, download: DEFAULT_DOWNLOAD };

export interface HttpOptions {
  method?: string;
  /** "manual": a redirect is returned, not followed (to read the first answer's headers). */
  redirect?: RequestRedirect;
  body?: string;
  headers?: Record<string, string>;
  /** What is being fetched, for error messages ("the ComfyUI Registry at https://..."). */
  what: string;
  /**
   * Per attempt (Settings.http.timeoutMs): for the whole exchange, or with `stream` until the response
   * headers arrive (the body is then read with `bodyChunks`, bounded by its own limits).
   */
  timeoutMs?: number;
  stream?: boolean;
  /** Extra attempts after the first. Default 3. */
  retries?: number;
  /** First backoff delay; doubles each retry (Settings.http.retryBaseMs). */
  retryBaseMs?: number;
  /** Longest Retry-After honoured; a longer one ends the retries. Default 10 s. */
  maxRetryAfterMs?: number;
  /** Hint when the server cannot be reached at all. */
  unreachableHint?: string;
  /** Told about each retry before its wait (for progress lines). */
  onRetry?: (problem: string, waitMs: number) => void;
  /** Tokens that may appear in the URL or the headers: never shown in a message. */
  secrets?: (string | null | undefined)[];
  /** Stops the request at once, its body's reading included, and its retries (NetSettings.signal). */
  signal?: AbortSignal;
}

/** What bounds a body (Settings.download, with the declared size as `maxBytes` when there is one). */
export interface BodyLimits {
  maxBytes: number;
  /** Bytes per second a transfer must bring over each `stallMs` window. */
  minRate: number;
  stallMs: number;
}

/** The body limits of a download from the settings, capped at `declared` bytes when the size is known. */
export function bodyLimits(net: NetSettings, declared?: number): BodyLimits {
  const d = net.download;
  return { maxBytes: declared ?? d.maxBytes, minRate: d.minRate, stallMs: d.stallMs };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function retryAfterMs(res: Response): number | null {
  const h = res.headers.get("retry-after");
  if (!h) return null;
  const secs = Number(h);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(h);
  return Number.isNaN(at) ? null : Math.max(at - Date.now(), 0);
}

/** Fetches with retries. Returns the final Response for any non-retryable status. */
export async function httpFetch(url: string, opts: HttpOptions): Promise<Response> {
  const retries = opts.retries ?? 3;
  const base = opts.retryBaseMs ?? 250;
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const maxWait = opts.maxRetryAfterMs ?? 10_000;
  const clean = (s: string) => redactSecrets(s, opts.secrets);
  let lastProblem = "";
  let wait = 0;
  let tried = 0;
  const stopped = () => new CdError("INTERRUPTED", "interrupted", { exitCode: 130 });
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) {
      opts.onRetry?.(clean(lastProblem), wait);
      await sleep(wait);
    }
    if (opts.signal?.aborted) throw stopped();
    wait = base * 2 ** attempt * (1 + Math.random() * 0.2);
    // Without `stream` the timeout covers the body too (the signal aborts its reading); with it, the timer
    // stops at the headers and bodyChunks bounds the rest.
    const ctrl = new AbortController();
    const own = opts.stream ? ctrl.signal : AbortSignal.timeout(timeoutMs);
    const interrupted = opts.signal;
    const signal = interrupted ? AbortSignal.any([own, interrupted]) : own;
    const timer = opts.stream
      ? setTimeout(() => ctrl.abort(new DOMException("timeout", "TimeoutError")), timeoutMs)
      : undefined;
    let res: Response;
    tried++;
    try {
      res = await fetch(url, {
        method: opts.method ?? "GET",
        redirect: opts.redirect,
        body: opts.body,
        headers: { "user-agent": "comfydock", ...opts.headers },
        signal,
      });
    } catch (e) {
      if (interrupted?.aborted) throw stopped();
      lastProblem = signal.aborted ? `no answer within ${timeoutMs} ms` : errorMessage(e);
      continue;
    } finally {
      clearTimeout(timer);
    }
    if (res.status >= 500 || res.status === 429) {
      lastProblem = `HTTP ${res.status} ${res.statusText}`.trim();
      const asked = res.status === 429 ? retryAfterMs(res) : null;
      await res.body?.cancel().catch(() => {});
      if (asked !== null) {
        if (asked > maxWait) {
          lastProblem += ` (the server asks to wait ${Math.round(asked / 1000)} s)`;
          break;
        }
        wait = asked;
      }
      continue;
    }
    return res;
  }
  const serverError = /^HTTP (5\d\d|429)/.test(lastProblem);
  throw new CdError(
    serverError ? "HTTP_SERVER_ERROR" : "HTTP_UNREACHABLE",
    clean(`${opts.what} failed after ${tried} attempt${tried === 1 ? "" : "s"}: ${lastProblem} (${url})`),
    {
      hint: serverError
        ? "the server is having trouble; try again in a few minutes"
        : opts.unreachableHint ?? "check your network connection and the URL",
    },
  );
}

/** Why a body was cut: the caller turns it into its own error (archive, model, workflow). */
export class BodyLimitError extends Error {
  constructor(readonly kind: "too-large" | "too-slow", message: string, readonly received: number) {
    super(message);
  }
}

/**
 * The body of `res` chunk by chunk, within `limits`: more than `maxBytes` or a window of `stallMs` that
 * brought less than `minRate` bytes/s cancels the connection and throws a BodyLimitError (a timer checks
 * the window even when nothing arrives).
 */
export async function* bodyChunks(res: Response, limits: BodyLimits): AsyncGenerator<Uint8Array> {
  if (!res.body) return;
  const reader = res.body.getReader();
  let received = 0;
  let windowStart = Date.now();
  let windowBytes = 0;
  const need = limits.minRate * (limits.stallMs / 1000);
  try {
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stalled = new Promise<"stall">((r) => {
        timer = setTimeout(() => r("stall"), Math.max(0, windowStart + limits.stallMs - Date.now()));
      });
      const next = await Promise.race([reader.read(), stalled]).finally(() => clearTimeout(timer));
      const now = Date.now();
      if (next !== "stall") {
        if (next.done) return;
        received += next.value.length;
        windowBytes += next.value.length;
        if (received > limits.maxBytes) {
          throw new BodyLimitError("too-large", `more than ${limits.maxBytes} bytes`, received);
        }
        yield next.value;
      }
      if (now - windowStart >= limits.stallMs) {
        if (windowBytes < need) {
          throw new BodyLimitError(
            "too-slow",
            `${windowBytes} bytes in the last ${
              limits.stallMs / 1000
            } s (slower than ${limits.minRate} bytes/s)`,
            received,
          );
        }
        windowStart = now;
        windowBytes = 0;
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** The whole body of `res` in memory, within `limits` (small things: archives, JSON, workflows). */
export async function readBody(res: Response, limits: BodyLimits): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of bodyChunks(res, limits)) {
    chunks.push(chunk);
    size += chunk.length;
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * GET `url` into memory (archives, the node map, workflows): retried like every request, then read within
 * `maxBytes` and the download rate rule. `failed` turns a non-2xx status into the caller's error;
 * `limited` does the same for a body that broke a limit.
 */
export async function fetchBytes(url: string, opts: {
  what: string;
  net: NetSettings;
  maxBytes: number;
  failed: (status: number) => CdError;
  limited: (e: BodyLimitError) => CdError;
  unreachableHint?: string;
}): Promise<Uint8Array> {
  const res = await httpFetch(url, {
    what: opts.what,
    stream: true,
    timeoutMs: opts.net.http.timeoutMs,
    retryBaseMs: opts.net.http.retryBaseMs,
    unreachableHint: opts.unreachableHint,
    signal: opts.net.signal,
  });
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    throw opts.failed(res.status);
  }
  try {
    return await readBody(res, bodyLimits(opts.net, opts.maxBytes));
  } catch (e) {
    if (e instanceof BodyLimitError) throw opts.limited(e);
    throw new CdError(
      "HTTP_BODY_FAILED",
      redactSecrets(`${opts.what}: the transfer broke (${errorMessage(e)})`),
      {
        hint: "run the command again",
      },
    );
  }
}
