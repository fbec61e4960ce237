/**
 * Environment operations of the seed that are not plan/apply: `run` (ComfyUI's main.py on the venv's
 * Python) and `update_comfyui` (a desired-state change: new pin + refreshed requirements, then apply).
 */
import { join } from "node:path";
import { CdError } from "../lib/errors.ts";
import { exists } from "../lib/fsx.ts";
import { type DesiredState, readDesired } from "../reconcile/desired.ts";
import type { Plan } from "../reconcile/types.ts";
import { comfyuiUrl } from "../providers/comfyui/mirror.ts";
import { mergeRequirements } from "../providers/comfyui/requirements.ts";
import { commitDate, requirementsAt, resolveComfyUI } from "../providers/comfyui/resolve.ts";
import { parseAsOf } from "../providers/packages/as_of.ts";
import * as git from "../providers/git/git.ts";
import { venvPython } from "../providers/packages/distinfo.ts";
import type { EnvPaths } from "../reconcile/paths.ts";
import { type App, type ChangeResult, type Session, withSession } from "./session.ts";

/**
 * Runs `python main.py ARGS` in ComfyUI/ with the environment's venv, stdio inherited (stdout sent to
 * stderr with `stdoutToStderr`); returns the exit
 * code. `run` behaves as the process it wraps: SIGINT, SIGTERM and SIGHUP are forwarded to ComfyUI (so
 * `kill`, `docker stop` and supervisors stop it), and this process waits for it to exit and passes its
 * exit code back (128+N when a signal ended it).
 */
export async function runComfyUI(
  paths: EnvPaths,
  args: string[],
  opts: { stdoutToStderr?: boolean } = {},
): Promise<number> {
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
  const child = new Deno.Command(python, {
    args: [main, ...args],
    cwd: paths.comfyui,
    env: { VIRTUAL_ENV: paths.venv },
    stdin: "inherit",
    stdout: opts.stdoutToStderr ? "piped" : "inherit",
    stderr: "inherit",
  }).spawn();
  // --json: stdout holds only the result document, so ComfyUI's own output goes to stderr.
  const forwarded = opts.stdoutToStderr
    ? child.stdout.pipeTo(Deno.stderr.writable, { preventClose: true })
    : Promise.resolve();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM", "SIGHUP"];
  const forwarders = signals.map((s) => {
    const f = () => {
      try {
        child.kill(s);
      } catch {
        // already gone
      }
    };
    Deno.addSignalListener(s, f);
    return [s, f] as const;
  });
  try {
    const [status] = await Promise.all([child.status, forwarded]);
    return status.signal ? 128 + signalNumber(status.signal) : status.code;
  } finally {
    for (const [s, f] of forwarders) Deno.removeSignalListener(s, f);
  }
}

function signalNumber(s: Deno.Signal): number {
  return ({ SIGINT: 2, SIGTERM: 15, SIGKILL: 9, SIGHUP: 1 } as Record<string, number>)[s] ?? 1;
}

export interface UpdateComfyUIResult extends ChangeResult {
  from: { version: string; commit: string };
  to: { version: string; commit: string };
  dependencies: { added: string[]; removed: string[] };
  /** `[tool.uv] exclude-newer` moved to the new commit's date (only when the environment resolves as of one). */
  excludeNewer: { from: string; to: string } | null;
}

/**
 * `comfyui update [TAG|COMMIT|latest]`: pins the new commit, replaces the old ComfyUI requirements in
 * `[project].dependencies` by the new ones (the user's own additions stay), and carries it out as one change
 * (re-locked, planned, confirmed, applied, committed; or nothing at all). A ComfyUI update may move torch
 * on purpose (the new versions are pinned with the lock). An environment that resolves as of a date
 * (`create --resolve-as-of`) moves that date to the new commit's, so the new ComfyUI gets the packages of
 * its own release week.
 */
