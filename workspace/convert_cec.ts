/**
 * A ComfyGit or ComfyDock 1.x `.cec` converted in place to this schema, on its way into `import` (a git
 * clone, a local repository or a ComfyGit export tarball, already in a staging directory). The pure mapping
 * is providers/formats/legacy_cec.ts; here the parts that need the world are filled in: the ComfyUI pin is
 * resolved through the ComfyUI mirror (a tag, a commit, or a branch at its current head), the model index
 * supplies content hashes for models ComfyGit only knew by a sampled hash, the Python version falls back to
 * `.python-version`, and the torch backend (`--torch-backend`) is added when the file names no torch index.
 * Files of the `.cec` are never removed; those ComfyDock does not use are listed as kept.
 */
import { join } from "node:path";
import { parse, stringify } from "smol-toml";
import { exists, listFiles, readTextIfExists, writeFileAtomic } from "../lib/fsx.ts";
import { comfyuiUrl, ensureMirror, isUpstream } from "../providers/comfyui/mirror.ts";
import { normaliseUrl, refreshMirror } from "../providers/git/mirror.ts";
import { resolveComfyUI } from "../providers/comfyui/resolve.ts";
import { convertLegacyPyproject, type LegacyKind, legacyKind } from "../providers/formats/legacy_cec.ts";
import type { ReportLine } from "../providers/formats/report.ts";
import * as git from "../providers/git/git.ts";
import { openModelIndex } from "../providers/models/store.ts";
import { assertTorchBackend, resolveTorchBackend, torchUvConfig } from "../providers/packages/torch.ts";
import { parsePyproject } from "../reconcile/desired.ts";
import type { TomlEdit } from "../reconcile/pyproject_edit.ts";
import { ALL_GROUPS, DEFAULT_COMFYDOCKIGNORE, pickPython } from "./new_cec.ts";
import type { App } from "./session.ts";

export interface Converted {
  kind: LegacyKind;
  /** The environment name: the one asked for, else the legacy project's name without its tool prefix. */
  name: string;
  report: ReportLine[];
}

/** `comfygit-env-studio` / `comfydock-env-studio` -> `studio`. */
function envNameOf(raw: Record<string, unknown>): string | undefined {
  const project = raw.project as { name?: unknown } | undefined;
  return typeof project?.name === "string" ? project.name.replace(/^comfy(git|dock)-env-/, "") : undefined;
}

function setPath(obj: Record<string, unknown>, e: TomlEdit): void {
  let cur = obj;
  for (const k of e.path.slice(0, -1)) cur = (cur[k] ??= {}) as Record<string, unknown>;
  cur[e.path[e.path.length - 1]] = e.value;
}

/**
 * Converts `cecDir/pyproject.toml` when it is a legacy layout; null when it is already ours. The caller
 * commits (a git `.cec`) or the import commits it (a tarball).
 */
