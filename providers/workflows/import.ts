/** Reading a workflow to import (file or URL, with the same limits as analysis) and placing it in ComfyUI. */
import { join } from "node:path";
import { CdError, errorMessage } from "../../lib/errors.ts";
import { readTextIfExists, removeIfExists, writeFileAtomic } from "../../lib/fsx.ts";
import type { EngineOptions } from "../../reconcile/engine.ts";
import { readDesired } from "../../reconcile/desired.ts";
import type { EnvPaths } from "../../workspace/paths.ts";
import { MAX_WORKFLOW_BYTES, parseWorkflowText } from "./analyze.ts";
import { readWorkflowFile } from "./files.ts";
import type { NodePackResolver } from "./node_map.ts";
import { commitWorkflowChange } from "./sync.ts";
import { relOfName, trackWorkflows } from "./track.ts";

/** Reads a local file or an http(s) URL; a download larger than the limit is cut off and refused. */
export async function readImportSource(source: string): Promise<unknown> {
  if (!/^https?:\/\//i.test(source)) return await readWorkflowFile(source);
  let res: Response;
  try {
    res = await fetch(source);
  } catch (e) {
    throw new CdError("WORKFLOW_DOWNLOAD_FAILED", `could not download ${source}: ${errorMessage(e)}`, {
      hint: "check the URL and your network, or download the file and import it by path",
    });
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new CdError("WORKFLOW_DOWNLOAD_FAILED", `${source}: HTTP ${res.status}`, {
      hint: "check the URL, or download the file and import it by path",
    });
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.length;
    if (size > MAX_WORKFLOW_BYTES) {
      await res.body.cancel().catch(() => {});
      throw new CdError("WORKFLOW_TOO_LARGE", `${source}: more than ${MAX_WORKFLOW_BYTES} bytes`, {
        hint: "is this really a workflow file?",
      });
    }
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return parseWorkflowText(new TextDecoder().decode(bytes), source);
}

/**
 * Saves the workflow into ComfyUI's workflow folder under `name` and tracks it. An existing file with other
 * content is never replaced: the user picks another name.
 */
export async function placeAndTrack(
  paths: EnvPaths,
  opts: { name: string; workflow: unknown; resolver: NodePackResolver; engine?: EngineOptions },
): Promise<{ rel: string; commit: string | null }> {
  const rel = relOfName(opts.name);
  const target = join(paths.userWorkflows, rel);
  const text = JSON.stringify(opts.workflow);
  const existing = await readTextIfExists(target);
  if (existing !== null && existing !== text) {
    throw new CdError("WORKFLOW_EXISTS", `${target} already exists with other content`, {
      hint: "import it under another name with --name NAME (nothing was changed)",
    });
  }
  if (existing === null) await writeFileAtomic(target, text);
  try {
    const desired = await readDesired(paths);
    const change = await trackWorkflows(paths, desired, { names: [opts.name], resolver: opts.resolver });
    const commit = await commitWorkflowChange(
      paths,
      change,
      `workflow import: ${change.names.join(", ")}`,
      opts.engine,
    );
    return { rel, commit };
  } catch (e) {
    // Leave ComfyUI's folder as it was: the file only stays when the import went through.
    if (existing === null) await removeIfExists(target);
    throw e;
  }
}
