/**
 * What every command needs: the global flags, the workspace and environment they point at, the settings
 * of this run (read here, once, from the process environment and the workspace config), and the App the
 * application layer is handed (how to ask, show a plan, report progress).
 */
import type { Command } from "@commander-js/extra-typings";
import process from "node:process";
import { CdError } from "../lib/errors.ts";
import type { Settings } from "../lib/settings.ts";
import { type EnvPaths, type WorkspacePaths, workspacePaths, workspaceRoot } from "../reconcile/paths.ts";
import { paint, println, progress, step, ui } from "../lib/ui.ts";
import type { Plan } from "../reconcile/types.ts";
import type { App, ChangeResult, ChangeSpec, Session } from "../workspace/session.ts";

export interface GlobalFlags {
  env?: string;
  json?: boolean;
  yes?: boolean;
  debug?: boolean;
  color?: boolean;
  lockTimeout?: string;
}

// deno-lint-ignore no-explicit-any -- commander's typed Command carries per-command generics we don't need here
export function globals(cmd: Command<any, any, any>): GlobalFlags {
  return cmd.optsWithGlobals() as GlobalFlags;
}

export function workspace(): WorkspacePaths {
  return workspacePaths(workspaceRoot(Deno.env.toObject()));
}

let loaded: Settings | null = null;

/** The settings of this run (environment, workspace config, keys), read once here at the edge. */
export async function settings(): Promise<Settings> {
  if (!loaded) {
    const { loadSettings } = await import("../workspace/config.ts");
    loaded = await loadSettings(workspace(), Deno.env.toObject());
  }
  return loaded;
}

/** The workspace's ConfigManager (keys from this process's environment first). */
export async function configManager(): Promise<import("../workspace/config.ts").ConfigManager> {
  const { ConfigManager } = await import("../workspace/config.ts");
  return new ConfigManager(await requireWorkspace(), Deno.env.toObject());
}

/** The workspace, its workspace.json read and checked (a corrupt one is an error naming the file). */
export async function requireWorkspace(): Promise<WorkspacePaths> {
  return (await workspaceMeta()).ws;
}

async function workspaceMeta() {
  const ws = workspace();
  const { readWorkspaceMeta } = await import("../workspace/workspace.ts");
  return { ws, meta: await readWorkspaceMeta(ws) };
}

/** The environment named by -e/--env, else the active one. */
export async function resolveEnv(name?: string): Promise<EnvPaths> {
  const { ws, meta } = await workspaceMeta();
  const chosen = name ?? meta.active_environment ?? undefined;
  if (!chosen) {
    throw new CdError("NO_ENVIRONMENT", "no environment selected", {
      hint: "pass -e NAME, or choose one with 'comfydock use NAME' ('comfydock list' shows them)",
    });
  }
  const { requireEnvironment } = await import("../workspace/workspace.ts");
  return await requireEnvironment(ws, chosen);
}

/**
 * A yes/no question on the terminal (stderr, never stdout). `destructive` questions default to No. With
 * --yes the answer is yes; without a terminal and without --yes it is an error that says to pass --yes.
 */
export async function confirm(question: string, opts: { destructive?: boolean } = {}): Promise<boolean> {
  if (ui.yes) return true;
  if (!Deno.stdin.isTerminal()) {
    throw new CdError("NEEDS_CONFIRMATION", `${question} (no terminal to ask on)`, {
      hint: "pass --yes to proceed without asking",
    });
  }
  const { confirm: ask, isCancel } = await import("@clack/prompts");
  const answer = await ask({ message: question, initialValue: !opts.destructive, output: process.stderr });
  return !isCancel(answer) && answer === true;
}

/** Renders a plan for people (not in --json mode: there the plan goes into the one result document). */
export async function printPlan(plan: Plan): Promise<void> {
  if (ui.json) return;
  const { renderPlan } = await import("../views/plan_text.ts");
  println(renderPlan(plan, paint));
}

