/**
 * `comfydock adopt PATH`: an existing ComfyUI folder (a git checkout with hand-installed nodes, a venv, models,
 * workflows) becomes an environment whose first plan is clean, without rebuilding what is there.
 *
 * What is read (the folder is only read; git runs with optional locks off, no Python runs in the venv):
 * - ComfyUI: HEAD of its checkout and the `origin` it came from; the ComfyUI mirror is seeded from the
 *   checkout itself (no network). A folder that is not a git checkout: its `comfyui_version.py` names the
 *   release, which is resolved through the mirror (`--comfyui` overrides) and checked out fresh.
 * - custom_nodes: every entry as `capture` pins it (git at HEAD with its remote, registry packs by the
 *   Manager's `.tracking`/`.git/.cnr-id` or our marker, single files by sha256, disabled ones with
 *   `enabled = false`, anything else a local node used in place), plus a folder unzipped by hand recognised by
 *   its content against the registry when reachable, and a git checkout with uncommitted edits used in place
 *   (a commit pin would not reproduce them); its requirements into its group.
 * - the venv (`venv/` or `.venv/` in or beside ComfyUI, or the venv of `--python`): every installed distribution, locked
 *   at its installed version (providers/packages/keep_versions.ts), torch from the index its local build
 *   label names (`+cpu`, `+cu124`, ...).
 * - models under `models/` and the folders of `extra_model_paths.yaml`: indexed where they are (sha256),
 *   recorded in .cec and linked into the environment, never copied.
 * - workflows of `user/default/workflows`: tracked after the build, like `workflow track --all`.
 *
 * How the environment gets the folder (decision, README "Adopt a folder"):
 * - default: the folder is left exactly as it was. ComfyUI is a fresh checkout of the same commit (cloned
 *   from the seeded mirror), custom nodes and `user/` are copied, the venv is a hard-linked copy (no extra
 *   space; uv installs from its cache the same way, and nothing rewrites an installed file in place), models
 *   are links. The two folders are then independent.
 * - `--move`: the ComfyUI folder and its venv are moved (renamed) into the environment: nothing is copied,
 *   hand edits of ComfyUI's files, input/ and output/ come along. The moves are recorded first and undone
 *   on any failure, Ctrl-C or crash (workspace/moves.ts); a folder on another disk is refused.
 */
import { basename, dirname, isAbsolute, join, relative, resolve } from "node:path";
import { CdError, errorMessage } from "../lib/errors.ts";
import { copyTree, exists, readTextIfExists, writeFileAtomic } from "../lib/fsx.ts";
import { localEdits } from "../providers/comfyui/checkout.ts";
import { comfyuiUrl, isUpstream, seedMirrorFrom } from "../providers/comfyui/mirror.ts";
import { normaliseUrl } from "../providers/git/mirror.ts";
import { resolveComfyUI } from "../providers/comfyui/resolve.ts";
import { MappingReport } from "../providers/formats/report.ts";
import * as git from "../providers/git/git.ts";
import { keyFromFilename } from "../providers/models/add.ts";
import { parseExtraModelPaths } from "../providers/models/extra_paths.ts";
import { openModelIndex } from "../providers/models/store.ts";
import { walkModelFiles } from "../providers/models/walk.ts";
import { specFor } from "../providers/nodes/capture.ts";
import { identifyRegistryPack, markIdentified } from "../providers/nodes/identify.ts";
import { MARKER, type NodeMarker, observeNodes, toNodeId } from "../providers/nodes/observe.ts";
import { folderReader, nodeRequirements } from "../providers/nodes/requirements.ts";
import {
  findSitePackages,
  inspectVenv,
  readDirectUrls,
  readInstalled,
} from "../providers/packages/distinfo.ts";
import { type InstalledPackage, lockKeepingVersions } from "../providers/packages/keep_versions.ts";
import { findPython } from "../providers/packages/python.ts";
import { assertTorchBackend, backendOfVersion, TORCH_PACKAGES } from "../providers/packages/torch.ts";
import { Uv } from "../providers/packages/uv.ts";
import { editPyprojectText } from "../reconcile/pyproject_edit.ts";
import { type EnvPaths, envPaths } from "../reconcile/paths.ts";
import type { ModelSpec, NodeSpec } from "../reconcile/schema.ts";
import { pyprojectFromInstalled, writeNewCec } from "./new_cec.ts";
import { cecStagingDir, createEnvironmentFromCec, dropStaging, type ImportResult } from "./import.ts";
import { assertSameFileSystem, type Move, moveBack, moveIn } from "./moves.ts";
import { openRegistry } from "./providers.ts";
import { type App, withSession } from "./session.ts";
import { envNameFrom, validateEnvName } from "./workspace.ts";

