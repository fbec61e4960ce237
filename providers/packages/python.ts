/**
 * Finds a Python interpreter already on this machine. ComfyDock never downloads Python (uv runs with
 * UV_PYTHON_DOWNLOADS=never and gets the absolute path found here). pyenv shims are skipped: each call
 * through one costs a bash start-up, and the real binaries under ~/.pyenv/versions are searched directly.
 */
import { isAbsolute, join } from "node:path";
import type { Settings } from "../../lib/settings.ts";
import { CdError } from "../../lib/errors.ts";
import { run } from "../../lib/proc.ts";

export interface PythonInstall {
  /** `3.11.7` when the path or the interpreter tells, else `3.11`. */
  version: string;
  /** Absolute path of the real binary (symlinks resolved). */
  path: string;
}

const NAME = Deno.build.os === "windows" ? /^python3\.?(\d+)(?:\.exe)?$/i : /^python3\.(\d+)$/;

function searchDirs(system: Settings["system"]): { bins: string[]; pyenvVersions: string } {
  const pathDirs = system.path.filter((d) => d && !/[\\/]shims$/.test(d));
  return {
    bins: [...pathDirs, "/usr/local/bin", "/usr/bin", "/opt/homebrew/bin"],
    pyenvVersions: join(system.pyenvRoot, "versions"),
  };
}

async function dirEntries(dir: string): Promise<Deno.DirEntry[]> {
  try {
    return await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return [];
  }
}

/** Every `python3.X` binary in the search dirs, real paths, de-duplicated, in preference order. */
export async function listPythons(system: Settings["system"]): Promise<PythonInstall[]> {
  const found: PythonInstall[] = [];
  const seen = new Set<string>();
  const add = async (dir: string, name: string, fullFromDir?: string) => {
    const m = NAME.exec(name);
    if (!m) return;
    let real: string;
    try {
      real = await Deno.realPath(join(dir, name));
      if (!(await Deno.stat(real)).isFile) return;
    } catch {
      return;
    }
    if (seen.has(real)) return;
    seen.add(real);
    const minor = `3.${m[1]}`;
    const full = fullFromDir?.startsWith(`${minor}.`) ? fullFromDir : undefined;
    found.push({ version: full ?? minor, path: real });
  };
  const { bins, pyenvVersions } = searchDirs(system);
  for (const dir of bins) {
    for (const e of await dirEntries(dir)) await add(dir, e.name);
  }
  // pyenv: versions/<3.11.7>/bin/python3.11, newest patch first.
  const versions = (await dirEntries(pyenvVersions)).filter((e) => /^\d+\.\d+\.\d+$/.test(e.name))
    .map((e) => e.name).sort(compareVersionsDesc);
  for (const v of versions) {
    const bin = join(pyenvVersions, v, "bin");
    for (const e of await dirEntries(bin)) await add(bin, e.name, v);
  }
  return found;
}

function compareVersionsDesc(a: string, b: string): number {
  const pa = a.split(".").map(Number), pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pb[i] ?? 0) - (pa[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

async function askVersion(path: string): Promise<string> {
  const r = await run(path, ["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"], {
    errorCode: "PYTHON_NOT_FOUND",
    hint: "pass a working Python interpreter",
  });
  return r.stdout.trim();
}

/**
 * The interpreter for Python `version` (`3.11`; or an absolute path to a binary), or the newest one found
 * when no version is asked. Throws PYTHON_NOT_FOUND listing the versions that do exist.
 */
export async function findPython(system: Settings["system"], version?: string): Promise<PythonInstall> {
  if (version && (isAbsolute(version) || version.includes("/"))) {
    const path = await Deno.realPath(version).catch(() => {
      throw new CdError("PYTHON_NOT_FOUND", `no Python interpreter at ${version}`, {
        hint: "pass an existing python binary or a version like 3.12",
      });
    });
    return { version: await askVersion(path), path };
  }
  const all = await listPythons(system);
  if (!version) {
    const newest = [...all].sort((a, b) => compareVersionsDesc(a.version, b.version))[0];
    if (newest) return await withFullVersion(newest);
  } else {
    const m = /^(\d+)\.(\d+)(?:\.\d+)?$/.exec(version.trim());
    if (!m) {
      throw new CdError("PYTHON_VERSION_INVALID", `'${version}' is not a Python version`, {
        hint: "write it as X.Y, e.g. 3.12",
      });
    }
    const minor = `${m[1]}.${m[2]}`;
    const exact = version.trim() !== minor ? all.find((p) => p.version === version.trim()) : undefined;
    const hit = exact ?? all.find((p) => p.version === minor || p.version.startsWith(`${minor}.`));
    if (hit) return await withFullVersion(hit);
  }
  const have = [...new Set(all.map((p) => p.version.split(".").slice(0, 2).join(".")))]
    .sort(compareVersionsDesc);
  throw new CdError(
    "PYTHON_NOT_FOUND",
    version
      ? `Python ${version} is not installed on this machine (found: ${have.join(", ") || "none"})`
      : "no Python 3 interpreter found on this machine",
    {
      hint: `use one of the versions found${have.length ? ` (--python ${have[0]})` : ""}, or install ` +
        `Python ${
          version ?? "3.12"
        } (pyenv install, your OS packages, python.org); ComfyDock never downloads Python`,
    },
  );
}

async function withFullVersion(p: PythonInstall): Promise<PythonInstall> {
  return p.version.split(".").length === 3 ? p : { ...p, version: await askVersion(p.path) };
}
