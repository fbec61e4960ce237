/**
 * ComfyDock's library API. Names follow the seed design (camelCased): WorkspaceManager, Environment,
 * NodeRegistry (the registry client), ModelIndex, the workflow functions of WorkflowManager, ConfigManager,
 * BundleManager, and the reconciler's plan/apply. The CLI in cmd/ is a thin layer over these modules.
 */
export { CdError } from "./lib/errors.ts";

// The reconciler: desired state, plan, apply, recovery, rendering.
export type {
  Action,
  ActionKind,
  Plan,
  Provider,
  ResourceType,
  Transaction,
  UndoStep,
} from "./reconcile/types.ts";
export { type DesiredState, parsePyproject, readDesired } from "./reconcile/desired.ts";
export { editPyprojectText, type TomlEdit } from "./reconcile/pyproject_edit.ts";
export { applyPlan, type ApplyResult, diffAll, makePlan, recover } from "./reconcile/engine.ts";
export { changeDesired, type DesiredChange } from "./reconcile/change.ts";
export { captureEnvironment } from "./reconcile/capture.ts";
export { renderPlan, summaryLine } from "./reconcile/render.ts";
export { readPlanFile } from "./reconcile/plan_file.ts";
export { rollbackCec } from "./reconcile/rollback.ts";
export { validateCec } from "./reconcile/validate.ts";
export { loadProviders } from "./reconcile/providers.ts";

// Workspaces and environments.
export {
  type EnvPaths,
  envPaths,
  type WorkspacePaths,
  workspacePaths,
  workspaceRoot,
} from "./workspace/paths.ts";
export {
  deleteEnvironment,
  getActiveEnvironment,
  getEnvironment,
  initWorkspace,
  listEnvironments,
  setActiveEnvironment,
  WorkspaceManager,
} from "./workspace/workspace.ts";
export { createEnvironment } from "./workspace/create.ts";
export { Environment, runComfyUI, updateComfyUI } from "./workspace/environment.ts";
export { ConfigManager, getApiKey } from "./workspace/config.ts";

// Resources.
export { RegistryClient as NodeRegistry } from "./providers/nodes/registry.ts";
export { ModelIndex } from "./providers/models/index_db.ts";
export { resolveModelReference } from "./providers/models/resolve.ts";
export { analyzeWorkflow, parseWorkflowText } from "./providers/workflows/analyze.ts";
export { NodePackResolver } from "./providers/workflows/node_map.ts";
export { trackWorkflows, untrackWorkflow } from "./providers/workflows/track.ts";
export { syncWorkflows } from "./providers/workflows/sync.ts";
export { workflowStatus } from "./providers/workflows/status.ts";
export { BundleManager } from "./providers/bundles/bundle.ts";
export { importEnvironment } from "./providers/bundles/import.ts";
