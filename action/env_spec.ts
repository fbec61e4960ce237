/**
 * What an `environment` input names. A path to a `.cec` directory (a directory holding pyproject.toml) is an
 * environment whose root is that directory's parent: this is how a checked-out GitOps repository is used in
 * place. Anything else is the name of an environment in the ComfyDock workspace (COMFYDOCK_HOME).
 */
import { join, resolve } from "node:path";
import { CdError } from "../lib/errors.ts";
import { exists } from "../lib/fsx.ts";
import { type EnvPaths, envPaths, envPathsFromCec, type WorkspacePaths } from "../reconcile/paths.ts";

export interface EnvSpec {
  /** The input as the user wrote it (shown in summaries). */
  input: string;
  paths: EnvPaths;
}

function looksLikePath(s: string): boolean {
  return s.includes("/") || s.includes("\\") || s.startsWith(".") || s.endsWith(".cec");
}

export async function resolveEnvSpec(
  input: string,
  workingDirectory: string,
  ws: WorkspacePaths,
): Promise<EnvSpec> {
  const asPath = resolve(workingDirectory, input);
  if (await exists(join(asPath, "pyproject.toml"))) return { input, paths: envPathsFromCec(asPath, ws) };
  // The environment root was given instead of its .cec: accept it.
  if (await exists(join(asPath, ".cec", "pyproject.toml"))) {
    return { input, paths: envPathsFromCec(join(asPath, ".cec"), ws) };
  }
  if (looksLikePath(input)) {
    throw new CdError("ACTION_ENVIRONMENT", `environment '${input}' (${asPath}) has no pyproject.toml`, {
      hint: "point 'environment' at a .cec directory of the checked-out repository (relative to " +
        "'working-directory'), or give the name of an environment in COMFYDOCK_HOME",
    });
  }
  const paths = envPaths(ws, input);
  if (!await exists(paths.pyproject)) {
    throw new CdError(
      "UNKNOWN_ENVIRONMENT",
      `environment '${input}' is neither a .cec directory in ${workingDirectory} nor an environment in ${ws.environments}`,
      { hint: "give the path of a .cec directory, or set COMFYDOCK_HOME to the workspace that holds it" },
    );
  }
  return { input, paths };
}

/** The environments to act on; with no input, the `.cec` in the working directory. */
export async function resolveEnvironments(
  inputs: string[],
  workingDirectory: string,
  ws: WorkspacePaths,
): Promise<{ specs: EnvSpec[]; errors: { input: string; error: CdError }[] }> {
  if (inputs.length === 0) {
    if (await exists(join(workingDirectory, ".cec", "pyproject.toml"))) inputs = [".cec"];
    else {
      throw new CdError(
        "ACTION_INPUT",
        `input 'environment' is not set and ${workingDirectory} has no .cec`,
        {
          hint: "set 'environment' to a .cec path or an environment name (several: one per line)",
        },
      );
    }
  }
  const specs: EnvSpec[] = [];
  const errors: { input: string; error: CdError }[] = [];
  for (const input of inputs) {
    try {
      specs.push(await resolveEnvSpec(input, workingDirectory, ws));
    } catch (e) {
      if (!(e instanceof CdError)) throw e;
      errors.push({ input, error: e });
    }
  }
  return { specs, errors };
}