export interface AdoptOptions {
  name?: string;
  /** Move the folder (and its venv) into the environment instead of copying/linking. */
  move?: boolean;
  /** The Python ComfyUI runs with: a venv's `bin/python` (default: venv/ or .venv/ in or beside ComfyUI). */
  python?: string;
  /** Override the torch backend read from the installed torch (versions may then change). */
  torchBackend?: string;
  /** ComfyUI repository for a folder without an `origin` (default: the configured one). */
  comfyuiUrl?: string;
  /** ComfyUI version for a folder that is not a git checkout (default: its comfyui_version.py). */
  comfyui?: string;
}

export interface AdoptResult extends ImportResult {
  comfyuiDir: string;
  moved: boolean;
  /** How the venv came in: a hard-linked copy, a copy (another disk), or moved. */
  venv: "hardlinked" | "copied" | "moved";
  workflows: string[];
  seconds: number;
}

/** Where ComfyUI is: PATH itself, or PATH/ComfyUI. */
async function findComfyUI(path: string): Promise<string> {
  for (const dir of [path, join(path, "ComfyUI")]) {
    if (
      await exists(join(dir, "main.py")) &&
      (await exists(join(dir, "folder_paths.py")) || await exists(join(dir, "comfy")))
    ) {
      return dir;
    }
  }
  throw new CdError("ADOPT_NOT_COMFYUI", `${path} is not a ComfyUI folder (no main.py and folder_paths.py)`, {
    hint: "pass the folder that holds ComfyUI's main.py (or its parent)",
  });
}

interface FoundPython {
  /** The venv's root. */
  venv: string;
  /** `X.Y.Z` */
  version: string;
  sitePackages: string[];
}

async function findPythonEnv(comfyDir: string, python?: string): Promise<FoundPython> {
  if (python) {
    const root = dirname(dirname(resolve(python)));
    if (await exists(join(root, "pyvenv.cfg"))) return await venvAt(root);
    // A system or conda Python has no venv whose files could be linked or moved, and its packages include
    // whatever else the machine uses: asking for the venv is clearer than guessing which ones are ComfyUI's.
    throw new CdError(
      "ADOPT_NOT_A_VENV",
      `${python} is not the interpreter of a venv (no ${join(root, "pyvenv.cfg")})`,
      {
        hint:
          "pass the venv ComfyUI runs in (.../venv/bin/python); for a ComfyUI run by a system Python, make a " +
          "venv for it first, or use 'comfydock create' and 'comfydock capture'",
      },
    );
  }
  for (
    const dir of [
      join(comfyDir, "venv"),
      join(comfyDir, ".venv"),
      join(dirname(comfyDir), "venv"),
      join(dirname(comfyDir), ".venv"),
    ]
  ) {
    if (await exists(join(dir, "pyvenv.cfg"))) return await venvAt(dir);
  }
  throw new CdError("ADOPT_NO_VENV", `no venv found in or beside ${comfyDir} (venv/, .venv/)`, {
    hint: "pass the Python ComfyUI runs with: --python PATH (e.g. .../venv/bin/python)",
  });
}

async function venvAt(dir: string): Promise<FoundPython> {
  const v = await inspectVenv(dir);
  if (v.state !== "ok" || !v.python) {
    throw new CdError(
      "ADOPT_VENV_BROKEN",
      `the venv ${dir} is not usable: ${v.problem ?? "no Python version"}`,
      {
        hint: "repair it (or pass another interpreter with --python PATH), then adopt again",
      },
    );
  }
  return { venv: dir, version: v.python, sitePackages: await findSitePackages(dir) };
}

interface PlannedNode {
  entry: string;
  id: string;
  spec: NodeSpec;
  requirements: string[];
  marker: NodeMarker | null;
}

async function entriesOf(dir: string): Promise<Deno.DirEntry[]> {
  try {
    return await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return [];
  }
}

async function countFiles(dir: string): Promise<number> {
  let n = 0;
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory) n += await countFiles(join(dir, e.name));
      else n++;
    }
  } catch {
    // missing or unreadable: nothing to count
  }
  return n;
}

