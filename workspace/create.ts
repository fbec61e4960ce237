/**
 * `comfydock create`: a new environment is a fresh `.cec` (ComfyUI pinned, its requirements locked by uv,
 * committed) built by the same engine as `import` (workspace/import.ts): the comfyui and packages actions
 * clone ComfyUI and install the venv in `environments/.staging-<name>-<pid>-<rand>`, renamed into place as
 * the last step. Any failure (unknown version, missing Python, uv error, Ctrl-C) removes everything made, so
 * the workspace is left exactly as it was; the error names the step that failed. A staging dir whose
 * process was killed outright is removed by the next create or import.
 *
 * Ctrl-C: `signal` (an AbortSignal) is checked between steps. A step in flight is allowed to finish (in a
 * terminal git/uv get the same SIGINT and stop at once), so cleanup never races a child process.
 */
import { join } from "node:path";
import { CdError, errorMessage } from "../lib/errors.ts";
import { exists, writeFileAtomic } from "../lib/fsx.ts";
import { comfyuiUrl, mirrorDir } from "../providers/comfyui/mirror.ts";
import { commitDate, requirementsAt, resolveComfyUI } from "../providers/comfyui/resolve.ts";
import { versionLabel } from "../providers/comfyui/versions.ts";
import * as git from "../providers/git/git.ts";
import { excludeNewerEdits, parseAsOf } from "../providers/packages/as_of.ts";
import { installedTorch } from "../providers/packages/distinfo.ts";
import { Uv } from "../providers/packages/uv.ts";
import {
  assertTorchBackend,
  backendOfIndex,
  resolveTorchBackend,
  torchPinEdit,
  torchUvConfig,
} from "../providers/packages/torch.ts";
import { editPyprojectText, type TomlEdit } from "../reconcile/pyproject_edit.ts";
import { envPaths } from "../reconcile/paths.ts";
import {
  getEnvironment,
  readWorkspaceMeta,
  sweepTrash,
  updateWorkspaceMeta,
  validateEnvName,
} from "./workspace.ts";
import { appendEnvLog } from "./env_log.ts";
import { buildFromCec, cecStagingDir, dropStaging } from "./import.ts";
import { ALL_GROUPS, pickPython, renderPyproject, writeNewCec } from "./new_cec.ts";
import type { App } from "./session.ts";

export interface CreateOptions {
  /** Python `X.Y` (default: 3.12 when installed, else the newest interpreter on the machine). */
  python?: string;
  /** ComfyUI `latest` (default), a tag or a commit. */
  comfyui?: string;
  /** ComfyUI git URL (default COMFYDOCK_COMFYUI_URL, else the official repository). */
  comfyuiUrl?: string;
  /** `auto` (default), `cpu`, `cuXXX`, `rocmX.Y`, or `pypi` (torch from the default index). */
  torchBackend?: string;
  /** The index torch comes from, written into `.cec` verbatim (instead of download.pytorch.org/whl/<b>). */
  torchIndex?: string;
  /**
   * Resolve packages as of this date (`YYYY-MM-DD`, RFC 3339) or `comfyui` (the ComfyUI commit's date):
   * uv's `exclude-newer`, kept in `.cec`.
   */
  resolveAsOf?: string;
  /** Make it the active environment (also done when the workspace has none yet). */
  use?: boolean;
  /**
   * Extra `[tool.uv]` settings written into the new pyproject, e.g. a private index or find-links
   * (fixtures/wheels.ts `wheelhouseUvConfig` for offline tests). uv's own UV_* variables work too.
   */
  uvSettings?: TomlEdit[];
  /** Aborting it stops the creation at the next step boundary and removes everything made so far. */
  signal?: AbortSignal;
}

export interface CreatedEnvironment {
  name: string;
  path: string;
  active: boolean;
  comfyui_version: string;
  comfyui_commit: string;
  comfyui_url: string;
  python_version: string;
  python_path: string;
  torch_backend: string;
  /** The torch build installed in the venv (`2.5.1+cu124`), null when the requirements have no torch. */
  torch: string | null;
  /** `[tool.uv] exclude-newer` when created with --resolve-as-of. */
  exclude_newer: string | null;
  dependencies: string[];
  cec_commit: string;
  seconds: number;
}

