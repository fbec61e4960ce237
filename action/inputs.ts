/**
 * The Action's inputs and the run's context, read from the variables GitHub sets. Pure over a plain env
 * record so tests (and the composite action's explicit mapping) can drive it.
 */
import { CdError } from "../lib/errors.ts";
import { DEFAULT_API_URL } from "../providers/github/client.ts";

export type ActionCommand = "plan" | "apply" | "drift";

export interface ActionInputs {
  command: ActionCommand;
  /** `.cec` paths or environment names, as given (empty: the `.cec` in the working directory). */
  environments: string[];
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
  /** GITHUB_WORKSPACE: annotation paths are made relative to it. */
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

export function readActionInputs(env: Env, cwd: string): ActionInputs {
  const command = input(env, "command");
  if (command !== "plan" && command !== "apply" && command !== "drift") {
    throw new CdError(
      "ACTION_INPUT",
      command ? `input 'command' is '${command}', not plan, apply or drift` : "input 'command' is not set",
      { hint: "set 'command: plan' (pull requests), 'apply' (push to main) or 'drift' (schedule)" },
    );
  }
  const server = env.GITHUB_SERVER_URL;
  const runUrl = server && env.GITHUB_REPOSITORY && env.GITHUB_RUN_ID
    ? `${server}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`
    : undefined;
  return {
    command,
    environments: splitEnvironments(input(env, "environment")),
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
}

/** The pull request of the event payload, or null when the event is not about one. */
export function pullRequestOf(eventName: string | undefined, event: unknown): PullRequestRef | null {
  if (!eventName || !["pull_request", "pull_request_target", "pull_request_review"].includes(eventName)) {
    return null;
  }
  const e = event as
    | { number?: unknown; pull_request?: { number?: unknown; head?: { sha?: unknown } } }
    | null;
  const n = e?.pull_request?.number ?? e?.number;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1) return null;
  const sha = e?.pull_request?.head?.sha;
  return { number: n, headSha: typeof sha === "string" ? sha : undefined };
}
