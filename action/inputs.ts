/**
 * The Action's inputs and the run's context, read from the variables GitHub sets. Pure over a plain env
 * record so tests (and the composite action's explicit mapping) can drive it.
 */
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { CdError } from "../lib/errors.ts";
import { DEFAULT_API_URL } from "../providers/github/client.ts";

export type ActionCommand = "plan" | "apply" | "drift" | "validate";
const COMMANDS: readonly ActionCommand[] = ["plan", "apply", "drift", "validate"];

/**
 * `auto-approve`: apply whatever the push's plan is (the push is the request). `required`: apply only the
 * plan approved on the merged pull request (its sticky comment), else fail saying why.
 */
export type ApprovalMode = "auto-approve" | "required";

export interface ActionInputs {
  command: ActionCommand;
  /** `.cec` paths or environment names, as given (empty: the `.cec` in the working directory). */
  environments: string[];
  /** The environment's name on the runner (input `name`; one environment only). Default: the `.cec`'s folder. */
  name?: string;
  /**
   * The ComfyDock workspace on the runner, where environments live between jobs (input `workspace`; else
   * COMFYDOCK_HOME, else ~/.comfydock_workspace). Never inside the checkout.
   */
  home?: string;
  /** Which machine this is (input `machine`, else RUNNER_NAME, else the host name): keys comments and issues. */
  machine: string;
  /** Refuse a uv.lock that is missing or out of date (input `locked`, default true). */
  locked: boolean;
  approvedPlan: ApprovalMode;
  /** Plan as for a fork's pull request even when it is not one (input `untrusted`). */
  untrusted: boolean;
  /** Never printed; only handed to the GitHub client. */
  token: string;
  workingDirectory: string;
  comment: boolean;
  driftLabel: string;
  apiUrl: string;
  repository?: string;
  eventName?: string;
  eventPath?: string;
  outputFile?: string;
  summaryFile?: string;
  /** GITHUB_WORKSPACE (the checkout): annotation paths are made relative to it. */
  workspace?: string;
  runnerTemp?: string;
  /** Link to the workflow run, for comments and issues. */
  runUrl?: string;
  sha?: string;
}

export const DEFAULT_DRIFT_LABEL = "comfydock-drift";

type Env = Record<string, string | undefined>;

/**
 * An input as the runner passes it: JavaScript actions get `INPUT_<NAME>` with the name upper-cased and
 * dashes kept (`INPUT_GITHUB-TOKEN`); shells cannot set such names, so the underscore form is accepted too.
 */
function input(env: Env, name: string): string {
  const upper = name.toUpperCase();
  return (env[`INPUT_${upper}`] ?? env[`INPUT_${upper.replaceAll("-", "_")}`] ?? "").trim();
}

function booleanInput(env: Env, name: string, fallback: boolean): boolean {
  const raw = input(env, name);
  if (raw === "") return fallback;
  // The YAML 1.2 core schema booleans, as @actions/core getBooleanInput accepts them.
  if (["true", "True", "TRUE"].includes(raw)) return true;
  if (["false", "False", "FALSE"].includes(raw)) return false;
  throw new CdError("ACTION_INPUT", `input '${name}' is '${raw}', not true or false`, {
    hint: `set '${name}: true' or '${name}: false' in the workflow`,
  });
}

/** Splits the `environment` input: one per line or comma-separated, blanks and repeats dropped. */
export function splitEnvironments(raw: string): string[] {
  return [...new Set(raw.split(/[\n,]/).map((s) => s.trim()).filter(Boolean))];
}

/** The workspace folder as written in a workflow: `~/...` is the runner user's home (YAML does not expand it). */
function homeOf(raw: string, env: Env, cwd: string): string | undefined {
  if (!raw) return undefined;
  const home = env.HOME || env.USERPROFILE;
  if (home && (raw === "~" || raw.startsWith("~/"))) return join(home, raw.slice(1));
  return resolve(cwd, raw);
}

