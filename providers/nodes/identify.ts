/**
 * A node folder unzipped by hand from a registry archive (no `.tracking`, no marker, no git): recognised by
 * content. Its pyproject names the registry id and version; the archive of that version is fetched (into
 * the content-addressed store, so a later reinstall is offline) and every file it holds must be in the
 * folder with the same sha256. Byte-code caches may be extra; any other difference means it is not that
 * version as published, and the folder stays a local node.
 */
import { join } from "node:path";
import { readTextIfExists, sha256Hex } from "../../lib/fsx.ts";
import type { NetSettings } from "../../lib/http.ts";
import { extractZip, fetchArchive } from "./archive.ts";
import { type NodeMarker, statManifest, writeMarker } from "./observe.ts";
import type { RegistryClient } from "./registry.ts";
import { pyprojectVersionAndName } from "./requirements.ts";

const BYTECODE = /(^|\/)__pycache__(\/|$)|\.py[co]$/;

async function filesOf(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(dir, rel))) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory && e.name !== ".git") out.push(...await filesOf(dir, r));
    else if (e.isFile) out.push(r);
  }
  return out;
}

/**
 * The registry identity of `dir` as a marker (without stats: write it where the copy lives), or null when
 * its files are not exactly a published version's, or the registry cannot be asked.
 */
export async function identifyRegistryPack(
  dir: string,
  registry: RegistryClient,
  nodeStore: string,
  net: NetSettings,
): Promise<NodeMarker | null> {
  const { name, version } = pyprojectVersionAndName(await readTextIfExists(join(dir, "pyproject.toml")));
  if (!name || !version) return null;
  try {
    const v = await registry.getVersion(name, version);
    const label = `node '${name}' ${version}`;
    const archive = await fetchArchive(nodeStore, { url: v.downloadUrl, label, net });
    // The archive's file hashes, as an install would record them (extracted where nothing else looks).
    const scratch = await Deno.makeTempDir({ prefix: "comfydock-identify-" });
    const want = await extractZip(archive.bytes, join(scratch, "pack"), label).finally(() =>
      Deno.remove(scratch, { recursive: true }).catch(() => {})
    );
    const have = (await filesOf(dir)).filter((f) => !BYTECODE.test(f));
    if (have.length !== Object.keys(want).length) return null;
    for (const f of have) {
      if (want[f] === undefined || sha256Hex(await Deno.readFile(join(dir, f))) !== want[f]) return null;
    }
    return { format: 1, id: name, source: "registry", version, sha256: archive.sha256, files: want };
  } catch {
    return null; // registry unreachable or the version unknown: not recognised, not an error
  }
}

/** Writes the marker of an identified pack into (a copy of) its folder, with the stats of the files there. */
export async function markIdentified(dir: string, marker: NodeMarker): Promise<void> {
  await writeMarker(dir, { ...marker, stats: statManifest(dir, marker.files) });
}
