/** The seed's WorkspaceManager: the functions of workspace.ts and create.ts as one object. */
import type { EnvPaths, WorkspacePaths } from "../reconcile/paths.ts";
import { envPaths } from "../reconcile/paths.ts";
import { type CreatedEnvironment, createEnvironment, type CreateOptions } from "./create.ts";
import type { App } from "./session.ts";
import {
  deleteEnvironment,
  type DeleteOptions,
  type DeleteSummary,
  type EnvironmentInfo,
  getActiveEnvironment,
  getEnvironment,
  type InitResult,
  initWorkspace,
  listEnvironments,
  readWorkspaceMeta,
  setActiveEnvironment,
  validateEnvName,
} from "./workspace.ts";

/** Bound to one workspace through an App. */
export class WorkspaceManager {
  constructor(readonly app: App) {}

  get paths(): WorkspacePaths {
    return this.app.ws;
  }

  /** Creates (or completes) the workspace at `app.ws.root`. */
  static async init(app: App): Promise<{ manager: WorkspaceManager; result: InitResult }> {
    const result = await initWorkspace(app.ws.root);
    return { manager: new WorkspaceManager(app), result };
  }

  /** An existing workspace (NO_WORKSPACE otherwise). */
  static async open(app: App): Promise<WorkspaceManager> {
    await readWorkspaceMeta(app.ws);
    return new WorkspaceManager(app);
  }

  createEnvironment(name: string, opts: CreateOptions = {}): Promise<CreatedEnvironment> {
    return createEnvironment(this.app, name, opts);
  }

  deleteEnvironment(name: string, opts?: DeleteOptions): Promise<DeleteSummary | null> {
    return deleteEnvironment(this.paths, name, opts);
  }

  getEnvironment(name: string): Promise<EnvironmentInfo> {
    return getEnvironment(this.paths, name);
  }

  listEnvironments(): Promise<EnvironmentInfo[]> {
    return listEnvironments(this.paths);
  }

  setActiveEnvironment(name: string): Promise<EnvironmentInfo> {
    return setActiveEnvironment(this.paths, name);
  }

  getActiveEnvironment(): Promise<EnvironmentInfo | null> {
    return getActiveEnvironment(this.paths);
  }

  envPaths(name: string): EnvPaths {
    return envPaths(this.paths, validateEnvName(name));
  }
}