export function readActionInputs(env: Env, cwd: string, host: string = hostname()): ActionInputs {
  const command = input(env, "command");
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new CdError(
      "ACTION_INPUT",
      command
        ? `input 'command' is '${command}', not plan, apply, drift or validate`
        : "input 'command' is not set",
      {
        hint:
          "set 'command: plan' (pull requests), 'apply' (push to main), 'drift' (schedule) or 'validate' " +
          "(hosted runners: no environment needed)",
      },
    );
  }
  const approvedPlan = input(env, "approved-plan") || "auto-approve";
  if (approvedPlan !== "auto-approve" && approvedPlan !== "required") {
    throw new CdError(
      "ACTION_INPUT",
      `input 'approved-plan' is '${approvedPlan}', not auto-approve or required`,
      {
        hint:
          "'required' applies only the plan approved on the merged pull request; 'auto-approve' applies the " +
          "push's plan as it is",
      },
    );
  }
  const environments = splitEnvironments(input(env, "environment"));
  const name = input(env, "name") || undefined;
  if (name && environments.length > 1) {
    throw new CdError(
      "ACTION_INPUT",
      `input 'name' ('${name}') names one environment, but ${environments.length} are given`,
      {
        hint:
          "give one 'environment' per step with 'name', or leave 'name' out: each is named after its .cec's folder",
      },
    );
  }
  const server = env.GITHUB_SERVER_URL;
  const runUrl = server && env.GITHUB_REPOSITORY && env.GITHUB_RUN_ID
    ? `${server}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`
    : undefined;
  return {
    command: command as ActionCommand,
    environments,
    name,
    home: homeOf(input(env, "workspace") || env.COMFYDOCK_HOME || "", env, cwd),
    machine: input(env, "machine") || env.RUNNER_NAME || host,
    locked: booleanInput(env, "locked", true),
    approvedPlan,
    untrusted: booleanInput(env, "untrusted", false),
    token: input(env, "github-token") || (env.GITHUB_TOKEN ?? "").trim(),
    workingDirectory: input(env, "working-directory") || env.GITHUB_WORKSPACE || cwd,
    comment: booleanInput(env, "comment", true),
    driftLabel: input(env, "drift-label") || DEFAULT_DRIFT_LABEL,
    apiUrl: env.GITHUB_API_URL || DEFAULT_API_URL,
    repository: env.GITHUB_REPOSITORY || undefined,
    eventName: env.GITHUB_EVENT_NAME || undefined,
    eventPath: env.GITHUB_EVENT_PATH || undefined,
    outputFile: env.GITHUB_OUTPUT || undefined,
    summaryFile: env.GITHUB_STEP_SUMMARY || undefined,
    workspace: env.GITHUB_WORKSPACE || undefined,
    runnerTemp: env.RUNNER_TEMP || undefined,
    runUrl,
    sha: env.GITHUB_SHA || undefined,
  };
}

export interface PullRequestRef {
  number: number;
  /** The PR's head commit (GITHUB_SHA is the merge commit on pull_request events). */
  headSha?: string;
  /**
   * From a fork (its head repository is not the base one, or is gone): its `.cec` is someone else's, planned
   * in the untrusted mode, and the token of a `pull_request` run is read-only.
   */
  fork: boolean;
}

const PULL_REQUEST_EVENTS = ["pull_request", "pull_request_target", "pull_request_review"];

/** The pull request of the event payload, or null when the event is not about one. */
export function pullRequestOf(eventName: string | undefined, event: unknown): PullRequestRef | null {
  if (!eventName || !PULL_REQUEST_EVENTS.includes(eventName)) return null;
  type RepoRef = { full_name?: unknown; fork?: unknown } | null;
  const e = event as
    | {
      number?: unknown;
      pull_request?: {
        number?: unknown;
        head?: { sha?: unknown; repo?: RepoRef };
        base?: { repo?: RepoRef };
      };
    }
    | null;
  const n = e?.pull_request?.number ?? e?.number;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1) return null;
  const sha = e?.pull_request?.head?.sha;
  const head = e?.pull_request?.head?.repo;
  const base = e?.pull_request?.base?.repo;
  // `head.repo` is null when the fork was deleted; absent only in hand-made payloads.
  const fork = head === null || head?.fork === true ||
    (typeof head?.full_name === "string" && typeof base?.full_name === "string" &&
      head.full_name !== base.full_name);
  return { number: n, headSha: typeof sha === "string" ? sha : undefined, fork };
}
