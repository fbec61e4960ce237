/**
 * What a venv holds, read straight from disk (no Python, no uv): `pyvenv.cfg` for the interpreter, and
 * every `site-packages/*.dist-info/METADATA` for the installed distributions. ~100 dists read in a few ms.
 */
import { join } from "node:path";
import { readTextIfExists } from "../../lib/fsx.ts";
import { normalizeName } from "./lockfile.ts";

export interface VenvInfo {
  /** `ok`; `missing` (no directory); `corrupt` (directory without a usable interpreter or pyvenv.cfg). */
  state: "ok" | "missing" | "corrupt";
  problem?: string;
  /** Python version from pyvenv.cfg (`3.11.7`). */
  python?: string;
  /** The interpreter the venv was made from (pyvenv.cfg `home`). */
  home?: string;
  sitePackages: string[];
}

/** The interpreter inside a venv. */
export function venvPython(venvDir: string): string {
  return Deno.build.os === "windows"
    ? join(venvDir, "Scripts", "python.exe")
    : join(venvDir, "bin", "python");
}

/** Parses `key = value` lines of pyvenv.cfg. */
export function parsePyvenvCfg(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf("=");
    if (i > 0) out[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return out;
}

export async function inspectVenv(venvDir: string): Promise<VenvInfo> {
  try {
    if (!(await Deno.stat(venvDir)).isDirectory) {
      return { state: "corrupt", problem: `${venvDir} is not a directory`, sitePackages: [] };
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { state: "missing", sitePackages: [] };
    throw e;
  }
  const cfgText = await readTextIfExists(join(venvDir, "pyvenv.cfg"));
  if (cfgText === null) return { state: "corrupt", problem: "pyvenv.cfg is missing", sitePackages: [] };
  const cfg = parsePyvenvCfg(cfgText);
  const python = cfg.version_info ?? cfg.version;
  if (!python || !/^\d+\.\d+/.test(python)) {
    return { state: "corrupt", problem: "pyvenv.cfg names no Python version", sitePackages: [] };
  }
  try {
    // stat follows the symlink: a venv whose base interpreter was removed fails here.
    await Deno.stat(venvPython(venvDir));
  } catch {
    return {
      state: "corrupt",
      problem: `its interpreter ${venvPython(venvDir)} is missing or broken`,
      python,
      home: cfg.home,
      sitePackages: [],
    };
  }
  return { state: "ok", python, home: cfg.home, sitePackages: await findSitePackages(venvDir) };
}

/** venvDir/lib/python3.X/site-packages (POSIX, also `python3.13t`) or venvDir/Lib/site-packages (Windows). */
export async function findSitePackages(venvDir: string): Promise<string[]> {
  const found: string[] = [];
  const win = join(venvDir, "Lib", "site-packages");
  if (Deno.build.os === "windows") {
    if (await isDir(win)) found.push(win);
    return found;
  }
  for (const lib of ["lib", "lib64"]) {
    let entries: Deno.DirEntry[] = [];
    try {
      entries = await Array.fromAsync(Deno.readDir(join(venvDir, lib)));
    } catch {
      continue;
    }
    for (const e of entries) {
      if (!/^python\d+\.\d+t?$/.test(e.name)) continue;
      const sp = join(venvDir, lib, e.name, "site-packages");
      if (!(await isDir(sp))) continue;
      const real = await Deno.realPath(sp);
      if (!found.some((f) => f === real)) found.push(real);
    }
  }
  return found.sort();
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await Deno.stat(p)).isDirectory;
  } catch {
    return false;
  }
}

export interface InstalledDists {
  /** normalised name -> version */
  dists: Record<string, string>;
  /** `*.dist-info` directories whose METADATA is missing or has no Name/Version. */
  broken: string[];
  /** Where each readable distribution's metadata lives (for the RECORD check). */
  infos: { sitePackages: string; dir: string; name: string }[];
}

/** Reads the Name/Version headers of METADATA (headers end at the first blank line). */
export function parseMetadataHeaders(text: string): { name?: string; version?: string } {
  let name: string | undefined, version: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (line === "") break;
    if (!name && /^name:/i.test(line)) name = line.slice(5).trim();
    else if (!version && /^version:/i.test(line)) version = line.slice(8).trim();
    if (name && version) break;
  }
  return { name, version };
}

/** Installed distributions of the given site-packages dirs. */
export async function readInstalled(sitePackages: string[]): Promise<InstalledDists> {
  const dists: Record<string, string> = {};
  const broken: string[] = [];
  const infos: InstalledDists["infos"] = [];
  for (const sp of sitePackages) {
    const dirs = (await Array.fromAsync(Deno.readDir(sp))).filter((e) => e.name.endsWith(".dist-info"));
    const read = await Promise.all(dirs.map(async (e) => {
      const text = await readTextIfExists(join(sp, e.name, "METADATA")).catch(() => null);
      return { dir: e.name, meta: text === null ? null : parseMetadataHeaders(text) };
    }));
    for (const { dir, meta } of read) {
      if (!meta?.name || !meta.version) broken.push(dir);
      else {
        const name = normalizeName(meta.name);
        dists[name] = meta.version;
        infos.push({ sitePackages: sp, dir, name });
      }
    }
  }
  return { dists, broken: broken.sort(), infos };
}

/**
 * The torch build the venv actually holds (`2.5.1+cu124`, from its dist-info), or null when torch is not
 * installed. What `list` and `create` show: `.cec`'s torch_backend says where torch should come from, not
 * what a mirror, a hand install or an old lock put there. One directory listing, one small read.
 */
export async function installedTorch(venvDir: string): Promise<string | null> {
  for (const sp of await findSitePackages(venvDir)) {
    for await (const e of Deno.readDir(sp)) {
      if (!/^torch-[^-]+\.dist-info$/.test(e.name)) continue;
      const text = await readTextIfExists(join(sp, e.name, "METADATA"));
      const meta = text === null ? null : parseMetadataHeaders(text);
      if (meta?.version) return meta.version;
    }
  }
  return null;
}

/** PEP 610 `direct_url.json`: where a distribution was installed from when not from an index. */
export interface DirectUrl {
  url: string;
  editable: boolean;
  /** `git`, ... for VCS installs, with the commit installed. */
  vcs?: string;
  commit?: string;
}

/** Installed distributions that came from a URL, a VCS or a local path (normalised name -> origin). */
export async function readDirectUrls(sitePackages: string[]): Promise<Record<string, DirectUrl>> {
  const out: Record<string, DirectUrl> = {};
  for (const sp of sitePackages) {
    for await (const e of Deno.readDir(sp)) {
      if (!e.name.endsWith(".dist-info")) continue;
      const text = await readTextIfExists(join(sp, e.name, "direct_url.json")).catch(() => null);
      if (text === null) continue;
      const meta = parseMetadataHeaders((await readTextIfExists(join(sp, e.name, "METADATA"))) ?? "");
      if (!meta.name) continue;
      try {
        const d = JSON.parse(text);
        if (typeof d?.url !== "string") continue;
        out[normalizeName(meta.name)] = {
          url: d.url,
          editable: d.dir_info?.editable === true,
          ...(typeof d.vcs_info?.vcs === "string"
            ? { vcs: d.vcs_info.vcs, commit: d.vcs_info.commit_id }
            : {}),
        };
      } catch {
        // an unreadable origin: the package counts as installed from an index
      }
    }
  }
  return out;
}