function lockTimeoutMs(g: GlobalFlags): number | undefined {
  if (g.lockTimeout === undefined) return undefined;
  const s = Number(g.lockTimeout);
  if (!Number.isFinite(s) || s < 0) {
    throw new CdError(
      "INVALID_LOCK_TIMEOUT",
      `--lock-timeout '${g.lockTimeout}' is not a number of seconds`,
      {
        hint: "e.g. --lock-timeout 60",
      },
    );
  }
  return s * 1000;
}

/** The App the application layer is handed for this command. */
export async function appFor(g: GlobalFlags, extra: Partial<App> = {}): Promise<App> {
  const ws = workspace();
  const { renderPlan } = await import("../views/plan_text.ts");
  return {
    ws,
    settings: await settings(),
    log: step,
    progress,
    confirm: (q, o) => confirm(q, o),
    showPlan: (plan) => {
      if (!ui.json) println(renderPlan(plan, paint));
    },
    lockTimeoutMs: lockTimeoutMs(g),
    ...extra,
  };
}

/** Runs `fn` in a session on the chosen environment (the lock held throughout). */
export async function withEnv<T>(
  g: GlobalFlags,
  command: string,
  mode: "read" | "write",
  fn: (s: Session, app: App) => Promise<T>,
  extra: Partial<App> = {},
): Promise<T> {
  const paths = await resolveEnv(g.env);
  const app = await appFor(g, extra);
  const { withSession } = await import("../workspace/session.ts");
  return await withSession(app, paths, command, mode, (s) => fn(s, app));
}

/**
 * A `.cec` change as a command runs it: a write session on the environment, the change (plan shown and
 * confirmed inside it), the session closed. `prepare` runs first, outside the lock (network: resolving
 * nodes, downloading models), so other commands are not kept waiting on it.
 */
export async function runChange<P>(
  g: GlobalFlags,
  command: string,
  prepare: (paths: EnvPaths, app: App) => Promise<P>,
  spec: (prepared: P, s: Session) => ChangeSpec,
  extra: Partial<App> = {},
): Promise<{ prepared: P; result: ChangeResult; paths: EnvPaths }> {
  const paths = await resolveEnv(g.env);
  const app = await appFor(g, extra);
  const prepared = await prepare(paths, app);
  const { withSession } = await import("../workspace/session.ts");
  const result = await withSession(app, paths, command, "write", (s) => s.change(spec(prepared, s)));
  return { prepared, result, paths };
}

/**
 * A change's outcome as JSON data, the same keys for every command that changes `.cec` (README "JSON
 * output"): `applied` says whether the plan was carried out (its actions are in `plan`), `kept` what was
 * left undone on purpose. null: no change was needed.
 */
export function changeData(r: ChangeResult | null): {
  accepted: boolean;
  commit: string | null;
  plan: Plan | null;
  applied: boolean;
  kept: { address: string; reason: string }[];
  trash: string | null;
} {
  if (!r) return { accepted: true, commit: null, plan: null, applied: false, kept: [], trash: null };
  return {
    accepted: r.accepted,
    commit: r.commit,
    plan: r.plan,
    applied: r.applied.length > 0,
    kept: r.kept,
    trash: r.trashDir,
  };
}

/** The closing line of a change for people. */
export function changeOutcome(r: ChangeResult, apply: boolean): string {
  if (!r.accepted) return "Cancelled; .cec and the environment are as they were.";
  if (!apply) {
    return r.commit ? ".cec committed; run 'comfydock apply' to install." : "Nothing changed in .cec.";
  }
  // What was left as it is was logged with its reason when its action ran.
  const kept = r.kept.length ? `Left as it is (see above): ${r.kept.map((k) => k.address).join(", ")}.` : "";
  if (r.applied.length) return kept ? `Applied, except: ${kept}` : "Applied: the environment matches .cec.";
  if (kept) return kept;
  return r.commit ? ".cec committed; nothing to install." : "Nothing changed.";
}
