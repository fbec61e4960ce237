/**
 * The core of `comfydock action`: plan, apply or check drift for each environment, then report on GitHub
 * (sticky PR comment, drift issue), in the step summary and in the step outputs. The work per environment is
 * an injected function (the engine by default), so the GitHub side can be driven with any Plan.
 *
 * Every environment is reported even when another fails, and the step summary is written even when the
 * GitHub API refuses us: the plan is never lost behind an API error.
 */
import { CdError, errorMessage } from "../lib/errors.ts";
import type { Plan } from "../reconcile/types.ts";
import { summarize, summaryLine } from "../views/plan_text.ts";
import type { WorkspacePaths } from "../reconcile/paths.ts";
import { type App, withSession } from "../workspace/session.ts";
import {
  createGitHubClient,
  type GitHubClient,
  type GitHubClientOptions,
  planMarker,
} from "../providers/github/client.ts";
import { redactSecrets } from "../lib/redact.ts";
import { keyLine } from "../reconcile/desired.ts";
import { renderDriftReport } from "../views/drift.ts";
import { code, fence, GITHUB_BODY_LIMIT, planDiffBlock, truncateMarkdown } from "../views/markdown.ts";
import type { ActionCommand, ActionInputs, PullRequestRef } from "./inputs.ts";
import { pullRequestOf } from "./inputs.ts";
import { type EnvSpec, resolveEnvironments } from "./env_spec.ts";
import { annotationPath, errorCommand, formatOutputs, pyprojectLocations } from "./workflow_commands.ts";

export interface EnvOutcome {
  plan: Plan;
  /** The plan rendered for humans (reconcile/render.ts). */
  rendered: string;
  /** 0 no changes, 2 changes (plan/drift); 0 for a successful apply. */
  exitcode: number;
}

export type EnvRunner = (spec: EnvSpec & { command: ActionCommand }) => Promise<EnvOutcome>;

export interface EnvReport {
  input: string;
  name: string;
  outcome: EnvOutcome | null;
  error: CdError | null;
  /** What happened on GitHub, one sentence with a link ("comment updated: URL"), if anything. */
  github: string | null;
  githubError: CdError | null;
}

export interface ActionResult {
  command: ActionCommand;
  /** 0 no changes, 1 error, 2 changes: the `exitcode` output. */
  exitcode: number;
  changes: boolean;
  planJsonPath: string;
  envs: EnvReport[];
  /** Errors that are not about one environment (inputs, missing token). */
  errors: CdError[];
  /** `::error ...::` workflow commands to print (GitHub turns them into annotations). */
  annotations: string[];
  summary: string;
}

export interface ActionDeps {
  /** The workspace the environments live in. */
  ws: WorkspacePaths;
  /** What runs each environment (default: the engine, through `app`). */
  runEnv?: EnvRunner;
  /** The App the engine runner is handed (needed unless `runEnv` is given). */
  app?: App;
  github?: (opts: GitHubClientOptions) => Promise<GitHubClient>;
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
}

/** The engine: plan, and for `apply` carry the plan out (logged in the environment's log, as the CLI's apply). */
export function engineRunner(app: App): EnvRunner {
  return async (spec) => {
    const { renderPlan } = await import("../views/plan_text.ts");
    const mode = spec.command === "apply" ? "write" : "read";
    const plan = await withSession(app, spec.paths, `action ${spec.command}`, mode, async (s) => {
      const { plan } = await s.plan();
      if (spec.command === "apply" && plan.actions.length > 0) await s.apply(plan);
      return plan;
    });
    return {
      plan,
      rendered: renderPlan(plan),
      exitcode: spec.command === "apply" || plan.actions.length === 0 ? 0 : 2,
    };
  };
}

function asCdError(e: unknown, code: string): CdError {
  return e instanceof CdError ? e : new CdError(code, errorMessage(e), { cause: e });
}

const TITLES: Record<ActionCommand, string> = { plan: "plan", apply: "apply", drift: "drift check" };

function applySummary(plan: Plan): string {
  if (plan.actions.length === 0) {
    return "Apply complete: nothing to do, the environment already matched .cec.";
  }
  const s = summarize(plan.actions);
  return `Apply complete: ${s.add} added, ${s.change} changed, ${s.remove} removed.`;
}

function errorBlock(e: CdError): string {
  return `**Error** (${code(e.code)}):\n\n${fence(e.message)}\n${e.hint ? `\nHint: ${e.hint}\n` : ""}`;
}

