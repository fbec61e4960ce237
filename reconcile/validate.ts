/** `validate`: checks `.cec` on its own, without touching the environment (what CI runs on a pull request). */
import { join } from "node:path";
import { isCdError } from "../lib/errors.ts";
import { exists } from "../lib/fsx.ts";
import type { EnvPaths } from "../workspace/paths.ts";
import { readDesired } from "./desired.ts";
import { USER_GROUP } from "../providers/packages/diff.ts";

export async function validateCec(paths: EnvPaths): Promise<string[]> {
  let desired;
  try {
    desired = await readDesired(paths);
  } catch (e) {
    if (isCdError(e)) return [e.message + (e.hint ? ` (${e.hint})` : "")];
    throw e;
  }
  const findings: string[] = [];
  for (const [name, wf] of Object.entries(desired.workflows)) {
    if (!await exists(join(paths.cec, wf.file))) {
      findings.push(
        `${paths.pyproject}: tool.comfydock.workflows.tracked.${name}.file: '${wf.file}' does not exist in .cec`,
      );
    }
  }
  const groups = desired.pyproject["dependency-groups"];
  for (const id of Object.keys(groups)) {
    // `user` is the group for packages the user adds by hand (providers/packages/README.md).
    if (id !== USER_GROUP && !(id in desired.nodes)) {
      findings.push(
        `${paths.pyproject}: dependency-groups.${id}: no node '${id}' in tool.comfydock.nodes (left over from a removed node?)`,
      );
    }
  }
  if (
    desired.lockText === null &&
    (desired.pyproject.project.dependencies.length > 0 || Object.keys(groups).length > 0)
  ) {
    findings.push(
      `${paths.uvLock} is missing: Python packages are not locked (run 'comfydock apply' to lock them)`,
    );
  }
  return findings;
}
