/**
 * What an `environment` input names. A path to a `.cec` directory of the checkout (a directory holding
 * pyproject.toml, or one holding `.cec/pyproject.toml`) is the DESIRED STATE of an environment that lives in
 * the ComfyDock workspace on the runner, outside the checkout (actions/checkout cleans its folder before every
 * job): the environment is named after the folder holding the `.cec` (`envs/prod/.cec` -> `prod`) or the
 * `name` input. Anything else is the name of an environment in the workspace, planned from its own `.cec`.
 */
import { basename, dirname, join, relative, resolve } from "node:path";
import { CdError } from "../lib/errors.ts";
import { exists } from "../lib/fsx.ts";
import { isWithin } from "../lib/safe_path.ts";
import { type EnvPaths, envPaths, type WorkspacePaths } from "../reconcile/paths.ts";
import type { CheckoutCec } from "../workspace/gitops.ts";
import { validateEnvName } from "../workspace/workspace.ts";

export interface EnvSpec {
  /** The input as the user wrote it (shown in summaries). */
  input: string;
  /** The environment on this machine, in the workspace. */
  paths: EnvPaths;
  /** Its desired state from the checkout; null: the environment's own `.cec` (an environment named in the input). */
  checkout: CheckoutCec | null;
}

export interface SpecContext {
  workingDirectory: string;
  ws: WorkspacePaths;
  /** The checkout (GITHUB_WORKSPACE): `.cec` labels are relative to it, and the workspace must be outside. */
  checkoutRoot?: string;
  /** The `name` input. */
  name?: string;
  /** `owner/repo@sha` of the checked-out commit, recorded in the environment's history by apply. */
  revision?: string | null;
}

function looksLikePath(s: string): boolean {
  return s.includes("/") || s.includes("\\") || s.startsWith(".") || s.endsWith(".cec");
}

/** `envs/prod/.cec` -> `prod`; a `.cec` folder with another name is named itself. */
function nameOf(cecDir: string): string {
  return basename(cecDir) === ".cec" ? basename(dirname(cecDir)) : basename(cecDir);
}

export async function resolveEnvSpec(input: string, ctx: SpecContext): Promise<EnvSpec> {
  const asPath = resolve(ctx.workingDirectory, input);
  let cecDir: string | null = null;
  if (await exists(join(asPath, "pyproject.toml"))) cecDir = asPath;
  // The folder holding the .cec was given instead of the .cec: accept it.
  else if (await exists(join(asPath, ".cec", "pyproject.toml"))) cecDir = join(asPath, ".cec");
  if (cecDir !== null) {
    const name = ctx.name ?? nameOf(cecDir);
    try {
      validateEnvName(name);
    } catch (e) {
      throw new CdError("ACTION_ENVIRONMENT", `${input}: ${(e as CdError).message}`, {
        hint: "set the 'name' input to the name the environment should have on the runner",
      });
    }
    const paths = envPaths(ctx.ws, name);
    // The path of an environment's own .cec in the workspace names that environment.
    if (resolve(cecDir) === paths.cec) return { input, paths, checkout: null };
    const root = ctx.checkoutRoot ?? ctx.workingDirectory;
    if (isWithin(resolve(root), ctx.ws.root)) {
      throw new CdError(
        "ACTION_WORKSPACE_IN_CHECKOUT",
        `the ComfyDock workspace ${ctx.ws.root} is inside the checkout ${root}`,
        {
          hint:
            "actions/checkout deletes everything in its folder before each job: set the 'workspace' input " +
            "(or COMFYDOCK_HOME) to a folder outside it, e.g. ~/comfydock on a self-hosted runner",
        },
      );
    }
    const label = isWithin(resolve(root), cecDir) ? relative(root, cecDir).split("\\").join("/") : cecDir;
    return { input, paths, checkout: { dir: resolve(cecDir), label, revision: ctx.revision ?? null } };
  }
  if (looksLikePath(input)) {
    throw new CdError("ACTION_ENVIRONMENT", `environment '${input}' (${asPath}) has no pyproject.toml`, {
      hint: "point 'environment' at a .cec directory of the checked-out repository (relative to " +
        "'working-directory'), or give the name of an environment in the ComfyDock workspace",
    });
  }
  const paths = envPaths(ctx.ws, input);
  if (!await exists(paths.pyproject)) {
    throw new CdError(
      "UNKNOWN_ENVIRONMENT",
      `environment '${input}' is neither a .cec directory in ${ctx.workingDirectory} nor an environment in ${ctx.ws.environments}`,
      {
        hint:
          "give the path of a .cec directory, or set 'workspace' (COMFYDOCK_HOME) to the workspace that holds it",
      },
    );
  }
  return { input, paths, checkout: null };
}

/** The environments to act on; with no input, the `.cec` in the working directory. */
export async function resolveEnvironments(
  inputs: string[],
  ctx: SpecContext,
): Promise<{ specs: EnvSpec[]; errors: { input: string; error: CdError }[] }> {
  if (inputs.length === 0) {
    if (await exists(join(ctx.workingDirectory, ".cec", "pyproject.toml"))) inputs = [".cec"];
    else {
      throw new CdError(
        "ACTION_INPUT",
        `input 'environment' is not set and ${ctx.workingDirectory} has no .cec`,
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
      const spec = await resolveEnvSpec(input, ctx);
      const twin = specs.find((s) => s.paths.name === spec.paths.name);
      if (twin) {
        throw new CdError(
          "ACTION_ENVIRONMENT",
          `'${input}' and '${twin.input}' would both be environment '${spec.paths.name}' on this machine`,
          { hint: "rename one of the folders holding them, or run them in separate steps with 'name'" },
        );
      }
      specs.push(spec);
    } catch (e) {
      if (!(e instanceof CdError)) throw e;
      errors.push({ input, error: e });
    }
  }
  return { specs, errors };
}
