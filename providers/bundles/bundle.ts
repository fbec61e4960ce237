/**
 * BundleManager (seed names): environment and workflow bundles on top of archive.ts and manifest.ts.
 *
 * Archive layout (every path is listed in the manifest with size and sha256):
 *   comfydock-bundle.json           always the first entry
 *   cec/...                         the `.cec` content (pyproject.toml, uv.lock, workflows/, .comfydockignore, ...)
 *   dev_nodes/<id>/...              local/dev nodes, with --with-dev-nodes
 *   models/<category>/<filename>    model files, with --with-models (otherwise models travel as hash + sources
 *                                   inside pyproject.toml, exactly as they are there)
 *   workflows/<file>                the workflow of a workflow bundle
 */
import { basename, isAbsolute, join, resolve } from "node:path";
import { CdError } from "../../lib/errors.ts";
import { joinSafe } from "../../lib/safe_path.ts";
import { exists, listFiles, readTextIfExists, removeIfExists, sha256Hex } from "../../lib/fsx.ts";
import { parsePyproject, readDesired } from "../../reconcile/desired.ts";
import { type NodeSpec, specEntryName } from "../../reconcile/schema.ts";
import type { EnvPaths } from "../../reconcile/paths.ts";
import { hashFileFull } from "../models/hash_core.ts";
import type { ArchiveLimits } from "../../lib/archive_limits.ts";
import {
  type ArchiveSource,
  type EntryHeader,
  type ExtractedFile,
  extractTarGz,
  writeTarGz,
} from "./archive.ts";
import {
  type BundleManifest,
  MANIFEST_NAME,
  type ManifestFile,
  newManifest,
  parseManifest,
  type WorkflowDeps,
} from "./manifest.ts";

export const CEC_PREFIX = "cec/";
export const DEV_NODES_PREFIX = "dev_nodes/";
export const MODELS_PREFIX = "models/";
export const WORKFLOWS_PREFIX = "workflows/";
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Never packed from a dev node: VCS data and caches that differ per machine. */
const DEV_NODE_SKIP = /(^|\/)(\.git|__pycache__|node_modules)(\/|$)|\.pyc$/;

export type ProgressFn = (doneBytes: number, totalBytes: number, path: string) => void;

export interface EnvBundleOptions {
  out: string;
  withDevNodes?: boolean;
  withModels?: boolean;
  onProgress?: ProgressFn;
}

export interface BundleResult {
  file: string;
  /** Size of the written .tar.gz. */
  bytes: number;
  manifest: BundleManifest;
  /** What was asked for but could not be packed (a dev node or model file not on disk), with why. */
  skipped: string[];
}

export interface BundleInfo {
  manifest: BundleManifest;
  stagingDir: string;
  files: ExtractedFile[];
  /** `<staging>/cec` for environment bundles. */
  cecDir: string | null;
}

export type ValidationResult =
  | { valid: true; manifest: BundleManifest; files: number; bytes: number }
  | { valid: false; error: CdError };

export interface ExtractOptions {
  limits?: Partial<ArchiveLimits>;
}

/** The directory a local/dev node lives in: its folder under custom_nodes, else its recorded path. */
export async function devNodeDir(paths: EnvPaths, id: string, spec: NodeSpec): Promise<string | null> {
  const inCustomNodes = joinSafe(paths.customNodes, specEntryName(id, spec), `node '${id}' folder`);
  if (await exists(inCustomNodes)) return inCustomNodes;
  if (spec.source !== "local" && spec.source !== "dev") return null;
  const recorded = isAbsolute(spec.path) ? spec.path : resolve(paths.root, spec.path);
  return await exists(recorded) ? recorded : null;
}

