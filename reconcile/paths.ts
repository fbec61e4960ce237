/** Where everything lives (seed layout, DESIGN §8). Pure: no I/O. */
import { join, resolve } from "node:path";
import { homedir } from "node:os";

export interface WorkspacePaths {
  root: string;
  metadata: string;
  workspaceJson: string;
  modelIndexDb: string;
  nodeIndexDb: string;
  apiCacheDb: string;
  keysFile: string;
  cache: string;
  nodeStore: string;
  gitMirrors: string;
  modelStore: string;
  environments: string;
  logs: string;
  uvCache: string;
}

export interface EnvPaths {
  name: string;
  workspace: WorkspacePaths;
  root: string;
  cec: string;
  pyproject: string;
  uvLock: string;
  cecWorkflows: string;
  ignoreFile: string;
  venv: string;
  comfyui: string;
  customNodes: string;
  models: string;
  userWorkflows: string;
  /** Engine state of this environment: lock, journal, trash, staging (not in .cec, not in ComfyUI). */
  state: string;
}

export function workspaceRoot(env: Record<string, string | undefined>): string {
  return resolve(env.COMFYDOCK_HOME || join(homedir(), ".comfydock_workspace"));
}

export function workspacePaths(root: string): WorkspacePaths {
  const metadata = join(root, ".metadata");
  const cache = join(root, "comfydock_cache");
  return {
    root,
    metadata,
    workspaceJson: join(metadata, "workspace.json"),
    modelIndexDb: join(metadata, "model_index.db"),
    nodeIndexDb: join(metadata, "node_index.db"),
    apiCacheDb: join(metadata, "api_cache.db"),
    keysFile: join(metadata, "keys.json"),
    cache,
    nodeStore: join(cache, "custom_nodes", "store"),
    gitMirrors: join(cache, "git"),
    modelStore: join(cache, "models"),
    environments: join(root, "environments"),
    logs: join(root, "logs"),
    uvCache: join(root, "uv_cache"),
  };
}

export function envPaths(ws: WorkspacePaths, name: string): EnvPaths {
  const root = join(ws.environments, name);
  const cec = join(root, ".cec");
  const comfyui = join(root, "ComfyUI");
  return {
    name,
    workspace: ws,
    root,
    cec,
    pyproject: join(cec, "pyproject.toml"),
    uvLock: join(cec, "uv.lock"),
    cecWorkflows: join(cec, "workflows"),
    ignoreFile: join(cec, ".comfydockignore"),
    venv: join(root, ".venv"),
    comfyui,
    customNodes: join(comfyui, "custom_nodes"),
    models: join(comfyui, "models"),
    userWorkflows: join(comfyui, "user", "default", "workflows"),
    state: join(root, ".comfydock"),
  };
}

/**
 * The environment `paths` with its desired state read from the directory `cecDir` instead of its own `.cec`
 * (a pull request's checkout, planned against the environment without touching it): only the `.cec` files
 * move, everything observed stays the environment's.
 */
export function withDesiredCec(paths: EnvPaths, cecDir: string): EnvPaths {
  const cec = resolve(cecDir);
  return {
    ...paths,
    cec,
    pyproject: join(cec, "pyproject.toml"),
    uvLock: join(cec, "uv.lock"),
    cecWorkflows: join(cec, "workflows"),
    ignoreFile: join(cec, ".comfydockignore"),
  };
}
