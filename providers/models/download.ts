/**
 * Verified, resumable model downloads. Bytes go to `<store>/.downloads/<hash>.part` (named by the expected
 * content, so any source, any process and any later run resumes the same file with a Range request); the
 * hash is computed while writing (a resumed part is read once to catch up), checked against the expected
 * sha256/blake3 and size, and only then is the part renamed to its final name. A kill -9 at any moment
 * leaves at most a `.part`; a wrong hash removes only that `.part` (ours), never a user's file.
 *
 * Bounded (Settings.download): a body never grows past the declared size (or COMFYDOCK_DOWNLOAD_MAX_BYTES
 * when none is declared; the oversized part is deleted), and a transfer slower than
 * COMFYDOCK_DOWNLOAD_MIN_RATE over a COMFYDOCK_DOWNLOAD_STALL_SECONDS window is cut: resumed when it had
 * been going well, a clear error when it never reached the rate (a drip).
 */
import { basename, dirname, join } from "node:path";
import { CdError, errorMessage } from "../../lib/errors.ts";
import { exists, sha256Hex } from "../../lib/fsx.ts";
import { bodyChunks, BodyLimitError, bodyLimits, DEFAULT_NET, httpFetch } from "../../lib/http.ts";
import { type Progress, withTask } from "../../lib/progress.ts";
import type { ModelSource } from "../../reconcile/schema.ts";
import { type FullHashType, hashFileFull, MultiHasher } from "./hash.ts";
import { describeSource, resolveSource, scrub, type SourceConfig } from "./sources.ts";

export interface Expected {
  sha256?: string;
  blake3?: string;
  size?: number;
}

export interface DownloadOptions {
  /** Bytes in the part file so far and the total when known. */
  onProgress?: (done: number, total: number | null) => void;
  /** Shows the download (bytes, rate, ETA) as a task. */
  progress?: Progress;
  /** The file's name in messages and progress (default: the destination's): never the internal part file. */
  name?: string;
  log?: (line: string) => void;
  /** Attempts per source (default 6). */
  attempts?: number;
  /** First backoff delay; doubles per attempt (default 1000 ms, env COMFYDOCK_DOWNLOAD_RETRY_MS). */
  retryBaseMs?: number;
  /** Longest Retry-After honoured (default 120 s); longer waits fail the source instead. */
  maxRetryAfterMs?: number;
}

export interface DownloadResult {
  path: string;
  sha256: string;
  blake3?: string;
  size: number;
  source: ModelSource;
}