export class BundleManager {
  /** Packs an environment's `.cec` (plus dev nodes / model files when asked) into `opts.out`. */
  async createEnvBundle(paths: EnvPaths, opts: EnvBundleOptions): Promise<BundleResult> {
    // Refuse to export a desired state that would not import: validate it like every command does.
    const desired = await readDesired(paths);
    const sources: ArchiveSource[] = [];
    const skipped: string[] = [];
    for (const rel of await listFiles(paths.cec)) {
      if (rel === ".git" || rel.startsWith(".git/")) continue;
      sources.push(await fileSource(CEC_PREFIX + rel, join(paths.cec, rel)));
    }
    if (opts.withDevNodes) {
      for (const [id, spec] of Object.entries(desired.nodes)) {
        if (spec.source !== "local" && spec.source !== "dev") continue;
        const dir = await devNodeDir(paths, id, spec);
        if (!dir) {
          skipped.push(
            `dev node '${id}': not found at ${join(paths.customNodes, spec.directory ?? id)} or ${spec.path}`,
          );
          continue;
        }
        for (const rel of await listFiles(dir)) {
          if (DEV_NODE_SKIP.test(rel)) continue;
          sources.push(await fileSource(`${DEV_NODES_PREFIX}${id}/${rel}`, join(dir, rel)));
        }
      }
    }
    if (opts.withModels) {
      for (const [key, m] of Object.entries(desired.models)) {
        const file = joinSafe(paths.models, `${m.category}/${m.filename}`, `model '${key}'`);
        const st = await Deno.stat(file).catch(() => null);
        if (!st?.isFile) {
          skipped.push(`model '${key}': ${file} is not on disk (it stays referenced by hash and sources)`);
          continue;
        }
        if (m.size !== undefined && st.size !== m.size) {
          skipped.push(`model '${key}': ${file} is ${st.size} bytes, pyproject says ${m.size}; not packed`);
          continue;
        }
        sources.push({ path: `${MODELS_PREFIX}${m.category}/${m.filename}`, file, size: st.size });
      }
    }
    const manifest = newManifest({
      source_environment: paths.name,
      kind: "environment",
      files: await describe(sources),
    });
    const bytes = await writeBundle(opts.out, manifest, sources, {
      // Model weights barely deflate; measured on 200 MB: level 0 packs at ~690 MB/s, level 1 at ~70 MB/s.
      level: opts.withModels ? 0 : 6,
      onProgress: opts.onProgress,
    });
    return { file: opts.out, bytes, manifest, skipped };
  }

  /** Packs one workflow file with what it needs (node and model specs, as pyproject records them). */
  async createWorkflowBundle(
    workflowPath: string,
    deps: { name?: string; nodes?: WorkflowDeps["nodes"]; models?: WorkflowDeps["models"] },
    opts: { out: string; sourceEnvironment: string },
  ): Promise<BundleResult> {
    const st = await Deno.stat(workflowPath).catch(() => null);
    if (!st?.isFile) {
      throw new CdError("WORKFLOW_NOT_FOUND", `workflow file ${workflowPath} does not exist`, {
        hint: "'comfydock workflow status' lists the workflows",
      });
    }
    const file = WORKFLOWS_PREFIX + basename(workflowPath);
    const sources: ArchiveSource[] = [{ path: file, file: workflowPath, size: st.size }];
    const manifest = newManifest({
      source_environment: opts.sourceEnvironment,
      kind: "workflow",
      files: await describe(sources),
      workflow: {
        name: deps.name ?? basename(workflowPath).replace(/\.json$/i, ""),
        file,
        nodes: deps.nodes ?? {},
        models: deps.models ?? {},
      },
    });
    const bytes = await writeBundle(opts.out, manifest, sources, {});
    return { file: opts.out, bytes, manifest, skipped: [] };
  }

