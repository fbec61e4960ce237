/**
 * Environment operations of the seed that are not plan/apply: `run` (ComfyUI's main.py on the venv's
 * Python) and `update_comfyui` (a desired-state change: new pin + refreshed requirements, then apply).
 */
import { join } from "node:path";
import { CdError } from "../lib/errors.ts";
import { exists } from "../lib/fsx.ts";
import { type DesiredState, readDesired } from "../reconcile/desired.ts";
import type { Plan } from "../reconcile/types.ts";
import type { EngineOptions, PlanOptions } from "../reconcile/engine.ts";
import { comfyuiUrl } from "../providers/comfyui/mirror.ts";
import { mergeRequirements, parseRequirements } from "../providers/comfyui/requirements.ts";
import { requirementsAt, resolveComfyUI } from "../providers/comfyui/resolve.ts";
import * as git from "../providers/git/git.ts";
import { venvPython } from "../providers/packages/distinfo.ts";
import type { EnvPaths, WorkspacePaths } from "./paths.ts";
import { logEnvEvent, withApplyLog } from "./env_log.ts";

/**
 * Runs `python main.py ARGS` in ComfyUI/ with the environment's venv, stdio inherited; returns the exit
 * code. Ctrl-C reaches ComfyUI (same terminal process group); this process waits for it to exit instead
 * of dying first, so the exit code still passes back.
 */
export async function runComfyUI(paths: EnvPaths, args: string[]): Promise<number> {
  const python = venvPython(paths.venv);
  const main = join(paths.comfyui, "main.py");
  if (!await exists(python) || !await exists(main)) {
    throw new CdError(
      "ENV_NOT_APPLIED",
      `environment '${paths.name}' has no ${await exists(main) ? ".venv" : "ComfyUI/main.py"}`,
      {
        hint: `run 'comfydock -e ${paths.name} apply' to build it from .cec`,
      },
    );
  }
  const ignore = () => {};
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, ignore);
  try {
    const child = new Deno.Command(python, {
      args: [main, ...args],
      cwd: paths.comfyui,
      env: { VIRTUAL_ENV: paths.venv },
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    const status = await child.status;
    return status.signal ? 128 + signalNumber(status.signal) : status.code;
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, ignore);
  }
}

function signalNumber(s: Deno.Signal): number {
  return ({ SIGINT: 2, SIGTERM: 15, SIGKILL: 9, SIGHUP: 1 } as Record<string, number>)[s] ?? 1;
}

export interface UpdateComfyUIResult {
  from: { version: string; commit: string };
  to: { version: string; commit: string };
  dependencies: { added: string[]; removed: string[] };
  commit: string | null;
  plan: Plan | null;
  applied: boolean;
}

/**
 * `comfyui update [TAG|COMMIT|latest]`: pins the new commit, replaces the old ComfyUI requirements in
 * `[project].dependencies` by the new ones (the user's own additions stay), checks that the result still
 * resolves (uv lock on a copy), commits `.cec`, then plans and applies (asking `confirm` with the plan).
 */
export async function updateComfyUI(
  paths: EnvPaths,
  spec = "latest",
  opts: { confirm?: (plan: Plan) => Promise<boolean>; apply?: boolean; engine?: EngineOptions } = {},
): Promise<UpdateComfyUIResult> {
  const desired = await readDesired(paths);
  const url = comfyuiUrl(desired.comfyui.url);
  const target = await resolveComfyUI(paths.workspace, url, spec);
  const oldReqs = await git.hasCommit(target.mirror.dir, desired.comfyui.commit)
    ? parseRequirements(await requirementsAt(target.mirror, desired.comfyui.commit))
    : [];
  const newReqs = parseRequirements(await requirementsAt(target.mirror, target.commit));
  const current = desired.pyproject.project.dependencies;
  const dependencies = mergeRequirements(current, oldReqs, newReqs);
  const [{ changeDesired }, { applyPlan, makePlan }] = await Promise.all([
    import("../reconcile/change.ts"),
    import("../reconcile/engine.ts"),
  ]);
  const title = `comfyui update: ${desired.comfyui.version} -> ${target.version} (${target.commit})`;
  const changed = await changeDesired(paths, {
    edits: [
      { path: ["project", "dependencies"], value: dependencies },
      { path: ["tool", "comfydock", "comfyui_version"], value: target.version },
      { path: ["tool", "comfydock", "comfyui_commit"], value: target.commit },
      { path: ["tool", "comfydock", "comfyui_url"], value: url },
    ],
    message: `ComfyUI ${desired.comfyui.version} -> ${target.version}`,
    apply: false,
  }, opts.engine);
  // Planned and applied here rather than by changeDesired, so the apply is recorded in logs/<name>.log.
  const result = { commit: changed.commit, plan: null as Plan | null, applied: false };
  if (opts.apply ?? true) {
    const { plan } = await makePlan(paths, opts.engine);
    result.plan = plan;
    if (plan.actions.length > 0 && (!opts.confirm || await opts.confirm(plan))) {
      await withApplyLog(paths, plan, () => applyPlan(paths, plan, opts.engine), title);
      result.applied = true;
    }
  }
  if (!result.applied && result.commit) await logEnvEvent(paths, `${title}: .cec committed, not applied`);
  return {
    from: { version: desired.comfyui.version, commit: desired.comfyui.commit },
    to: { version: target.version, commit: target.commit },
    dependencies: {
      added: dependencies.filter((d) => !current.includes(d)),
      removed: current.filter((d) => !dependencies.includes(d)),
    },
    commit: result.commit,
    plan: result.plan,
    applied: result.applied,
  };
}

/**
 * The seed's Environment: one environment's operations as an object (the CLI uses the functions and the
 * engine directly; this is the library face of the same code).
 */
export class Environment {
  constructor(readonly paths: EnvPaths) {}

  /** An existing environment of the workspace (UNKNOWN_ENVIRONMENT otherwise). */
  static async open(ws: WorkspacePaths, name: string): Promise<Environment> {
    const { requireEnvironment } = await import("./workspace.ts");
    return new Environment(await requireEnvironment(ws, name));
  }

  get name(): string {
    return this.paths.name;
  }

  desired(): Promise<DesiredState> {
    return readDesired(this.paths);
  }

  async plan(opts: PlanOptions = {}): Promise<Plan> {
    const { makePlan } = await import("../reconcile/engine.ts");
    return (await makePlan(this.paths, opts)).plan;
  }

  /** The seed's sync(): plan, then apply that plan when it has actions. */
  async sync(opts: EngineOptions & { dryRun?: boolean } = {}): Promise<{ plan: Plan; applied: boolean }> {
    const { applyPlan, makePlan } = await import("../reconcile/engine.ts");
    const { plan } = await makePlan(this.paths, opts);
    if (opts.dryRun || plan.actions.length === 0) return { plan, applied: false };
    await applyPlan(this.paths, plan, opts);
    return { plan, applied: true };
  }

  /** Commits `.cec` as it is; null when there was nothing to commit. */
  commit(message: string): Promise<string | null> {
    return git.commit(this.paths.cec, message);
  }

  log(maxCount?: number): Promise<git.LogEntry[]> {
    return git.log(this.paths.cec, { maxCount });
  }

  run(args: string[] = []): Promise<number> {
    return runComfyUI(this.paths, args);
  }

  updateComfyUI(
    version = "latest",
    opts: Parameters<typeof updateComfyUI>[2] = {},
  ): Promise<UpdateComfyUIResult> {
    return updateComfyUI(this.paths, version, opts);
  }
}
