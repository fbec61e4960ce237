/**
 * ComfyDock's library API (names from the seed design, camelCased). The CLI in cmd/ is a thin layer over
 * these modules.
 */
export { CdError } from "./lib/errors.ts";
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
export {
  type EnvPaths,
  envPaths,
  type WorkspacePaths,
  workspacePaths,
  workspaceRoot,
} from "./workspace/paths.ts";