export async function adoptFolder(app: App, path: string, opts: AdoptOptions = {}): Promise<AdoptResult> {
  const started = performance.now();
  const comfyDir = await findComfyUI(resolve(path));
  const isGit = await exists(join(comfyDir, ".git"));
  if (opts.move && !isGit) {
    throw new CdError(
      "ADOPT_MOVE_NOT_GIT",
      `${comfyDir} is not a git checkout, so it cannot become one by moving`,
      {
        hint:
          "adopt it without --move: a fresh checkout of its version is made and your folder is left as it is",
      },
    );
  }
  const name = validateEnvName(
    opts.name ??
      envNameFrom(basename(comfyDir) === "ComfyUI" ? basename(dirname(comfyDir)) : basename(comfyDir)),
  );
  if (await exists(envPaths(app.ws, name).root)) {
    throw new CdError("ENV_EXISTS", `environment '${name}' already exists`, {
      hint: "adopt under another name with --name NAME",
    });
  }
  const report = new MappingReport();
  const py = await findPythonEnv(comfyDir, opts.python);
  const pythonVersion = py.version.split(".").slice(0, 2).join(".");

  // ComfyUI: its commit (a checkout) or its release (a plain folder), through the mirror.
  let comfy;
  let url: string;
  const edits: string[] = [];
  if (isGit) {
    const commit = await git.revParse(comfyDir, "HEAD");
    if (!commit) throw new CdError("ADOPT_NO_COMMIT", `${comfyDir} is a git repository without a commit`);
    const origin = await git.originUrl(comfyDir);
    url = origin && !isUpstream(origin) ? normaliseUrl(origin) : comfyuiUrl(opts.comfyuiUrl, app.settings);
    app.log(`ComfyUI at ${commit.slice(0, 12)}: seeding the mirror of ${url} from ${comfyDir}`);
    await seedMirrorFrom(app.ws, url, comfyDir, commit);
    comfy = await resolveComfyUI(app.ws, url, commit);
    edits.push(...await localEdits(comfyDir, { untrusted: true }));
    report.mapped("ComfyUI", `${comfy.version} (${comfy.commit}) from ${url}`);
    if (edits.length) {
      const shown = edits.slice(0, 5).join(", ") + (edits.length > 5 ? ", ..." : "");
      if (opts.move) {
        report.kept(`ComfyUI: ${edits.length} file(s) edited by hand (${shown})`, "moved along, never reset");
      } else {
        report.notMapped(
          `ComfyUI: ${edits.length} file(s) edited by hand (${shown})`,
          "the environment's checkout has them as committed (your folder keeps the edits; --move brings them)",
        );
      }
    }
  } else {
    const own = /__version__\s*=\s*["']([^"']+)["']/.exec(
      (await readTextIfExists(join(comfyDir, "comfyui_version.py"))) ?? "",
    )?.[1];
    const spec = opts.comfyui ?? own;
    if (!spec) {
      throw new CdError(
        "ADOPT_COMFYUI_VERSION_UNKNOWN",
        `${comfyDir} is not a git checkout and names no version`,
        {
          hint: "pass the ComfyUI version it is with --comfyui TAG|COMMIT",
        },
      );
    }
    url = comfyuiUrl(opts.comfyuiUrl, app.settings);
    comfy = await resolveComfyUI(app.ws, url, spec);
    report.mapped(
      "ComfyUI (not a git checkout)",
      `${comfy.version} (${comfy.commit}) from ${url}, checked out fresh; files of your folder outside ` +
        "custom_nodes/, models/ and user/ are not compared",
    );
  }
  for (const w of comfy.warnings) app.log(`warning: ${w}`);

  const staging = await cecStagingDir(app.ws, "import");
  // Set once the environment exists: from then on a failure leaves it, and a moved folder in it.
  let created = false;
  try {
    // Custom nodes, observed where they are and pinned as `capture` pins them.
    const userNodes = join(comfyDir, "custom_nodes");
    const observed = await observeNodes(userNodes);
    // Files ComfyUI itself ships in custom_nodes/ (websocket_image_save.py) come with its checkout; in a
    // folder without .git nothing tells them from the user's, so the commit's own list does.
    const shipped = new Set(
      (await git.lsFiles(comfy.mirror.dir, comfy.commit)).filter((f) => f.startsWith("custom_nodes/"))
        .map((f) => f.split("/")[1]),
    );
    const planned: PlannedNode[] = [];
    const cecFiles: { path: string; content: string }[] = [];
    const { registry, close } = await openRegistry(app.ws, app.settings);
    try {
      // Enabled copies first: when a node also has disabled copies, the one ComfyUI loads is recorded.
      for (const o of [...observed.nodes].sort((a, b) => Number(a.disabled) - Number(b.disabled))) {
        const item = `custom_nodes/${o.path}`;
        if (shipped.has(o.path)) continue;
        const dir = join(userNodes, o.path);
        const captured = await specFor(o, {
          dir,
          path: `ComfyUI/custom_nodes/${o.path}`,
          dirtyInPlace: true,
        });
        if (typeof captured === "string") {
          report.notMapped(item, `${captured}; copied as it is`);
          continue;
        }
        let spec = captured.spec;
        let marker: NodeMarker | null = null;
        if (spec.source === "local" && o.kind === "plain" && !o.disabled) {
          marker = await identifyRegistryPack(dir, registry, app.ws.nodeStore, app.settings);
          if (marker) {
            spec = {
              source: "registry",
              version: marker.version!,
              sha256: marker.sha256,
              ...(o.dir !== marker.id ? { directory: o.dir } : {}),
            };
          }
        }
        const id = o.kind === "file" ? o.id! : toNodeId(marker?.id ?? o.id ?? o.dir);
        const first = planned.find((p) => p.id === id);
        if (first) {
          report.notMapped(
            item,
            `another copy of '${id}' (custom_nodes/${first.entry}) is the one recorded; copied as it is`,
          );
          continue;
        }
        let requirements: string[] = [];
        if (o.kind !== "file") {
          const reqs = await nodeRequirements(id, folderReader(dir), `ComfyUI/custom_nodes/${o.path}`);
          for (const w of reqs.warnings) app.log(`warning: ${w}`);
          requirements = reqs.requirements;
        }
        if (captured.file) cecFiles.push(captured.file);
        planned.push({ entry: o.path, id, spec, requirements, marker });
        const how = spec.source === "registry"
          ? `registry ${spec.version}${marker ? " (recognised by content)" : ""}`
          : spec.source === "git"
          ? `git ${spec.commit.slice(0, 12)} from ${spec.repository}`
          : spec.source === "file"
          ? "single-file node (its bytes kept in .cec/nodes/)"
          : o.kind === "git" && o.dirty.length
          ? `local node used in place: ${o.dirty.length} uncommitted change(s) (commit and push them to pin ` +
            "it as a git node)"
          : "local node, used in place";
        report.mapped(
          item,
          `[tool.comfydock.nodes.${id}] ${how}${
            spec.enabled === false ? ", disabled (enabled = false)" : ""
          }`,
        );
      }
    } finally {
      close();
    }

    // Packages: every installed distribution, at its version.
    const { dists } = await readInstalled(py.sitePackages);
    const origins = await readDirectUrls(py.sitePackages);
    const installed: InstalledPackage[] = [];
    for (const [n, v] of Object.entries(dists).sort()) {
      const o = origins[n];
      if (!o) {
        installed.push({ name: n, version: v, requirement: `${n}==${v}` });
      } else if (o.vcs === "git" && o.commit && !o.editable) {
        installed.push({ name: n, version: v, requirement: `${n} @ git+${o.url}@${o.commit}` });
      } else if (/^https?:/.test(o.url) && !o.editable) {
        installed.push({ name: n, version: v, requirement: `${n} @ ${o.url}` });
      } else {
        report.notMapped(
          `package ${n} ${v}`,
          `installed from ${o.url}${
            o.editable ? " (editable)" : ""
          }, a path on this machine: the environment's ` +
            `venv does not keep it (yours does); add '${n} @ ${o.url}' to [dependency-groups].user if you need it`,
        );
      }
    }
    const torchVersions: Record<string, string> = {};
    for (const t of TORCH_PACKAGES) if (dists[t]) torchVersions[t] = dists[t];
    const detected = dists.torch ? backendOfVersion(dists.torch) : null;
    // No build label: torch came from the default index (PyPI), the `pypi` backend.
    const backend = opts.torchBackend ?? detected ?? (dists.torch ? "pypi" : null);
    if (backend) assertTorchBackend(backend, opts.torchBackend);
    report.mapped(
      `Python ${py.version} packages (${installed.length})`,
      `locked at their installed versions; torch ${dists.torch ?? "(none)"}${
        backend === "pypi"
          ? " from the default index, as installed"
          : backend
          ? ` from the ${backend} index`
          : ""
      }`,
    );

    // Models, indexed where they are.
    const roots: { path: string; category: string | null }[] = [{
      path: join(comfyDir, "models"),
      category: null,
    }];
    const extraFile = join(comfyDir, "extra_model_paths.yaml");
    const extraText = await readTextIfExists(extraFile);
    if (extraText !== null) {
      const extra = await parseExtraModelPaths(extraText, extraFile, app.settings.system.home);
      for (const f of extra.folders) roots.push({ path: f.path, category: f.category });
      for (const s of extra.skipped) report.notMapped(`extra_model_paths.yaml: ${s}`, "");
      report.mapped("extra_model_paths.yaml", `${extra.folders.length} folder(s) indexed where they are`);
    }
    const models: Record<string, ModelSpec> = {};
    {
      using index = openModelIndex(app.ws);
      for (const root of roots) {
        if (!await exists(root.path)) continue;
        app.log(`indexing models in ${root.path} (sha256 of new files)`);
        await index.scanDirectory(root.path, { full: true });
        const { files } = await walkModelFiles(root.path);
        for (const f of files) {
          const rel = relative(root.path, f.path).split(/[\\/]/);
          const category = root.category ?? (rel.length > 1 ? rel[0] : null);
          const filename = (root.category ? rel : rel.slice(1)).join("/");
          const sha256 = index.fileAt(f.path)?.sha256;
          if (!category || !filename || !sha256) {
            report.notMapped(relative(comfyDir, f.path), "not in a category folder (models/<category>/...)");
            continue;
          }
          let key = keyFromFilename(filename);
          for (let i = 2; key in models; i++) key = `${keyFromFilename(filename)}_${i}`;
          models[key] = { sha256, hash: `sha256:${sha256}`, size: f.size, category, filename, sources: [] };
        }
      }
    }
    if (Object.keys(models).length) {
      report.mapped(
        `${Object.keys(models).length} model file(s)`,
        "indexed where they are, linked into the environment",
      );
    }

    // The .cec, locked at the installed versions.
    const base = await pyprojectFromInstalled({
      name,
      pythonVersion,
      comfy,
      comfyuiUrl: url,
      torch: backend ? { backend, versions: torchVersions } : null,
      settings: app.settings,
    });
    const text = (await editPyprojectText(base, [
      ...planned.map((p) => ({ path: ["tool", "comfydock", "nodes", p.id], value: p.spec })),
      ...planned.filter((p) => p.requirements.length).map((p) => ({
        path: ["dependency-groups", p.id],
        value: p.requirements,
      })),
      ...Object.entries(models).map(([k, m]) => ({ path: ["tool", "comfydock", "models", k], value: m })),
    ])).text;
    const python = await findPython(app.settings.system, pythonVersion);
    app.log(`locking ${installed.length} installed package(s) at their versions (uv lock)`);
    const kept = await lockKeepingVersions({
      uv: await Uv.locate(app.ws, app.settings),
      python: python.path,
      pythonVersion,
      workDir: staging,
      pyprojectText: text,
      installed,
      onLine: (l) => app.log(`uv: ${l}`),
    });
    for (const c of kept.changed) {
      report.notMapped(
        `package ${c.name} ${c.installed}`,
        `not kept: ${c.reason}${c.locked ? `; locked ${c.locked}` : ""}`,
      );
    }
    const cec = join(staging, "cec");
    await writeNewCec(cec, kept.pyprojectText, kept.lockText);
    for (const f of cecFiles) await writeFileAtomic(join(cec, f.path), f.content);

    // How the folder comes in.
    let venvHow: AdoptResult["venv"] = opts.move ? "moved" : "hardlinked";
    const written: string[] = [];
    const place = opts.move
      ? {
        before: async (paths: EnvPaths) => {
          const moves: Move[] = [{ from: comfyDir, to: paths.comfyui }];
          const inside = relative(comfyDir, py.venv);
          const venvInside = !inside.startsWith("..") && !isAbsolute(inside);
          if (!venvInside) moves.push({ from: py.venv, to: paths.venv });
          await assertSameFileSystem(moves);
          // A venv inside ComfyUI/ (ComfyUI/venv) moves with it, then to the environment's .venv.
          if (venvInside) moves.push({ from: join(paths.comfyui, inside), to: paths.venv });
          await moveIn(paths.state, moves);
        },
        afterComfyUI: async (paths: EnvPaths) => {
          for (const p of planned) {
            if (!p.marker) continue;
            await markIdentified(join(paths.customNodes, p.entry), p.marker);
            // After an undo the folder is back in place, with the marker: it is removed there.
            written.push(join(comfyDir, "custom_nodes", p.entry, MARKER));
          }
        },
        undo: async (paths: EnvPaths) => {
          const stuck = await moveBack(paths.state);
          for (const m of written) await Deno.remove(m).catch(() => {});
          return stuck.length === 0;
        },
      }
      : {
        before: async (paths: EnvPaths) => {
          const r = await copyTree(py.venv, paths.venv, { hardlink: true });
          if (r.linked < r.files) venvHow = "copied";
        },
        afterComfyUI: async (paths: EnvPaths) => {
          for (const e of await entriesOf(userNodes)) {
            if (e.name === "__pycache__" || await exists(join(paths.customNodes, e.name))) continue;
            await copyTree(join(userNodes, e.name), join(paths.customNodes, e.name));
          }
          for (const p of planned) {
            if (p.marker) await markIdentified(join(paths.customNodes, p.entry), p.marker);
          }
          if (await exists(join(comfyDir, "user"))) {
            await copyTree(join(comfyDir, "user"), join(paths.comfyui, "user"), { merge: true });
          }
        },
      };
    if (!opts.move) {
      for (const d of ["input", "output"]) {
        const n = await countFiles(join(comfyDir, d));
        if (n > 0) {
          report.notMapped(
            `${d}/ (${n} file(s))`,
            `stays in ${join(comfyDir, d)}; copy it over if you want it (--move brings it)`,
          );
        }
      }
    }

    const result = await createEnvironmentFromCec(app, name, cec, {
      source: { type: "adopt", path: comfyDir, moved: !!opts.move },
      commitMessage: `Adopt ${comfyDir}${opts.move ? " (moved in)" : ""}`,
      devNodesDir: null,
      modelsDir: null,
      ask: false,
      report: report.lines,
      place,
      logTitle: `adopt: ${comfyDir}${opts.move ? " (moved in)" : ""}`,
      logLines: [`ComfyUI ${comfy.version} (${comfy.commit}), Python ${py.version}, venv ${venvHow}`],
    });

    // Workflows: tracked as they are (the files are in place, so nothing is applied).
    created = true;
    const final = envPaths(app.ws, name);
    // The environment exists now (a moved folder lives in it): a workflow that cannot be tracked is reported.
    const workflows = await trackAll(app, final).catch((e) => {
      report.notMapped("workflows", `not tracked: ${errorMessage(e)}; run 'comfydock workflow track --all'`);
      return [] as string[];
    });
    if (workflows.length) report.mapped(`${workflows.length} workflow(s)`, "tracked in .cec/workflows");
    result.remaining = await withSession(app, final, "adopt", "read", async (s) => (await s.plan()).plan);
    result.built = result.remaining.actions.length === 0;
    result.report = report.lines;
    return {
      ...result,
      comfyuiDir: comfyDir,
      moved: !!opts.move,
      venv: venvHow,
      workflows,
      seconds: Math.round((performance.now() - started) / 10) / 100,
    };
  } catch (e) {
    if (e instanceof CdError) throw e;
    throw new CdError("ADOPT_FAILED", `adopting ${comfyDir} failed: ${errorMessage(e)}`, {
      // Once the environment exists the moves are final: say where things are, not that they went back.
      hint: created
        ? `environment '${name}' was created at ${envPaths(app.ws, name).root}` +
          (opts.move ? " and your folder now lives in it" : "") +
          `; see what is left with 'comfydock -e ${name} plan'`
        : opts.move
        ? "your folder was moved back where it was"
        : "your folder was not changed",
      cause: e,
    });
  } finally {
    await dropStaging(staging);
  }
}

/** `workflow track --all` in the new environment (one `.cec` commit; the files already are where they go). */
async function trackAll(app: App, paths: EnvPaths): Promise<string[]> {
  const [{ trackWorkflows }, { envResolver, recordSynced }] = await Promise.all([
    import("../providers/workflows/track.ts"),
    import("../providers/workflows/files.ts"),
  ]);
  const { resolver } = await envResolver(paths);
  let synced: Record<string, string | null> = {};
  let names: string[] = [];
  const r = await withSession(app, paths, "adopt", "write", (s) =>
    s.change({
      message: () => `adopt: track ${names.length} workflow(s)`,
      apply: false,
      edit: async (desired) => {
        const change = await trackWorkflows(paths, desired, { all: true, resolver });
        synced = change.synced;
        names = change.names;
        return { edits: change.edits, files: change.files };
      },
    }));
  if (r.commit) await recordSynced(paths, synced);
  return names;
}