export async function convertLegacyCec(
  app: App,
  cecDir: string,
  opts: { name?: string; torchBackend?: string; comfyuiUrl?: string },
): Promise<Converted | null> {
  const file = join(cecDir, "pyproject.toml");
  const text = await readTextIfExists(file);
  if (text === null) return null;
  let raw: Record<string, unknown>;
  try {
    raw = parse(text) as Record<string, unknown>;
  } catch {
    return null; // not TOML: the schema check that follows names the line
  }
  const kind = legacyKind(raw);
  if (!kind) return null;
  const name = opts.name ?? envNameOf(raw) ?? "imported";
  app.log(`converting a ${kind === "comfygit" ? "ComfyGit" : "ComfyDock 1.x"} .cec to this schema`);
  const conv = (() => {
    using index = openModelIndex(app.ws);
    return convertLegacyPyproject(raw, {
      name,
      hfEndpoint: app.settings.hf.endpoint,
      findModel: (filename, size) => {
        for (const m of index.resolveByName(filename)) {
          if (m.hashes.sha256 && (size === undefined || m.size === size)) return m.hashes.sha256;
        }
        return null;
      },
    });
  })();
  const report = conv.report;

  // ComfyUI: the pinned commit when there is one, else the version (a tag, a commit, or a branch's head).
  const c = conv.comfyui;
  const url = c.repository && !isUpstream(c.repository)
    ? normaliseUrl(c.repository)
    : comfyuiUrl(opts.comfyuiUrl, app.settings);
  let spec = c.commit && /^[0-9a-f]{40}$/.test(c.commit) ? c.commit : c.version ?? "latest";
  if (!c.commit && c.versionType === "branch" && c.version) {
    const mirror = await ensureMirror(app.ws, url);
    // Offline, the mirror's last known head is still an answer; the report says it may be behind.
    const stale = mirror.cloned ? null : await refreshMirror(mirror);
    const head = await git.revParse(mirror.dir, `refs/heads/${c.version}`);
    if (head) {
      report.notMapped(
        `comfyui_version = "${c.version}" (a branch)`,
        `a branch moves: pinned to its current commit ${head.slice(0, 12)}` +
          (stale ? ` (as last fetched: the fetch failed, ${stale})` : ""),
      );
      spec = head;
    }
  }
  if (!c.commit && !c.version) {
    report.notMapped("comfyui_version", "the file names no ComfyUI version: using the latest release");
  }
  const comfy = await resolveComfyUI(app.ws, url, spec);
  for (const w of comfy.warnings) app.log(`warning: ${w}`);

  let pythonVersion = conv.pythonVersion;
  const pyFile = (await readTextIfExists(join(cecDir, ".python-version")))?.trim();
  if (!pythonVersion && pyFile && /^\d+\.\d+/.test(pyFile)) {
    pythonVersion = pyFile.split(".").slice(0, 2).join(".");
    report.mapped(".python-version", `tool.comfydock.python_version = "${pythonVersion}"`);
  }
  if (!pythonVersion) {
    const python = await pickPython(app.settings);
    pythonVersion = python.version.split(".").slice(0, 2).join(".");
    report.notMapped(
      "python_version",
      `the file names none: Python ${pythonVersion} (the default of create)`,
    );
  }

  const doc = conv.doc as Record<string, Record<string, unknown>>;
  const table = doc.tool.comfydock as Record<string, unknown>;
  doc.tool.comfydock = {
    version: table.version,
    comfyui_version: comfy.version,
    comfyui_commit: comfy.commit,
    comfyui_url: url,
    python_version: pythonVersion,
    ...Object.fromEntries(Object.entries(table).filter(([k]) => k !== "version")),
  };
  const uvTable = (doc.tool.uv ??= {}) as Record<string, unknown>;
  if (!("default-groups" in uvTable)) setPath(doc, ALL_GROUPS);
  if (conv.needsTorchIndex) {
    const backend = await resolveTorchBackend(opts.torchBackend ?? "auto");
    assertTorchBackend(backend, opts.torchBackend ?? "auto");
    const uv = (doc.tool.uv ?? {}) as Record<string, unknown>;
    const edits = torchUvConfig(backend, {
      existingIndexes: Array.isArray(uv.index) ? uv.index : [],
      searchPath: app.settings.system.path,
    });
    for (const e of edits) setPath(doc, e);
    report.mapped("torch backend", `${backend} (--torch-backend): the file names no torch index`);
  }

  // Tracked workflows whose file is not in the .cec cannot be tracked.
  const tracked = (table.workflows as { tracked: Record<string, { file: string }> }).tracked;
  for (const [wf, spec] of Object.entries(tracked)) {
    if (!await exists(join(cecDir, spec.file))) {
      delete tracked[wf];
      report.notMapped(`workflow ${wf}`, `its file ${spec.file} is not in the .cec`);
    }
  }
  const out = stringify(doc) + "\n";
  parsePyproject(out, file);
  await writeFileAtomic(file, out);
  report.mapped("pyproject.toml", "rewritten in ComfyDock's schema (comments of the old file are not kept)");
  for (const rel of await listFiles(cecDir)) {
    if (rel === "pyproject.toml" || rel === ".git" || rel.startsWith(".git/")) continue;
    if (rel === "uv.lock") report.kept(rel, "kept; re-locked on the first apply when the groups changed");
    else if (!rel.startsWith("workflows/")) report.kept(rel, "kept in .cec (ComfyDock does not use it)");
  }
  if (!await exists(join(cecDir, ".comfydockignore"))) {
    await writeFileAtomic(join(cecDir, ".comfydockignore"), DEFAULT_COMFYDOCKIGNORE);
  }
  if (await git.isRepo(cecDir)) {
    const unmapped = report.unmapped.length;
    await git.commit(
      cecDir,
      `Convert from ${kind === "comfygit" ? "ComfyGit" : "ComfyDock 1.x"}: ` +
        `${report.lines.length - unmapped} mapped or kept, ${unmapped} not mapped`,
    );
  }
  return { kind, name, report: report.lines };
}
