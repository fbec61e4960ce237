/**
 * Single-file nodes (`custom_nodes/<name>.py`, which ComfyUI loads as a module; ComfyUI-Manager installs
 * them by copying a file from a URL). Pinned by the sha256 of their bytes, which come from, in order:
 * - the workspace's content-addressed store (`comfydock_cache/custom_nodes/store/<sha256>.py`: offline);
 * - `.cec/nodes/<filename>` when the node has no `url` (a file captured from disk or written by hand: the
 *   copy is part of the desired state, so another machine rebuilds the node from `.cec` alone);
 * - `url`, downloaded once through the HTTP door (lib/http.ts: bounded), verified, stored.
 * A byte that differs from the pin is an error naming both hashes, never a silent install.
 */
import { basename, join } from "node:path";
import { CdError } from "../../lib/errors.ts";
import { exists, sha256Hex, writeFileAtomic } from "../../lib/fsx.ts";
import { DEFAULT_NET, fetchBytes, type NetSettings } from "../../lib/http.ts";
import { joinSafe, within } from "../../lib/safe_path.ts";
import type { EnvPaths } from "../../reconcile/paths.ts";
import type { NodeSpec } from "../../reconcile/schema.ts";

type FileSpec = Extract<NodeSpec, { source: "file" }>;

/** A node file is source code: anything bigger than this is not one. */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

/** Where a file node without `url` keeps its bytes, relative to `.cec`. */
export function cecCopy(filename: string): string {
  return `nodes/${filename}`;
}

function storedPath(nodeStore: string, sha256: string): string {
  return join(nodeStore, `${sha256}.py`);
}

async function readIfExists(path: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Keeps verified bytes in the store (idempotent: the name is the content's hash). */
async function store(nodeStore: string, sha256: string, bytes: Uint8Array): Promise<void> {
  const path = storedPath(nodeStore, sha256);
  if (!(await exists(path))) await writeFileAtomic(path, bytes);
}

function mismatch(label: string, where: string, got: string, want: string): CdError {
  return new CdError(
    "NODE_FILE_HASH_MISMATCH",
    `${label}: ${where} has sha256 ${got}, but .cec/pyproject.toml pins ${want}`,
    { hint: "the file changed since it was pinned; check it, then re-pin it with 'comfydock capture'" },
  );
}

/**
 * Downloads a node file from `url` through the HTTP door (retried; the body bounded by MAX_FILE_BYTES or
 * the settings' download bound, whichever is lower, and by the download rate rule), keeps it in the store,
 * returns its bytes and sha256.
 */
export async function downloadNodeFile(
  nodeStore: string,
  url: string,
  label: string,
  net: NetSettings = DEFAULT_NET,
): Promise<{ bytes: Uint8Array; sha256: string }> {
  const maxBytes = Math.min(MAX_FILE_BYTES, net.download.maxBytes);
  const failed = (message: string, hint: string) =>
    new CdError("NODE_FILE_DOWNLOAD_FAILED", message, { hint });
  const bytes = await fetchBytes(url, {
    what: `downloading ${label}`,
    net,
    maxBytes,
    failed: (status) =>
      failed(
        `downloading ${label} failed: HTTP ${status} (${url})`,
        status === 404 ? "the file is gone from that URL; check the URL" : "try again later",
      ),
    limited: (e) =>
      e.kind === "too-large"
        ? failed(
          `downloading ${label}: ${url} sent more than ${maxBytes} bytes; the download was stopped`,
          `a node file is source code (at most ${MAX_FILE_BYTES} bytes, or COMFYDOCK_DOWNLOAD_MAX_BYTES when ` +
            "lower): check that the URL points at the raw .py file",
        )
        : failed(
          `downloading ${label}: the server is too slow (${e.message})`,
          "try again later (COMFYDOCK_DOWNLOAD_MIN_RATE / COMFYDOCK_DOWNLOAD_STALL_SECONDS set the limit)",
        ),
  });
  const sha256 = sha256Hex(bytes);
  await store(nodeStore, sha256, bytes);
  return { bytes, sha256 };
}

/** `.cec/nodes/<filename>`, proven to stay inside the environment (`.cec` may come from someone else). */
async function cecCopyPath(paths: EnvPaths, filename: string, what: string): Promise<string> {
  return await within([paths.root], joinSafe(paths.cec, cecCopy(filename), what), what);
}

/** The pinned bytes of a file node: from the store, `.cec/nodes/`, or its url (see the module doc). */
export async function nodeFileBytes(
  paths: EnvPaths,
  id: string,
  spec: FileSpec,
  net: NetSettings = DEFAULT_NET,
): Promise<Uint8Array> {
  const label = `node '${id}' (${spec.filename})`;
  const nodeStore = paths.workspace.nodeStore;
  const cached = await readIfExists(storedPath(nodeStore, spec.sha256));
  if (cached && sha256Hex(cached) === spec.sha256) return cached;
  if (!spec.url) {
    const copy = await cecCopyPath(paths, spec.filename, `${label} copy`);
    const bytes = await readIfExists(copy);
    if (bytes === null) {
      throw new CdError("NODE_FILE_MISSING", `${label}: no url, and ${copy} does not exist`, {
        hint: "a single-file node without a url keeps its bytes in .cec/nodes/; restore that file from " +
          "the .cec history ('comfydock log'), or give the node a url",
      });
    }
    const sha = sha256Hex(bytes);
    if (sha !== spec.sha256) throw mismatch(label, copy, sha, spec.sha256);
    await store(nodeStore, sha, bytes);
    return bytes;
  }
  const got = await downloadNodeFile(nodeStore, spec.url, label, net);
  if (got.sha256 !== spec.sha256) throw mismatch(label, spec.url, got.sha256, spec.sha256);
  return got.bytes;
}

/** `validate`: file nodes without a url whose `.cec/nodes/` copy is missing or differs from the pin. */
export async function fileNodeProblems(paths: EnvPaths, nodes: Record<string, NodeSpec>): Promise<string[]> {
  const problems: string[] = [];
  for (const [id, spec] of Object.entries(nodes)) {
    if (spec.source !== "file" || spec.url) continue;
    const rel = cecCopy(spec.filename);
    const bytes = await readIfExists(await cecCopyPath(paths, spec.filename, `node '${id}' copy`));
    if (bytes === null) {
      problems.push(
        `tool.comfydock.nodes.${id}: no url and no .cec/${rel}: another machine cannot get the file`,
      );
    } else if (sha256Hex(bytes) !== spec.sha256) {
      problems.push(`tool.comfydock.nodes.${id}.sha256: .cec/${rel} has sha256 ${sha256Hex(bytes)}`);
    }
  }
  return problems;
}

/** The file name a URL or path ends with (query and fragment dropped; a bad %-escape is kept as it is). */
export function fileNameOf(nameOrUrl: string): string {
  const name = basename(nameOrUrl.replace(/[?#].*$/, ""));
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}