/** The markdown of one environment: the step summary section, and the body of the sticky comment. */
function envMarkdown(command: ActionCommand, r: EnvReport, opts: { runUrl?: string; sha?: string }): string {
  const parts = [`### ComfyDock ${TITLES[command]}: ${code(r.name)}`, ""];
  if (r.error || !r.outcome) {
    parts.push(r.error ? errorBlock(r.error) : "");
  } else if (command === "drift") {
    parts.push(renderDriftReport(r.outcome.plan, { runUrl: opts.runUrl }));
  } else {
    const plan = r.outcome.plan;
    parts.push(`**${command === "apply" ? applySummary(plan) : summaryLine(plan)}**`, "");
    if (plan.actions.length > 0 || plan.notes.length > 0) {
      parts.push(
        `<details${command === "plan" ? " open" : ""}><summary>Show ${
          command === "plan" ? "plan" : "what was applied"
        }</summary>`,
        "",
        planDiffBlock(plan),
        "",
        "</details>",
      );
    }
  }
  const footer = [
    opts.sha ? `commit ${opts.sha.slice(0, 7)}` : null,
    opts.runUrl ? `[run](${opts.runUrl})` : null,
  ]
    .filter(Boolean);
  if (footer.length) parts.push("", `<sub>${footer.join(" · ")}</sub>`);
  return parts.join("\n") + "\n";
}

function annotationsFor(
  e: CdError,
  title: string,
  workspace: string | undefined,
  texts: Map<string, string>,
) {
  const locations = pyprojectLocations(e);
  if (locations.length === 0) return [errorCommand({ title, message: e.message })];
  return locations.map((loc) => {
    const text = texts.get(loc.file);
    const line = loc.line ?? (loc.key && text !== undefined ? keyLine(text, loc.key) : undefined);
    return errorCommand({
      file: annotationPath(loc.file, workspace),
      line,
      col: loc.col,
      title: "Invalid .cec/pyproject.toml",
      message: loc.message,
    });
  });
}

async function readEvent(path: string | undefined): Promise<unknown> {
  if (!path) return null;
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new CdError("ACTION_EVENT", `cannot read the event payload ${path}: ${errorMessage(e)}`, {
      hint: "GITHUB_EVENT_PATH is set by GitHub Actions; unset it when running by hand",
    });
  }
}

/** Runs the command on every environment; a bad input or a failure is reported and the others go on. */
async function runEnvironments(
  inputs: ActionInputs,
  ws: WorkspacePaths,
  runEnv: EnvRunner,
  log: (line: string) => void,
) {
  const envs: EnvReport[] = [];
  const blank = { outcome: null, error: null, github: null, githubError: null };
  const { specs, errors } = await resolveEnvironments(inputs.environments, inputs.workingDirectory, ws);
  for (const b of errors) envs.push({ ...blank, input: b.input, name: b.input, error: b.error });
  for (const spec of specs) {
    log(`${inputs.command} ${spec.paths.name} (${spec.paths.cec})`);
    const report: EnvReport = { ...blank, input: spec.input, name: spec.paths.name };
    try {
      report.outcome = await runEnv({ ...spec, command: inputs.command });
    } catch (e) {
      report.error = asCdError(e, "ACTION_ENV_FAILED");
    }
    envs.push(report);
  }
  return envs;
}

/** The sticky comment (plan) or the drift issue (drift) of each environment; API errors stay per environment. */
async function reportOnGitHub(
  inputs: ActionInputs,
  envs: EnvReport[],
  pr: PullRequestRef | null,
  gh: GitHubClient,
  mdOpts: { runUrl?: string; sha?: string },
): Promise<void> {
  if (!inputs.repository) {
    throw new CdError("GITHUB_REPOSITORY", "GITHUB_REPOSITORY is not set", {
      hint: "it is set by GitHub Actions; when running by hand set it to owner/name",
    });
  }
  const repo = inputs.repository;
  for (const r of envs) {
    try {
      if (inputs.command === "plan" && pr) {
        const body = truncateMarkdown(
          envMarkdown("plan", r, mdOpts),
          GITHUB_BODY_LIMIT,
          "_The plan is too long for a comment; the full plan is in the step summary of the run._",
        );
        const res = await gh.upsertStickyComment(repo, pr.number, planMarker(r.name), body);
        r.github = `plan comment ${res.action} on #${pr.number}: ${res.url}`;
      } else if (inputs.command === "drift" && r.outcome) {
        // (A failed check says nothing about drift: its issue is left as it is.)
        const report = r.outcome.plan.actions.length === 0 ? null : truncateMarkdown(
          renderDriftReport(r.outcome.plan, { runUrl: inputs.runUrl }),
          GITHUB_BODY_LIMIT,
          "_The report is too long for an issue; the full report is in the step summary of the run._",
        );
        const res = await gh.reportDrift(repo, r.name, inputs.driftLabel, report);
        r.github = res.action === "none" ? null : `drift issue #${res.issue} ${res.action}: ${res.url}`;
      }
    } catch (e) {
      r.githubError = asCdError(e, "GITHUB_API");
    }
  }
}

