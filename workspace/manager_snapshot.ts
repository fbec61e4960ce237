/**
 * ComfyUI-Manager snapshots in and out.
 *
 * `import SNAPSHOT.json|.yaml`: a new `.cec` is written from the snapshot, then built like any import
 * (workspace/import.ts `createEnvironmentFromCec`): ComfyUI at the snapshot's commit (resolved through the
 * ComfyUI mirror), `cnr_custom_nodes` as registry nodes at their versions, `git_custom_nodes` as git nodes at
 * their commits (disabled ones with `enabled = false`), each node's requirements into its dependency group
 * (read from the pack like `node add`), and `pips` locked at their versions (providers/packages/
 * keep_versions.ts): what ComfyUI and the nodes need at the snapshot's versions, the rest as pins in the
 * `user` group. The torch family is left to the torch backend (`--torch-backend`, default like create):
 * torch, torchvision and torchaudio keep their versions as constraints but come as the backend's build;
 * torch's runtime wheels (nvidia-*, triton) are whatever that build needs. Everything not mapped is in the
 * report, with why.
 *
 * `export --format manager-snapshot`: the environment's `.cec` in the Manager's JSON shape, `pips` from
 * uv.lock (what the venv holds once applied).
 */
import { basename, join } from "node:path";
import { CdError, errorMessage } from "../lib/errors.ts";
import { exists } from "../lib/fsx.ts";
import { comfyuiUrl } from "../providers/comfyui/mirror.ts";
import { resolveComfyUI } from "../providers/comfyui/resolve.ts";
import {
  type ManagerSnapshot,
  parseManagerSnapshot,
  renderManagerSnapshot,
} from "../providers/formats/manager_snapshot.ts";
import { MappingReport } from "../providers/formats/report.ts";
import { type ResolvedNode, resolveNodeSpec } from "../providers/nodes/add.ts";
import { parseFreezeEntry } from "../providers/packages/freeze.ts";
import { type InstalledPackage, lockKeepingVersions } from "../providers/packages/keep_versions.ts";
import { normalizeName, parseLock, requiredPackages } from "../providers/packages/lockfile.ts";
import { markerEnv } from "../providers/packages/markers.ts";
import {
  assertTorchBackend,
  isTorchRuntime,
  resolveTorchBackend,
  TORCH_PACKAGES,
} from "../providers/packages/torch.ts";
import { Uv } from "../providers/packages/uv.ts";
import type { DesiredState } from "../reconcile/desired.ts";
import { editPyprojectText, type TomlEdit } from "../reconcile/pyproject_edit.ts";
import type { NodeSpec } from "../reconcile/schema.ts";
import { envPaths } from "../reconcile/paths.ts";
import { pickPython, pyprojectFromInstalled, writeNewCec } from "./new_cec.ts";
import {
  cecStagingDir,
  createEnvironmentFromCec,
  dropStaging,
  type ImportOptions,
  type ImportResult,
} from "./import.ts";
import type { App } from "./session.ts";
import { openRegistry } from "./providers.ts";
import { envNameFrom, validateEnvName } from "./workspace.ts";

export interface SnapshotImportOptions extends ImportOptions {
  /** Python `X.Y` (a snapshot does not name one; default like create). */
  python?: string;
  /** ComfyUI version for snapshots that name no commit (`custom_nodes_only`); default `latest`. */
  comfyui?: string;
  /** Extra `[tool.uv]` settings (a private index; tests: the local wheelhouse). */
  uvSettings?: TomlEdit[];
}

/** `2024-05-01_12-00-00_snapshot.json` -> a valid environment name from the file name. */
function nameFromFile(file: string): string {
  return envNameFrom(basename(file).replace(/\.(json|ya?ml)$/i, ""));
}