export async function updateComfyUI(
  session: Session,
  spec = "latest",
  opts: { apply?: boolean } = {},
): Promise<UpdateComfyUIResult> {
  const paths = session.paths;
  const before = await readDesired(paths);
  const url = comfyuiUrl(before.comfyui.url, session.app.settings);
  const target = await resolveComfyUI(paths.workspace, url, spec);
  const newReqs = await requirementsAt(target.mirror, target.commit);
  let current: string[] = [];
  let dependencies: string[] = [];
  let excludeNewer: UpdateComfyUIResult["excludeNewer"] = null;
  const result = await session.change({
    message: `ComfyUI ${before.comfyui.version} -> ${target.version}`,
    apply: opts.apply ?? true,
    allowTorchChange: true,
    edit: async (desired) => {
      // A date moves with ComfyUI; a relative window ("7 days") is the user's own policy and stays.
      const asOf = desired.pyproject.tool.uv?.["exclude-newer"];
      if (typeof asOf === "string" && /^\d{4}-\d{2}-\d{2}/.test(asOf)) {
        const to = parseAsOf(await commitDate(target.mirror, target.commit));
        excludeNewer = asOf === to ? null : { from: asOf, to };
      }
      const oldReqs = await git.hasCommit(target.mirror.dir, desired.comfyui.commit)
        ? (await requirementsAt(target.mirror, desired.comfyui.commit))
        : [];
      current = desired.pyproject.project.dependencies;
      dependencies = mergeRequirements(current, oldReqs, newReqs);
      return {
        edits: [
          { path: ["project", "dependencies"], value: dependencies },
          { path: ["tool", "comfydock", "comfyui_version"], value: target.version },
          { path: ["tool", "comfydock", "comfyui_commit"], value: target.commit },
          { path: ["tool", "comfydock", "comfyui_url"], value: url },
          ...(excludeNewer ? [{ path: ["tool", "uv", "exclude-newer"], value: excludeNewer.to }] : []),
        ],
      };
    },
  });
  return {
    ...result,
    from: { version: before.comfyui.version, commit: before.comfyui.commit },
    to: { version: target.version, commit: target.commit },
    dependencies: {
      added: dependencies.filter((d) => !current.includes(d)),
      removed: current.filter((d) => !dependencies.includes(d)),
    },
    excludeNewer,
  };
}

/**
 * The seed's Environment: one environment's operations as an object (the CLI uses the functions and the
 * engine directly; this is the library face of the same code).
 */
export class Environment {
  constructor(readonly app: App, readonly paths: EnvPaths) {}

  /** An existing environment of the workspace (UNKNOWN_ENVIRONMENT otherwise). */
  static async open(app: App, name: string): Promise<Environment> {
    const { requireEnvironment } = await import("./workspace.ts");
    return new Environment(app, await requireEnvironment(app.ws, name));
  }

  get name(): string {
    return this.paths.name;
  }

  desired(): Promise<DesiredState> {
    return readDesired(this.paths);
  }

  /** The plan (read lock held while observing). */
  plan(opts: { targets?: string[] } = {}): Promise<Plan> {
    return withSession(this.app, this.paths, "plan", "read", async (s) => (await s.plan(opts)).plan);
  }

  /** The seed's sync(): plan, then apply that plan when it has actions (the App's confirm is asked). */
  sync(opts: { dryRun?: boolean } = {}): Promise<{ plan: Plan; applied: boolean }> {
    return withSession(this.app, this.paths, "sync", opts.dryRun ? "read" : "write", async (s) => {
      const { plan } = await s.plan();
      if (opts.dryRun || plan.actions.length === 0) return { plan, applied: false };
      this.app.showPlan(plan);
      if (!await this.app.confirm(`Apply these ${plan.actions.length} action(s)?`, { destructive: false })) {
        return { plan, applied: false };
      }
      await s.apply(plan);
      return { plan, applied: true };
    });
  }

  /** Commits `.cec` as it is (validated first); null when there was nothing to commit. */
  commit(message: string): Promise<string | null> {
    return withSession(this.app, this.paths, "commit", "write", (s) => commitCec(s, message));
  }

  log(maxCount?: number): Promise<git.LogEntry[]> {
    return git.log(this.paths.cec, { maxCount });
  }

  run(args: string[] = []): Promise<number> {
    return runComfyUI(this.paths, args);
  }

  updateComfyUI(version = "latest", opts: { apply?: boolean } = {}): Promise<UpdateComfyUIResult> {
    return withSession(
      this.app,
      this.paths,
      "comfyui update",
      "write",
      (s) => updateComfyUI(s, version, opts),
    );
  }
}

/** `commit -m`: the user's own edits of `.cec`, committed under the lock once they validate. */
export async function commitCec(session: Session, message: string): Promise<string | null> {
  await readDesired(session.paths); // never commit a desired state that does not validate
  return await git.commit(session.paths.cec, message);
}