async function buildAnnotations(
  command: ActionCommand,
  errors: CdError[],
  envs: EnvReport[],
  workspace: string | undefined,
): Promise<string[]> {
  // pyproject errors name the file and a key; the line of the key is looked up in the file's text.
  const texts = new Map<string, string>();
  for (const e of [...errors, ...envs.map((r) => r.error)]) {
    for (const loc of e ? pyprojectLocations(e) : []) {
      const text = texts.has(loc.file) ? null : await Deno.readTextFile(loc.file).catch(() => null);
      if (text !== null) texts.set(loc.file, text);
    }
  }
  const out = errors.flatMap((e) => annotationsFor(e, `comfydock ${command}`, workspace, texts));
  for (const r of envs) {
    if (r.error) out.push(...annotationsFor(r.error, `comfydock ${command} (${r.name})`, workspace, texts));
    if (r.githubError) out.push(errorCommand({ title: "GitHub API", message: r.githubError.message }));
  }
  return out;
}

function summaryMarkdown(
  command: ActionCommand,
  errors: CdError[],
  notes: string[],
  envs: EnvReport[],
  mdOpts: { runUrl?: string; sha?: string },
): string {
  const sections = envs.map((r) => {
    let md = envMarkdown(command, r, mdOpts);
    if (r.github) md += `\n${r.github}\n`;
    if (r.githubError) {
      md += `\n**GitHub API error**: ${r.githubError.message}\n`;
      if (r.githubError.hint) md += `\nHint: ${r.githubError.hint}\n`;
    }
    return md;
  });
  return [...errors.map(errorBlock), ...notes, ...sections].join("\n");
}

/** The plan file: the Plan for one environment, an array of Plans for several. */
async function writePlanJson(inputs: ActionInputs, envs: EnvReport[]): Promise<string> {
  const plans = envs.flatMap((r) => r.outcome ? [r.outcome.plan] : []);
  if (plans.length === 0) return "";
  const path = await Deno.makeTempFile({
    dir: inputs.runnerTemp,
    prefix: "comfydock-plan-",
    suffix: ".json",
  });
  const single = envs.length === 1;
  await Deno.writeTextFile(path, JSON.stringify(single ? plans[0] : plans, null, 2) + "\n");
  return path;
}

export async function runAction(inputs: ActionInputs, deps: ActionDeps): Promise<ActionResult> {
  const { command } = inputs;
  const errors: CdError[] = [];
  const notes: string[] = [];

  let pr: PullRequestRef | null = null;
  try {
    pr = pullRequestOf(inputs.eventName, await readEvent(inputs.eventPath));
  } catch (e) {
    errors.push(asCdError(e, "ACTION_EVENT"));
  }

  let envs: EnvReport[] = [];
  try {
    const runEnv = deps.runEnv ?? engineRunner(deps.app!);
    envs = await runEnvironments(inputs, deps.ws, runEnv, deps.log ?? (() => {}));
  } catch (e) {
    errors.push(asCdError(e, "ACTION_INPUT"));
  }

  const mdOpts = { runUrl: inputs.runUrl, sha: pr?.headSha ?? inputs.sha };
  const comment = command === "plan" && inputs.comment;
  if (comment && pr === null && envs.length > 0) {
    notes.push(`Not a pull request (${inputs.eventName ?? "no event"}): no plan comment posted.`);
  }
  if (envs.length > 0 && (command === "drift" || (comment && pr !== null))) {
    try {
      const gh = await (deps.github ?? createGitHubClient)({ token: inputs.token, baseUrl: inputs.apiUrl });
      await reportOnGitHub(inputs, envs, pr, gh, mdOpts);
    } catch (e) {
      errors.push(asCdError(e, "GITHUB_API"));
    }
  }

  const changes = envs.some((r) => (r.outcome?.plan.actions.length ?? 0) > 0);
  const failed = errors.length > 0 || envs.some((r) => r.error || r.githubError);
  const scrub = (s: string) => redactSecrets(s, [inputs.token]);
  const result: ActionResult = {
    command,
    exitcode: failed ? 1 : changes && command !== "apply" ? 2 : 0,
    changes,
    planJsonPath: await writePlanJson(inputs, envs),
    envs,
    errors,
    annotations: (await buildAnnotations(command, errors, envs, inputs.workspace)).map(scrub),
    summary: scrub(summaryMarkdown(command, errors, notes, envs, mdOpts)),
  };
  if (inputs.summaryFile) {
    await Deno.writeTextFile(inputs.summaryFile, result.summary + "\n", { append: true });
  }
  if (inputs.outputFile) {
    const outputs = {
      changes: String(result.changes),
      "plan-json": result.planJsonPath,
      exitcode: String(result.exitcode),
    };
    await Deno.writeTextFile(inputs.outputFile, formatOutputs(outputs), { append: true });
  }
  return result;
}
