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
export { applyPlan, type ApplyResult, diffAll, makePlan } from "./reconcile/engine.ts";
export {
  type App,
  type ChangeResult,
  type ChangeSpec,
  quietApp,
  Session,
  withSession,
} from "./workspace/session.ts";
export { type Settings, settingsFromEnv } from "./lib/settings.ts";
export { captureEnvironment } from "./workspace/capture.ts";
export { renderPlan, summaryLine } from "./views/plan_text.ts";
export { readPlanFile } from "./reconcile/plan_file.ts";
export { rollbackCec } from "./workspace/rollback.ts";
export { validateCec } from "./workspace/validate.ts";
export { loadProviders } from "./workspace/providers.ts";

// Workspaces and environments.
export {
  type EnvPaths,
  envPaths,
  type WorkspacePaths,
  workspacePaths,
  workspaceRoot,
} from "./reconcile/paths.ts";
export {
  deleteEnvironment,
  getActiveEnvironment,
  getEnvironment,
  initWorkspace,
  listEnvironments,
  setActiveEnvironment,
} from "./workspace/workspace.ts";
export { WorkspaceManager } from "./workspace/manager.ts";
export { createEnvironment } from "./workspace/create.ts";
export { Environment, runComfyUI, updateComfyUI } from "./workspace/environment.ts";
export { ConfigManager, loadSettings } from "./workspace/config.ts";

// Resources.
export { RegistryClient as NodeRegistry } from "./providers/nodes/registry.ts";
export { ModelIndex } from "./providers/models/index_db.ts";
export { resolveModelReference } from "./providers/models/resolve.ts";
export { analyzeWorkflow, parseWorkflowText } from "./providers/workflows/analyze.ts";
export { NodePackResolver } from "./providers/workflows/node_map.ts";
export { trackWorkflows, untrackWorkflow } from "./providers/workflows/track.ts";
export { syncWorkflows, track, untrack } from "./workspace/workflow_sync.ts";
export { workflowStatus } from "./providers/workflows/status.ts";
export { BundleManager } from "./providers/bundles/bundle.ts";
export { importEnvironment } from "./workspace/import.ts";