/** The part file for a download of this content (shared by every source and every run). */
export function partPathFor(partDir: string, expect: Expected, sources: ModelSource[]): string {
  const key = expect.sha256 ?? expect.blake3 ??
    `src-${sha256Hex(JSON.stringify(sources.map(describeSource))).slice(0, 32)}`;
  return join(partDir, `${key}.part`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
}

/** Keeps a hasher fed with exactly the bytes of the part file, so a resume reads the prefix at most once. */
class PartHasher {
  #hasher: MultiHasher | null = null;
  #upTo = -1;
  constructor(readonly path: string, readonly types: FullHashType[]) {}

  async at(offset: number): Promise<MultiHasher> {
    if (this.#hasher && this.#upTo === offset) return this.#hasher;
    const h = await MultiHasher.create(this.types);
    if (offset > 0) {
      using f = await Deno.open(this.path, { read: true });
      const buf = new Uint8Array(4 << 20);
      let left = offset;
      while (left > 0) {
        const n = await f.read(left < buf.length ? buf.subarray(0, left) : buf);
        if (n === null) break;
        h.update(buf.subarray(0, n));
        left -= n;
      }
    }
    this.#hasher = h;
    this.#upTo = offset;
    return h;
  }

  advance(n: number): void {
    this.#upTo += n;
  }

  reset(): void {
    this.#hasher = null;
    this.#upTo = -1;
  }
}

class RetryableError extends Error {
  constructor(message: string, readonly waitMs: number | null = null) {
    super(message);
  }
}

/** Fetches `url` into `part`, resuming, until the server says the file is complete. Throws CdError on a hard failure. */
async function fetchIntoPart(
  req: { url: string; headers: Record<string, string>; label: string },
  part: string,
  expect: Expected,
  ph: PartHasher,
  cfg: SourceConfig,
  opts: DownloadOptions,
): Promise<void> {
  const attempts = opts.attempts ?? 6;
  const base = opts.retryBaseMs ?? 1000;
  let lastError = "";
  for (let attempt = 1; attempt <= attempts; attempt++) {
    let offset = await fileSize(part);
    if (expect.size !== undefined && offset > expect.size) {
      await Deno.truncate(part, 0);
      offset = 0;
    }
    if (expect.size !== undefined && offset === expect.size && offset > 0) return;
    try {
      await fetchOnce(req, part, offset, expect, ph, cfg, opts);
      return;
    } catch (e) {
      if (!(e instanceof RetryableError)) throw e;
      lastError = e.message;
      if (attempt === attempts) break;
      const wait = e.waitMs ?? base * 2 ** (attempt - 1);
      opts.log?.(scrub(`${req.label}: ${e.message}; retrying in ${(wait / 1000).toFixed(1)} s`, cfg));
      await sleep(wait);
    }
  }
  throw new CdError(
    "MODEL_DOWNLOAD_FAILED",
    scrub(`${req.label}: ${lastError} (gave up after retries)`, cfg),
    {
      hint: "run the command again later: the partial download is kept and resumes",
    },
  );
}

/**
 * One request of a download, through the HTTP door (connection failures, 5xx and 429 are retried there),
 * its body written to the part within the download bounds: never past the declared size (or
 * COMFYDOCK_DOWNLOAD_MAX_BYTES when none is declared), never slower than the minimum rate for a window.
 */
async function fetchOnce(
  req: { url: string; headers: Record<string, string>; label: string },
  part: string,
  offset: number,
  expect: Expected,
  ph: PartHasher,
  cfg: SourceConfig,
  opts: DownloadOptions,
): Promise<void> {
  const net = cfg.net ?? DEFAULT_NET;
  const res = await httpFetch(req.url, {
    what: req.label,
    stream: true,
    headers: { ...req.headers, ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) },
    // A server that does not even answer within a stall window is stalled.
    timeoutMs: net.download.stallMs,
    retryBaseMs: opts.retryBaseMs ?? 1000,
    maxRetryAfterMs: opts.maxRetryAfterMs ?? 120_000,
    secrets: [cfg.hfToken, cfg.civitaiToken],
    signal: net.signal,
    onRetry: (problem, wait) =>
      opts.log?.(scrub(`${req.label}: ${problem}; retrying in ${(wait / 1000).toFixed(1)} s`, cfg)),
  });
  if (res.status === 416 && offset > 0) {
    await res.body?.cancel();
    return; // the part already holds the whole file; verification decides
  }
  if (!res.ok) {
    await res.body?.cancel();
    const auth = res.status === 401 || res.status === 403;
    throw new CdError(
      res.status === 404 ? "MODEL_SOURCE_NOT_FOUND" : "MODEL_DOWNLOAD_FAILED",
      `${req.label}: HTTP ${res.status}`,
      {
        hint: auth
          ? "the source needs a token: 'comfydock config set-key huggingface|civitai' (or HF_TOKEN / CIVITAI_API_TOKEN)"
          : undefined,
      },
    );
  }
  let start = offset;
  if (res.status === 206) {
    const m = /bytes (\d+)-\d+\/(\d+|\*)/.exec(res.headers.get("content-range") ?? "");
    if (!m || Number(m[1]) !== offset) {
      await res.body?.cancel();
      await Deno.truncate(part, 0);
      ph.reset();
      throw new RetryableError("server answered a different range; starting over", 0);
    }
  } else if (offset > 0) {
    // 200 to a Range request: the server sends the whole file.
    await Deno.truncate(part, 0);
    start = 0;
  }
  const length = Number(res.headers.get("content-length") ?? NaN);
  const total = Number.isFinite(length) ? start + length : null;
  if (total !== null && expect.size !== undefined && total !== expect.size) {
    await res.body?.cancel();
    throw new CdError(
      "MODEL_SIZE_MISMATCH",
      `${req.label}: the server sends ${total} bytes, pyproject.toml says size = ${expect.size}`,
      { hint: "the source serves a different file; fix the source or the size in .cec/pyproject.toml" },
    );
  }
  if (!res.body) throw new RetryableError("empty response body");
  const limits = bodyLimits(net, expect.size);
  const hasher = await ph.at(start);
  await Deno.mkdir(dirname(part), { recursive: true });
  using file = await Deno.open(part, { write: true, create: true });
  await file.seek(start, Deno.SeekMode.Start);
  let done = start;
  const began = Date.now();
  try {
    for await (const chunk of bodyChunks(res, { ...limits, maxBytes: limits.maxBytes - start })) {
      let w = 0;
      while (w < chunk.length) w += await file.write(chunk.subarray(w));
      hasher.update(chunk);
      ph.advance(chunk.length);
      done += chunk.length;
      opts.onProgress?.(done, total ?? expect.size ?? null);
    }
  } catch (e) {
    if (!(e instanceof BodyLimitError)) {
      throw new RetryableError(`connection dropped at ${done} bytes: ${errorMessage(e)}`);
    }
    if (e.kind === "too-large") {
      // What came is not the file that was asked for: nothing of it is kept.
      file.close();
      await Deno.remove(part).catch(() => {});
      ph.reset();
      throw new CdError(
        "MODEL_TOO_LARGE",
        `${req.label}: the server sent more than ${limits.maxBytes} bytes (${
          expect.size !== undefined ? "the size pyproject.toml declares" : "COMFYDOCK_DOWNLOAD_MAX_BYTES"
        }); the partial download was deleted`,
        {
          hint: expect.size !== undefined
            ? "the source serves a different file; fix the source or the size in .cec/pyproject.toml"
            : "if the file really is that large, raise COMFYDOCK_DOWNLOAD_MAX_BYTES",
        },
      );
    }
    // A stall after a good start is a hiccup: resume. A connection that never reached the minimum rate
    // (a drip) is not retried: it would only drip again.
    const rate = (done - start) / Math.max((Date.now() - began) / 1000, 0.001);
    if (rate >= limits.minRate) throw new RetryableError(`stalled at ${done} bytes: ${e.message}`);
    throw new CdError(
      "MODEL_DOWNLOAD_TOO_SLOW",
      `${req.label}: too slow, ${e.message}; gave up at ${done} bytes (the part is kept and resumes)`,
      {
        hint: "try again later or another source; COMFYDOCK_DOWNLOAD_MIN_RATE and " +
          "COMFYDOCK_DOWNLOAD_STALL_SECONDS set the limit",
      },
    );
  }
  if (total !== null && done < total) {
    throw new RetryableError(`connection closed at ${done} of ${total} bytes`);
  }
  await file.syncData();
}

/**
 * Downloads content from the first source that works, verifies it, and renames it to `dest` (which must not
 * exist). Every source's failure is reported if none works.
 */
export async function downloadModel(
  cfg: SourceConfig,
  sources: ModelSource[],
  expect: Expected,
  dest: string,
  partDir: string,
  opts: DownloadOptions = {},
): Promise<DownloadResult> {
  const name = opts.name ?? basename(dest);
  if (!sources.length) {
    throw new CdError("MODEL_NO_SOURCE", `no source to download ${name} from`, {
      hint: "add a source (hf:/civitai:/URL) or index a local copy with 'comfydock model scan PATH'",
    });
  }
  const part = partPathFor(partDir, expect, sources);
  const types: FullHashType[] = expect.blake3 && !expect.sha256 ? ["sha256", "blake3"] : ["sha256"];
  // Two environments applying at once must not write the same part: the second waits, then finds the file.
  await Deno.mkdir(partDir, { recursive: true });
  using lockFile = await Deno.open(`${part}.lock`, { write: true, create: true });
  await lockFile.lock(true);
  if (await fileSize(dest) > 0 && (expect.sha256 || expect.blake3)) {
    const have = await hashFileFull(dest, types);
    if ((["sha256", "blake3"] as const).every((t) => !expect[t] || have[t] === expect[t])) {
      return { path: dest, sha256: have.sha256!, blake3: have.blake3, size: have.size, source: sources[0] };
    }
  }
  const failures: string[] = [];
  const codes: string[] = [];
  const hints: (string | undefined)[] = [];
  for (const source of sources) {
    const ph = new PartHasher(part, types);
    let label = describeSource(source);
    try {
      const req = await resolveSource(cfg, source, expect.sha256);
      label = req.label;
      if (expect.sha256 && req.sha256 && req.sha256 !== expect.sha256) {
        throw new CdError(
          "MODEL_HASH_MISMATCH",
          `${label} publishes sha256 ${req.sha256}, expected ${expect.sha256}`,
        );
      }
      await withTask(
        opts.progress,
        `downloading ${name}`,
        (task) =>
          fetchIntoPart(req, part, expect, ph, cfg, {
            ...opts,
            onProgress: (done, total) => {
              task.update(done, { total });
              opts.onProgress?.(done, total);
            },
          }),
        { total: expect.size ?? null, unit: "bytes" },
      );
      const size = await fileSize(part);
      const got = (await ph.at(size)).digest();
      const bad = (["sha256", "blake3"] as const).find((t) => expect[t] && got[t] !== expect[t]);
      if (bad || (expect.size !== undefined && size !== expect.size)) {
        await Deno.remove(part).catch(() => {});
        throw new CdError(
          "MODEL_HASH_MISMATCH",
          bad
            ? `${label}: downloaded file has ${bad} ${got[bad]}, expected ${expect[bad]}; it was discarded`
            : `${label}: downloaded ${size} bytes, expected ${expect.size}; it was discarded`,
          {
            hint:
              "the source serves different content than pyproject.toml names; check the source or the hash",
          },
        );
      }
      await Deno.mkdir(dirname(dest), { recursive: true });
      if (await exists(dest)) {
        throw new CdError(
          "MODEL_STORE_CONFLICT",
          `${dest} already exists with other content; not overwriting it`,
          {
            hint:
              "move that file away (or scan it: 'comfydock model scan'), then apply again; the download is kept",
          },
        );
      }
      await Deno.rename(part, dest);
      return { path: dest, sha256: got.sha256!, blake3: got.blake3, size, source };
    } catch (e) {
      // A taken destination is not the source's fault: another source would only download it again.
      if (!(e instanceof CdError) || e.code === "MODEL_STORE_CONFLICT") throw e;
      codes.push(e.code);
      hints.push(e.hint);
      failures.push(scrub(e.message.startsWith(label) ? e.message : `${label}: ${e.message}`, cfg));
      opts.log?.(failures.at(-1)!);
    }
  }
  throw new CdError(
    codes.every((c) => c === "MODEL_HASH_MISMATCH") ? "MODEL_HASH_MISMATCH" : "MODEL_DOWNLOAD_FAILED",
    `could not download ${name}:\n  ${failures.join("\n  ")}`,
    // One source: its own hint says what to do about it.
    {
      hint: (hints.length === 1 && hints[0]) ||
        "nothing was changed; partial downloads are kept and resume on the next try",
    },
  );
}