/** The version of a torch wheel named by URL (`.../torch-2.5.1%2Bcu124-cp311-...whl` -> `2.5.1+cu124`). */
function wheelVersion(url: string): string | null {
  const file = decodeURIComponent(url.split(/[?#]/)[0].split("/").pop() ?? "");
  const m = /^[A-Za-z0-9_.]+-([^-]+)-.*\.whl$/.exec(file);
  return m ? m[1] : null;
}

interface PlannedNodes {
  specs: Record<string, NodeSpec>;
  groups: Record<string, string[]>;
}

async function mapNodes(
  app: App,
  name: string,
  snap: ManagerSnapshot,
  report: MappingReport,
): Promise<PlannedNodes> {
  const out: PlannedNodes = { specs: {}, groups: {} };
  const { registry, close } = await openRegistry(app.ws, app.settings);
  const ctx = { paths: envPaths(app.ws, name), registry, log: app.log };
  const take = (item: string, n: ResolvedNode, extra: Partial<NodeSpec>, what: string) => {
    if (n.id in out.specs) {
      report.notMapped(item, `another node of the snapshot already has the id '${n.id}'`);
      return;
    }
    out.specs[n.id] = { ...n.spec, ...extra } as NodeSpec;
    if (n.requirements.length) out.groups[n.id] = n.requirements;
    for (const w of n.warnings) app.log(`warning: ${w}`);
    report.mapped(item, `[tool.comfydock.nodes.${n.id}] ${what}`);
  };
  try {
    for (const [id, version] of Object.entries(snap.cnr_custom_nodes)) {
      const item = `cnr_custom_nodes.${id}`;
      try {
        const n = await resolveNodeSpec({ kind: "registry", id, version }, ctx);
        take(item, n, {}, `registry version ${version}`);
      } catch (e) {
        report.notMapped(
          item,
          `${errorMessage(e).split("\n")[0]}; add it later with 'comfydock node add ${id}'`,
        );
      }
    }
    for (const [url, git] of Object.entries(snap.git_custom_nodes)) {
      const item = `git_custom_nodes["${url}"]`;
      try {
        const n = await resolveNodeSpec({ kind: "git", url, ref: git.hash }, ctx);
        const spec = { ...n.spec } as Extract<NodeSpec, { source: "git" }>;
        delete spec.ref; // the ref asked for is the commit itself
        take(
          item,
          { ...n, spec },
          git.disabled ? { enabled: false } : {},
          `git commit ${git.hash.slice(0, 12)}${git.disabled ? ", disabled (enabled = false)" : ""}`,
        );
      } catch (e) {
        report.notMapped(
          item,
          `${errorMessage(e).split("\n")[0]}; add it later with 'comfydock node add ${url}'`,
        );
      }
    }
  } finally {
    close();
  }
  for (const f of snap.file_custom_nodes) {
    report.notMapped(
      `file_custom_nodes: ${f.filename}${f.disabled ? " (disabled)" : ""}`,
      "a snapshot names a single-file node but holds neither its content nor where it came from; copy " +
        `custom_nodes/${f.filename} into the new environment yourself, then run 'comfydock capture'`,
    );
  }
  return out;
}

interface PlannedPackages {
  installed: InstalledPackage[];
  torchVersions: Record<string, string>;
}

function mapPips(snap: ManagerSnapshot, backend: string, report: MappingReport): PlannedPackages {
  const out: PlannedPackages = { installed: [], torchVersions: {} };
  if (snap.pips === null) {
    report.notMapped(
      "pips",
      "the snapshot lists no packages (saved with custom nodes only): the environment gets what ComfyUI " +
        "and the nodes require, at the versions uv picks",
    );
    return out;
  }
  const torch = new Set<string>(TORCH_PACKAGES);
  for (const [key, value] of Object.entries(snap.pips)) {
    const e = parseFreezeEntry(key, value);
    const item = `pips: ${value ? `${key} @ ${value}` : key}`;
    if (e.kind === "unmapped") {
      report.notMapped(item, e.reason);
      continue;
    }
    if (torch.has(e.name)) {
      const version = e.kind === "pin" ? e.version : wheelVersion(e.url);
      if (!version) {
        report.notMapped(item, `no version in it; ${e.name} comes from the torch backend (${backend})`);
        continue;
      }
      out.torchVersions[e.name] = version;
      const plain = version.split("+")[0];
      out.installed.push({ name: e.name, version: plain, requirement: e.name });
      report.mapped(
        item,
        `${e.name}==${plain} as a constraint; the build comes from the torch backend (${backend})`,
      );
      continue;
    }
    if (isTorchRuntime(e.name)) {
      report.notMapped(
        item,
        `torch's own runtime wheel: the torch build for '${backend}' brings the one it needs`,
      );
      continue;
    }
    out.installed.push({
      name: e.name,
      version: e.kind === "pin" ? e.version : "",
      requirement: e.requirement,
    });
  }
  return out;
}

export async function importManagerSnapshot(
  app: App,
  file: string,
  opts: SnapshotImportOptions = {},
): Promise<ImportResult> {
  const text = await Deno.readTextFile(file).catch((e) => {
    throw new CdError("IMPORT_SOURCE_NOT_FOUND", `cannot read ${file}: ${errorMessage(e)}`);
  });
  const parsed = await parseManagerSnapshot(text, file);
  const snap = parsed.snapshot;
  const name = validateEnvName(opts.name ?? nameFromFile(file));
  if (await exists(envPaths(app.ws, name).root)) {
    throw new CdError("ENV_EXISTS", `environment '${name}' already exists`, {
      hint: "import under another name with --name NAME, or delete the existing one first",
    });
  }
  const report = new MappingReport();
  for (const k of parsed.unknownKeys) report.notMapped(k, "not a key of ComfyUI-Manager's snapshot format");
  const staging = await cecStagingDir(app.ws);
  try {
    const [python, uv] = await Promise.all([
      pickPython(app.settings, opts.python),
      Uv.locate(app.ws, app.settings),
    ]);
    const pythonVersion = python.version.split(".").slice(0, 2).join(".");
    const url = comfyuiUrl(opts.comfyuiUrl, app.settings);
    const spec = snap.comfyui ?? opts.comfyui ?? "latest";
    app.log(`resolving ComfyUI ${spec} from ${url}`);
    const comfy = await resolveComfyUI(app.ws, url, spec);
    for (const w of comfy.warnings) app.log(`warning: ${w}`);
    if (snap.comfyui) report.mapped("comfyui", `ComfyUI ${comfy.version} (${comfy.commit})`);
    else {
      report.notMapped(
        "comfyui",
        `the snapshot names no ComfyUI commit: using ${spec} = ${comfy.version} (pass --comfyui to choose)`,
      );
    }
    const backend = await resolveTorchBackend(opts.torchBackend ?? "auto");
    assertTorchBackend(backend, opts.torchBackend ?? "auto");

    const nodes = await mapNodes(app, name, snap, report);
    const packages = mapPips(snap, backend, report);
    const base = await pyprojectFromInstalled({
      name,
      pythonVersion,
      comfy,
      comfyuiUrl: url,
      torch: { backend, versions: packages.torchVersions },
      settings: app.settings,
      edits: opts.uvSettings,
    });
    const withNodes = (await editPyprojectText(base, [
      ...Object.entries(nodes.specs).map(([id, s]) => ({
        path: ["tool", "comfydock", "nodes", id],
        value: s,
      })),
      ...Object.entries(nodes.groups).map(([id, reqs]) => ({ path: ["dependency-groups", id], value: reqs })),
    ])).text;
    app.log(`locking ${packages.installed.length} package(s) of the snapshot at their versions (uv lock)`);
    const kept = await lockKeepingVersions({
      uv,
      python: python.path,
      pythonVersion,
      workDir: staging,
      pyprojectText: withNodes,
      installed: packages.installed,
      onLine: (l) => app.log(`uv: ${l}`),
    });
    for (const c of kept.changed) {
      report.notMapped(
        `pips: ${c.name}==${c.installed}`,
        `not kept: ${c.reason}${c.locked ? `; locked ${c.locked}` : ""}`,
      );
    }
    if (kept.user.length) {
      report.mapped(
        `pips (${kept.user.length} that neither ComfyUI nor a node requires)`,
        "[dependency-groups].user, pinned",
      );
    }
    const cec = join(staging, "cec");
    await writeNewCec(cec, kept.pyprojectText, kept.lockText);
    const result = await createEnvironmentFromCec(app, name, cec, {
      ...opts,
      source: { type: "snapshot", file, format: parsed.format },
      commitMessage: `Import ComfyUI-Manager snapshot ${basename(file)}`,
      devNodesDir: null,
      modelsDir: null,
      report: report.lines,
      logLines: [
        `ComfyUI ${comfy.version} (${comfy.commit}), Python ${python.version}, torch backend ${backend}`,
        `${
          Object.keys(nodes.specs).length
        } node(s), ${packages.installed.length} package(s) from the snapshot`,
      ],
    });
    return result;
  } finally {
    await dropStaging(staging);
  }
}

/**
 * The environment as a ComfyUI-Manager snapshot. What the format cannot hold (local/dev nodes) comes back in
 * `skipped`, for the caller to warn about.
 */
export function managerSnapshotOf(desired: DesiredState): { text: string; skipped: string[] } {
  const snap: ManagerSnapshot = {
    comfyui: desired.comfyui.commit,
    git_custom_nodes: {},
    cnr_custom_nodes: {},
    file_custom_nodes: [],
    pips: {},
  };
  const skipped: string[] = [];
  for (const [id, spec] of Object.entries(desired.nodes).sort(([a], [b]) => a.localeCompare(b))) {
    if (spec.source === "registry") {
      // The Manager records no disabled registry node ("don't restore disabled state of CNR node").
      if (spec.enabled === false) {
        skipped.push(`node ${id}: a disabled registry node (the format has no place for it)`);
      } else snap.cnr_custom_nodes[spec.registry_id ?? id] = spec.version;
    } else if (spec.source === "git") {
      snap.git_custom_nodes[spec.repository] = { hash: spec.commit, disabled: spec.enabled === false };
    } else if (spec.source === "file") {
      // The format lists a file node's name only; a restore cannot get its content from that.
      snap.file_custom_nodes.push({ filename: spec.filename, disabled: spec.enabled === false });
    } else {
      skipped.push(`node ${id}: a ${spec.source} node (${spec.path}) has no registry version or git commit`);
    }
  }
  const lockText = desired.lockText;
  if (lockText === null) {
    skipped.push("pips: .cec has no uv.lock yet (run 'comfydock apply' first)");
  } else {
    const python = desired.pyproject.tool.comfydock.python_version;
    const lock = parseLock(lockText, desired.paths.uvLock);
    const pkgs = requiredPackages(lock, markerEnv(python));
    for (const [n, p] of Object.entries(pkgs).sort(([a], [b]) => a.localeCompare(b))) {
      const entry = lock.package.find((x) => normalizeName(x.name) === n && x.version === p.version);
      const src = entry?.source ?? {};
      // pip freeze writes direct references as `name @ URL`; the Manager splits that into key and value.
      const direct = typeof src.url === "string"
        ? src.url
        : typeof src.git === "string"
        ? `git+${src.git}`
        : null;
      if (direct) snap.pips![n] = direct;
      else snap.pips![`${n}==${p.version}`] = "";
    }
  }
  return { text: renderManagerSnapshot(snap), skipped };
}
