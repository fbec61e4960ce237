/**
 * HTTP with timeouts and retries, for the registry API and node archive downloads. Retries network errors,
 * 5xx and 429 with exponential backoff (honouring Retry-After); every other status is returned to the
 * caller, which knows what a 404 means for its request.
 */
import { CdError, errorMessage } from "../../lib/errors.ts";

export interface HttpOptions {
  method?: string;
  body?: string;
  headers?: Record<string, string>;
  /** Per attempt. Default 15 s (Settings.http.timeoutMs). */
  timeoutMs?: number;
  /** Extra attempts after the first. Default 3. */
  retries?: number;
  /** First backoff delay; doubles each retry. Default 250 ms (Settings.http.retryBaseMs). */
  retryBaseMs?: number;
  /** What is being fetched, for error messages ("the ComfyUI Registry at https://..."). */
  what: string;
  /** Hint when the server cannot be reached at all. */
  unreachableHint?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function retryAfterMs(res: Response): number | null {
  const h = res.headers.get("retry-after");
  if (!h) return null;
  const secs = Number(h);
  if (Number.isFinite(secs)) return Math.min(secs * 1000, 10_000);
  const at = Date.parse(h);
  return Number.isNaN(at) ? null : Math.min(Math.max(at - Date.now(), 0), 10_000);
}

/** Fetches with retries. Returns the final Response for any non-retryable status. */
export async function httpFetch(url: string, opts: HttpOptions): Promise<Response> {
  const retries = opts.retries ?? 3;
  const base = opts.retryBaseMs ?? 250;
  const timeoutMs = opts.timeoutMs ?? 15_000;
  let lastProblem = "";
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) await sleep(base * 2 ** (attempt - 1) * (1 + Math.random() * 0.2));
    let res: Response;
    try {
      res = await fetch(url, {
        method: opts.method ?? "GET",
        body: opts.body,
        headers: { "user-agent": "comfydock", ...opts.headers },
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      lastProblem = e instanceof DOMException && e.name === "TimeoutError"
        ? `no answer within ${timeoutMs} ms`
        : errorMessage(e);
      continue;
    }
    if (res.status >= 500 || res.status === 429) {
      lastProblem = `HTTP ${res.status} ${res.statusText}`.trim();
      const wait = res.status === 429 ? retryAfterMs(res) : null;
      await res.body?.cancel();
      if (wait !== null && attempt < retries) await sleep(wait);
      continue;
    }
    return res;
  }
  const serverError = /^HTTP (5\d\d|429)/.test(lastProblem);
  throw new CdError(
    serverError ? "HTTP_SERVER_ERROR" : "HTTP_UNREACHABLE",
    `${opts.what} failed after ${retries + 1} attempts: ${lastProblem} (${url})`,
    {
      hint: serverError
        ? "the server is having trouble; try again in a few minutes"
        : opts.unreachableHint ?? "check your network connection and the URL",
    },
  );
}
