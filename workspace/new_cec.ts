/**
 * A new `.cec` written from scratch (create, snapshot import, adopt): the pyproject in the seed's shape, the
 * default ignore file, and the Python a new environment gets by default.
 */
import { join } from "node:path";
import { stringify } from "smol-toml";
import { writeFileAtomic } from "../lib/fsx.ts";
import type { Settings } from "../lib/settings.ts";
import { requirementsAt, type ResolvedComfyUI } from "../providers/comfyui/resolve.ts";
import { findPython, type PythonInstall } from "../providers/packages/python.ts";
import { torchUvConfig } from "../providers/packages/torch.ts";
import { parsePyproject } from "../reconcile/desired.ts";
import type { TomlEdit } from "../reconcile/pyproject_edit.ts";

export const DEFAULT_COMFYDOCKIGNORE =
  `# Workflows (paths relative to ComfyUI/user/default/workflows) that ComfyDock never tracks or reports.
# One gitignore-style pattern per line, e.g.:
# scratch/
# *.tmp.json
`;

/**
 * `.cec/pyproject.toml` of a new environment, in the seed's shape. `edits` (the torch backend's
 * `[tool.uv]` settings) are applied to the data before rendering: a fresh file has no user formatting to
 * preserve, so no format-preserving editor is needed here.
 */
export function renderPyproject(p: {
  name: string;
  pythonVersion: string;
  dependencies: string[];
  comfyuiVersion: string;
  comfyuiCommit: string;
  comfyuiUrl: string;
  edits?: TomlEdit[];
}): string {
  const tool: Record<string, unknown> = {
    comfydock: {
      version: "1",
      comfyui_version: p.comfyuiVersion,
      comfyui_commit: p.comfyuiCommit,
      comfyui_url: p.comfyuiUrl,
      python_version: p.pythonVersion,
    },
  };
  for (const e of p.edits ?? []) {
    if (e.path[0] !== "tool") throw new Error(`renderPyproject: edit outside [tool]: ${e.path.join(".")}`);
    let cur = tool;
    for (const k of e.path.slice(1, -1)) cur = (cur[k] ??= {}) as Record<string, unknown>;
    cur[e.path[e.path.length - 1]] = e.value;
  }
  // Dependencies one per line: ComfyUI updates then show as readable diffs in .cec's history.
  const deps = p.dependencies.length
    ? `[\n${p.dependencies.map((d) => `  ${JSON.stringify(d)},\n`).join("")}]`
    : "[]";
  const project = [
    "[project]",
    `name = ${JSON.stringify(p.name)}`,
    `version = "0.1.0"`,
    `requires-python = ${JSON.stringify(`==${p.pythonVersion}.*`)}`,
    `dependencies = ${deps}`,
  ].join("\n");
  return `${project}\n\n${stringify({ tool }).trim()}\n`;
}

/**
 * The first pyproject of an environment made from an installation (adopt, a Manager snapshot): ComfyUI's
 * requirements at its commit, the torch backend's `[tool.uv]` keeping the installed torch versions (none
 * when the installation has no torch), every group installed, then `edits`.
 */
export async function pyprojectFromInstalled(p: {
  name: string;
  pythonVersion: string;
  comfy: ResolvedComfyUI;
  comfyuiUrl: string;
  torch: { backend: string; versions: Record<string, string> } | null;
  settings: Settings;
  edits?: TomlEdit[];
}): Promise<string> {
  return renderPyproject({
    name: p.name,
    pythonVersion: p.pythonVersion,
    dependencies: await requirementsAt(p.comfy.mirror, p.comfy.commit),
    comfyuiVersion: p.comfy.version,
    comfyuiCommit: p.comfy.commit,
    comfyuiUrl: p.comfyuiUrl,
    edits: [
      ...(p.torch
        ? torchUvConfig(p.torch.backend, {
          torchVersions: p.torch.versions,
          searchPath: p.settings.system.path,
        })
        : []),
      ALL_GROUPS,
      ...(p.edits ?? []),
    ],
  });
}

/**
 * The files of a new `.cec` in `cec` (created): pyproject (validated first: a bug in the generator must fail
 * here, not at a later plan), the default ignore file, an empty workflows folder, and uv.lock when given.
 */
export async function writeNewCec(cec: string, pyprojectText: string, lockText?: string): Promise<void> {
  parsePyproject(pyprojectText, join(cec, "pyproject.toml"));
  await writeFileAtomic(join(cec, "pyproject.toml"), pyprojectText);
  if (lockText !== undefined) await writeFileAtomic(join(cec, "uv.lock"), lockText);
  await writeFileAtomic(join(cec, ".comfydockignore"), DEFAULT_COMFYDOCKIGNORE);
  await writeFileAtomic(join(cec, "workflows", ".gitkeep"), "");
}

/**
 * `[tool.uv]` every new `.cec` gets: plain `uv sync` in `.cec` installs every node group too, like ComfyDock
 * does (README: plain uv).
 */
export const ALL_GROUPS: TomlEdit = { path: ["tool", "uv", "default-groups"], value: "all" };

/** `--python X.Y`, else 3.12 when installed, else the newest interpreter on the machine. */
export async function pickPython(settings: Settings, version?: string): Promise<PythonInstall> {
  if (version) return await findPython(settings.system, version);
  try {
    return await findPython(settings.system, "3.12");
  } catch {
    return await findPython(settings.system);
  }
}
