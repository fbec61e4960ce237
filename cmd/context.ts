/** What every command needs: the global flags and the workspace/environment they point at. */
import type { Command } from "@commander-js/extra-typings";
import { CdError } from "../lib/errors.ts";
import {
  type EnvPaths,
  envPaths,
  type WorkspacePaths,
  workspacePaths,
  workspaceRoot,
} from "../workspace/paths.ts";
import { readJsonIfExists } from "../lib/fsx.ts";
import { paint, ui } from "../lib/ui.ts";
import type { Plan } from "../reconcile/types.ts";

export interface GlobalFlags {
  env?: string;
  json?: boolean;
  yes?: boolean;
  debug?: boolean;
  color?: boolean;
}

// deno-lint-ignore no-explicit-any -- commander's typed Command carries per-command generics we don't need here
export function globals(cmd: Command<any, any, any>): GlobalFlags {
  return cmd.optsWithGlobals() as GlobalFlags;
}

export function workspace(): WorkspacePaths {
  return workspacePaths(workspaceRoot());
}

export async function requireWorkspace(): Promise<WorkspacePaths> {
  const ws = workspace();
  const meta = await readJsonIfExists(ws.workspaceJson);
  if (meta === null) {
    throw new CdError("NO_WORKSPACE", `no ComfyDock workspace at ${ws.root}`, {
      hint: "run 'comfydock init' (or set COMFYDOCK_HOME to an existing workspace)",
    });
  }
  return ws;
}

/** The environment named by -e/--env, else the active one. */
export async function resolveEnv(name?: string): Promise<EnvPaths> {
  const ws = await requireWorkspace();
  const meta = await readJsonIfExists<{ active_environment?: string | null }>(ws.workspaceJson);
  const chosen = name ?? meta?.active_environment ?? undefined;
  if (!chosen) {
    throw new CdError("NO_ENVIRONMENT", "no environment selected", {
      hint: "pass -e NAME, or choose one with 'comfydock use NAME' ('comfydock list' shows them)",
    });
  }
  const paths = envPaths(ws, chosen);
  try {
    await Deno.stat(paths.cec);
  } catch {
    throw new CdError("UNKNOWN_ENVIRONMENT", `no environment '${chosen}' in ${ws.environments}`, {
      hint: "'comfydock list' shows the environments; 'comfydock create NAME' makes one",
    });
  }
  return paths;
}

/** A yes/no question; refused (as an error) when nobody can answer it. */
export async function confirm(question: string): Promise<boolean> {
  if (ui.yes) return true;
  if (!Deno.stdin.isTerminal()) {
    throw new CdError("NEEDS_CONFIRMATION", `${question} (no terminal to ask on)`, {
      hint: "pass --yes to proceed without asking",
    });
  }
  const { confirm: ask, isCancel } = await import("@clack/prompts");
  const answer = await ask({ message: question });
  return !isCancel(answer) && answer === true;
}

/** Shows the plan a change leads to and asks before applying it (the `confirm` of changeDesired and friends). */
export async function showPlanAndConfirm(plan: Plan): Promise<boolean> {
  const { renderPlan } = await import("../reconcile/render.ts");
  if (!ui.json) console.log(renderPlan(plan, paint));
  return await confirm(`Apply these ${plan.actions.length} action(s) to '${plan.environment}'?`);
}