  /**
   * Extracts and fully validates a bundle into `stagingDir` (created here). The manifest must come first;
   * every later entry must be listed with the same size (checked before its bytes are written) and hash
   * (checked after), nothing may be missing, and an environment bundle's pyproject.toml must parse. On any
   * failure the staging dir is gone and the error names the entry and the rule.
   */
  async extractBundle(file: string, stagingDir: string, opts: ExtractOptions = {}): Promise<BundleInfo> {
    let manifest: BundleManifest | null = null;
    let listed = new Map<string, ManifestFile>();
    const reject = (entry: string, rule: string, code = "BUNDLE_REJECTED") =>
      new CdError(code, `${file}: entry '${entry}': ${rule}`, {
        hint: "the bundle is damaged or was changed after export: do not import it; export it again",
      });
    const beforeFile = (e: EntryHeader) => {
      if (e.index === 0) {
        if (e.path !== MANIFEST_NAME) {
          throw new CdError(
            "BUNDLE_NO_MANIFEST",
            `${file}: the first entry is '${e.path}', not ${MANIFEST_NAME}`,
            {
              hint: "this is not a ComfyDock bundle (or it was repacked): make one with 'comfydock export'",
            },
          );
        }
        if (e.size > MAX_MANIFEST_BYTES) {
          throw reject(e.path, `is ${e.size} bytes, over ${MAX_MANIFEST_BYTES}`);
        }
        return;
      }
      const want = listed.get(e.path);
      if (!want) throw reject(e.path, "is not listed in the manifest (extra file)");
      if (want.size !== e.size) throw reject(e.path, `is ${e.size} bytes, the manifest says ${want.size}`);
    };
    const seen = new Set<string>();
    const afterFile = async (e: ExtractedFile) => {
      if (e.index === 0) {
        manifest = parseManifest(await Deno.readTextFile(e.absPath), file);
        listed = new Map(manifest.files.map((f) => [f.path, f]));
        return;
      }
      const want = listed.get(e.path)!;
      if (want.sha256 !== e.sha256) {
        throw reject(e.path, `sha256 is ${e.sha256}, the manifest says ${want.sha256} (hash mismatch)`);
      }
      seen.add(e.path);
    };
    const atEnd = () => {
      if (!manifest) {
        throw new CdError("BUNDLE_NO_MANIFEST", `${file}: the archive is empty (no ${MANIFEST_NAME})`, {
          hint: "this is not a ComfyDock bundle: make one with 'comfydock export'",
        });
      }
      const missing = manifest.files.filter((f) => !seen.has(f.path)).map((f) => f.path);
      if (missing.length) {
        throw reject(
          missing[0],
          `is listed in the manifest but missing from the archive` +
            (missing.length > 1 ? ` (and ${missing.length - 1} more)` : ""),
        );
      }
    };
    const files = await extractTarGz(file, stagingDir, {
      limits: { largeFilePrefix: MODELS_PREFIX, ...opts.limits },
      beforeFile,
      afterFile,
      atEnd,
    });
    try {
      const m = manifest as BundleManifest | null;
      if (!m) throw new CdError("BUNDLE_NO_MANIFEST", `${file}: no manifest`);
      let cecDir: string | null = null;
      if (m.kind === "environment") {
        cecDir = join(stagingDir, "cec");
        const pyproject = await readTextIfExists(join(cecDir, "pyproject.toml"));
        if (pyproject === null) {
          throw reject(`${CEC_PREFIX}pyproject.toml`, "is missing: an environment bundle needs it");
        }
        parsePyproject(pyproject, `${file}:${CEC_PREFIX}pyproject.toml`);
      } else if (!m.workflow || !listed.has(m.workflow.file)) {
        throw reject(MANIFEST_NAME, "a workflow bundle must name its workflow file in 'workflow.file'");
      }
      return { manifest: m, stagingDir, files: files.slice(1), cecDir };
    } catch (e) {
      await removeIfExists(stagingDir);
      throw e;
    }
  }

  /** Checks a bundle completely (it is unpacked to a temp dir that is always removed). */
  async validateBundle(file: string, opts: ExtractOptions = {}): Promise<ValidationResult> {
    const tmp = await Deno.makeTempDir({ prefix: "comfydock-validate-" });
    try {
      const info = await this.extractBundle(file, join(tmp, "bundle"), opts);
      return {
        valid: true,
        manifest: info.manifest,
        files: info.files.length,
        bytes: info.files.reduce((n, f) => n + f.size, 0),
      };
    } catch (e) {
      if (e instanceof CdError) return { valid: false, error: e };
      throw e;
    } finally {
      await removeIfExists(tmp);
    }
  }
}

async function writeBundle(
  out: string,
  manifest: BundleManifest,
  sources: ArchiveSource[],
  opts: { level?: number; onProgress?: ProgressFn },
): Promise<number> {
  const manifestBytes = new TextEncoder().encode(JSON.stringify(manifest, null, 2) + "\n");
  return await writeTarGz(out, [{ path: MANIFEST_NAME, data: manifestBytes }, ...sources], opts);
}

/** A file to pack, with its size and whether it is executable (a dev node's scripts must stay runnable). */
async function fileSource(path: string, file: string): Promise<ArchiveSource> {
  const st = await Deno.stat(file);
  return { path, file, size: st.size, executable: ((st.mode ?? 0) & 0o111) !== 0 };
}

async function describe(sources: ArchiveSource[]): Promise<ManifestFile[]> {
  const out: ManifestFile[] = [];
  for (const s of sources) {
    if ("data" in s) out.push({ path: s.path, size: s.data.length, sha256: sha256Hex(s.data) });
    else out.push({ path: s.path, size: s.size, sha256: (await hashFileFull(s.file, ["sha256"])).sha256! });
  }
  return out;
}
