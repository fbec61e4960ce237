/**
 * `comfydock import SOURCE`: which importer a source goes to. A file is a ComfyUI-Manager snapshot when it is
 * JSON or YAML (by name, or by content starting with `{`), a bundle when it is gzip; a directory or URL is a
 * `.cec` repository (ours, ComfyGit's or ComfyDock 1.x's, converted on the way in).
 */
import { isSnapshotFileName } from "../providers/formats/manager_snapshot.ts";
import { isRemoteUrl } from "../providers/git/git.ts";
import { importEnvironment, type ImportResult } from "./import.ts";
import { importManagerSnapshot, type SnapshotImportOptions } from "./manager_snapshot.ts";
import type { App } from "./session.ts";

/** The first bytes of a file (fewer when it is shorter). */
async function head(file: string, n: number): Promise<Uint8Array> {
  using f = await Deno.open(file);
  const buf = new Uint8Array(n);
  const got = await f.read(buf);
  return buf.subarray(0, got ?? 0);
}

async function isSnapshotFile(file: string): Promise<boolean> {
  if (isSnapshotFileName(file)) return true;
  const bytes = await head(file, 64);
  return new TextDecoder().decode(bytes).trimStart().startsWith("{");
}

export async function importSource(
  app: App,
  source: string,
  opts: SnapshotImportOptions = {},
): Promise<ImportResult> {
  if (!isRemoteUrl(source)) {
    const st = await Deno.stat(source).catch(() => null);
    if (st?.isFile && await isSnapshotFile(source)) return await importManagerSnapshot(app, source, opts);
  }
  return await importEnvironment(app, source, opts);
}