/**
 * Test hook (DESIGN §10 fault injection): COMFYDOCK_CREATE_FAULT=<step id>:fail|hang fails, or waits for
 * the abort signal, just before that step (ids: python, resolve, write, lock, commit, build). Faults inside
 * the build are the engine's (COMFYDOCK_FAULT).
 */
async function faultPoint(
  fault: string | null,
  stepName: string,
  log: (l: string) => void,
  signal?: AbortSignal,
) {
  if (!fault?.startsWith(`${stepName}:`)) return;
  if (fault.endsWith(":fail")) {
    throw new CdError("INJECTED_FAULT", `injected failure (COMFYDOCK_CREATE_FAULT=${fault})`);
  }
  log(`(COMFYDOCK_CREATE_FAULT: waiting at '${stepName}')`);
  await new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    signal?.addEventListener("abort", () => resolve(), { once: true });
    if (!signal) setTimeout(resolve, 60_000);
  });
}

export async function createEnvironment(
  app: App,
  name: string,
  opts: CreateOptions = {},
): Promise<CreatedEnvironment> {
  const ws = app.ws;
  const started = performance.now();
  validateEnvName(name);
  const meta = await readWorkspaceMeta(ws);
  const final = envPaths(ws, name);
  if (await exists(final.root)) {
    throw new CdError("ENV_EXISTS", `environment '${name}' already exists at ${final.root}`, {
      hint: `pick another name, or delete it first with 'comfydock delete ${name}'`,
    });
  }
  await sweepTrash(ws);
  const url = comfyuiUrl(opts.comfyuiUrl, app.settings);
  const spec = opts.comfyui ?? "latest";
  if (opts.torchIndex !== undefined && opts.torchBackend === "pypi") {
    throw new CdError(
      "TORCH_BACKEND_INVALID",
      "--torch-backend pypi and --torch-index contradict each other",
      {
        hint: "pypi takes torch from the default index; --torch-index names another index: give one of them",
      },
    );
  }
  if (opts.torchIndex !== undefined && !/^(https?|file):\/\/\S+$/i.test(opts.torchIndex)) {
    throw new CdError("TORCH_INDEX_INVALID", `--torch-index '${opts.torchIndex}' is not an http(s) URL`, {
      hint: "give the index URL as uv takes it, e.g. https://download.pytorch.org/whl/cu124",
    });
  }
  const backend = opts.torchBackend ?? (opts.torchIndex ? backendOfIndex(opts.torchIndex) : "auto");
  const torchBackend = backend === "custom" ? backend : await resolveTorchBackend(backend);
  if (torchBackend !== "custom") assertTorchBackend(torchBackend, backend);
  const asOf = opts.resolveAsOf === undefined || opts.resolveAsOf === "comfyui"
    ? opts.resolveAsOf
    : parseAsOf(opts.resolveAsOf);

  let current = "starting";
  const run = async <T>(label: string, id: string, fn: () => Promise<T>): Promise<T> => {
    if (opts.signal?.aborted) throw interrupted(current);
    current = label;
    app.log(label);
    await faultPoint(app.settings.faults.create, id, app.log, opts.signal);
    if (opts.signal?.aborted) throw interrupted(current);
    return await fn();
  };

  const staging = await cecStagingDir(ws, "create");
  try {
    // Tools first: a missing Python or uv fails before anything is cloned.
    const [python, uv] = await run(
      `finding Python ${opts.python ?? "(default 3.12)"} and uv`,
      "python",
      () => Promise.all([pickPython(app.settings, opts.python), Uv.locate(ws, app.settings)]),
    );
    const pythonVersion = python.version.split(".").slice(0, 2).join(".");
    const firstUse = !await exists(mirrorDir(ws, url))
      ? " (first use: cloning it into comfydock_cache/git; later environments reuse it)"
      : "";
    const comfy = await run(
      `resolving ComfyUI '${spec}' from ${url}${firstUse}`,
      "resolve",
      () => resolveComfyUI(ws, url, spec, { progress: app.progress }),
    );
    for (const w of comfy.warnings) app.log(`warning: ${w}`);
    const dependencies = await requirementsAt(comfy.mirror, comfy.commit);
    const excludeNewer = asOf === "comfyui" ? parseAsOf(await commitDate(comfy.mirror, comfy.commit)) : asOf;
    if (excludeNewer) app.log(`resolving packages as of ${excludeNewer} (exclude-newer)`);
    const cec = join(staging, "cec");
    await run(`writing .cec/pyproject.toml (torch backend ${torchBackend})`, "write", async () => {
      const text = renderPyproject({
        name,
        pythonVersion,
        dependencies,
        comfyuiVersion: comfy.version,
        comfyuiCommit: comfy.commit,
        comfyuiUrl: url,
        edits: [
          ...torchUvConfig(torchBackend, { indexUrl: opts.torchIndex, searchPath: app.settings.system.path }),
          ALL_GROUPS,
          ...(excludeNewer ? excludeNewerEdits(excludeNewer, torchBackend !== "pypi") : []),
          ...(opts.uvSettings ?? []),
        ],
      });
      await writeNewCec(cec, text);
    });
    await run(
      `locking ${dependencies.length} ComfyUI requirement(s) (uv lock)`,
      "lock",
      async () => {
        const lock = { python: python.path, progress: app.progress };
        await uv.lock(cec, lock);
        // Torch is pinned from the first lock on: a node asking for another torch fails its resolution.
        const file = join(cec, "pyproject.toml");
        const text = await Deno.readTextFile(file);
        const pin = torchPinEdit(null, await Deno.readTextFile(join(cec, "uv.lock")), text);
        if (pin instanceof CdError) throw pin;
        if (pin) {
          app.log(`pinning ${(pin.value as string[]).join(", ")} (constraint-dependencies)`);
          await writeFileAtomic(file, (await editPyprojectText(text, [pin], file)).text);
          await uv.lock(cec, lock);
        }
      },
    );
    await run("committing .cec", "commit", async () => {
      await git.init(cec);
      await git.commit(cec, `Create environment ${name}: ComfyUI ${comfy.version}, Python ${pythonVersion}`);
    });
    const built = await run(
      `building the environment (ComfyUI ${
        versionLabel(comfy.version, comfy.commit)
      }, Python ${python.version})`,
      "build",
      () =>
        buildFromCec(app, name, cec, {
          signal: opts.signal,
          logTitle: `create: ComfyUI ${comfy.version}, Python ${python.version}`,
          logLines: [
            `ComfyUI ${comfy.version} (${comfy.commit}) from ${url}`,
            `Python ${python.version} (${python.path}), torch backend ${torchBackend}`,
            `${dependencies.length} ComfyUI requirement(s) locked and installed` +
            (excludeNewer ? `, as of ${excludeNewer}` : ""),
          ],
        }),
    );
    const makeActive = !!opts.use || !meta.active_environment;
    if (makeActive) {
      await updateWorkspaceMeta(ws, (m) => {
        m.active_environment = name;
      });
    }
    const created = await getEnvironment(ws, name);
    return {
      name,
      path: final.root,
      active: created.active,
      comfyui_version: comfy.version,
      comfyui_commit: comfy.commit,
      comfyui_url: url,
      python_version: pythonVersion,
      python_path: python.path,
      torch_backend: torchBackend,
      torch: await installedTorch(final.venv),
      exclude_newer: excludeNewer ?? null,
      dependencies,
      cec_commit: (await git.revParse(built.cec, "HEAD"))!,
      seconds: Math.round((performance.now() - started) / 10) / 100,
    };
  } catch (e) {
    if (e instanceof CdError && e.code === "INTERRUPTED") throw e;
    // Ctrl-C in a terminal also stops git/uv, which then fail: report the interruption, not their error.
    if (opts.signal?.aborted) throw interrupted(current);
    const message = `creating '${name}' failed at step "${current}": ${errorMessage(e)}`;
    await appendEnvLog(ws, name, [`create: FAILED`, message]).catch(() => {});
    throw new CdError(e instanceof CdError ? e.code : "CREATE_FAILED", message, {
      hint: (e instanceof CdError && e.hint ? e.hint + "; " : "") +
        "nothing was left behind in the workspace",
      cause: e,
    });
  } finally {
    await dropStaging(staging);
  }
}

function interrupted(stepName: string): CdError {
  return new CdError("INTERRUPTED", `create interrupted during "${stepName}"; nothing was left behind`, {
    exitCode: 130,
  });
}
