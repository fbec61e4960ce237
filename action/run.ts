/**
 * The core of `comfydock action`: plan, apply, check drift or validate each environment, then report on
 * GitHub (one sticky PR comment and one drift issue per machine and environment), in the step summary and in
 * the step outputs. The work per environment is an injected function (the engine by default), so the GitHub
 * side can be driven with any Plan.
 *
 * Every environment is reported even when another fails, and the step summary is written even when the
 * GitHub API refuses us: the plan is never lost behind an API error. What the Action decides on its own:
 * - `apply` never runs on a pull request event (the PR's `.cec` would reach production unreviewed);
 * - a pull request from a fork is planned in the untrusted mode, and gets no comment on `pull_request` runs
 *   (their token is read-only): its plan is in the step summary;
 * - `approved-plan: required` looks up the approved plan of every environment BEFORE running anything.
 */
import { CdError, errorMessage } from "../lib/errors.ts";
import { sha256Hex } from "../lib/fsx.ts";
import { stableStringify } from "../reconcile/fingerprint.ts";
import type { Plan } from "../reconcile/types.ts";
import { summarize, summaryLine } from "../views/plan_text.ts";
import type { WorkspacePaths } from "../reconcile/paths.ts";
import { type App, withSession } from "../workspace/session.ts";
import { applyFromCheckout, planFromCheckout, requireLocked, validateCheckout } from "../workspace/gitops.ts";
import { validateCec, type Validation } from "../workspace/validate.ts";
import {
  createGitHubClient,
  type GitHubClient,
  type GitHubClientOptions,
  type MergedPullRequest,
  planMarker,
} from "../providers/github/client.ts";
import { redactSecrets } from "../lib/redact.ts";
import { keyLine } from "../reconcile/desired.ts";
import { renderDriftReport, summarizeDrift } from "../views/drift.ts";
import {
  code,
  escapeMarkdown,
  fence,
  GITHUB_BODY_LIMIT,
  planDiffBlock,
  truncateMarkdown,
} from "../views/markdown.ts";
import { healthHeadline, type HealthResult, packLine } from "../providers/comfyui/health.ts";
import type { ActionCommand, ActionInputs, PullRequestRef } from "./inputs.ts";
import { pullRequestOf } from "./inputs.ts";
import { type EnvSpec, resolveEnvironments } from "./env_spec.ts";
import { approvalDifferences, type ApprovedPlan, embedPlan, readApprovedPlan } from "./approval.ts";
import {
  annotationPath,
  endGroup,
  errorCommand,
  formatOutputs,
  pyprojectLocations,
  startGroup,
  warningCommand,
} from "./workflow_commands.ts";

export interface EnvOutcome {
  /** The plan (plan, drift), what was applied (apply); null for validate. */
  plan: Plan | null;
  /** The plan (or validation) rendered for humans. */
  rendered: string;
  /** 0 no changes, 2 changes (plan/drift), 1 invalid (validate); 0 for a successful apply. */
  exitcode: number;
  /** false: the environment does not exist on this machine yet, and the plan is what its first apply does. */
  exists?: boolean;
  /** apply: the environment was created by it. */
  created?: boolean;
  validation?: Validation;
  /** apply and drift: does ComfyUI start with every pack (null: the check could not run, see healthError). */
  health?: HealthResult | null;
  healthError?: string;
}

/** How an environment is run, besides which one and what command. */
export interface RunContext {
  machine: string;
  /** Refuse a stale or missing uv.lock before anything changes (plan and apply). */
  locked: boolean;
  /** The desired state is someone else's (a fork's pull request): no build backend runs. */
  untrusted: boolean;
  /** Sees the plan before apply changes anything; throws when it is not the approved one. */
  approve?: (plan: Plan) => void;
}

export type EnvRunner = (
  spec: EnvSpec & { command: ActionCommand; context: RunContext },
) => Promise<EnvOutcome>;

export interface EnvReport {
  input: string;
  name: string;
  outcome: EnvOutcome | null;
  error: CdError | null;
  /** What happened on GitHub, one sentence with a link ("comment updated: URL"), if anything. */
  github: string | null;
  githubError: CdError | null;
  /** apply with `approved-plan: required`: the pull request whose plan this is. */
  approvedOn?: MergedPullRequest;
  /** A plan refused as not approved: shown so a person can review it. */
  refused?: Plan;
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
  /** `::error ...::` and `::warning ...::` workflow commands to print (GitHub turns them into annotations). */
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
  /** Progress lines and `::group::` markers (stdout in the CLI, where the runner reads workflow commands). */
  log?: (line: string) => void;
}

function renderValidation(v: Validation, what: string): string {
  const lines = [
    ...v.errors.map((e) => `invalid: ${e}`),
    ...v.warnings.map((w) => `warning: ${w}`),
  ];
  if (v.errors.length === 0) lines.push(`${what} is valid.`);
  return lines.join("\n");
}

/**
 * The engine: a `.cec` of the checkout is planned or applied against its environment on this machine
 * (workspace/gitops.ts); an environment named in the input is planned or applied from its own `.cec`.
 * Synced is not healthy: after `apply` and `drift` of an environment that exists here, ComfyUI is started in
 * it and every custom node pack checked (its own read session, right after the command's).
 */
export function engineRunner(app: App): EnvRunner {
  const runCommand = commandRunner(app);
  return async (spec) => {
    const outcome = await runCommand(spec);
    const { command, paths } = spec;
    if ((command === "apply" || command === "drift") && outcome.plan && outcome.exists !== false) {
      const { checkHealth } = await import("../workspace/health.ts");
      try {
        outcome.health = await withSession(app, paths, `action ${command} (health)`, "read", checkHealth);
        if (command === "drift" && !outcome.health.healthy) outcome.exitcode = 2;
      } catch (e) {
        outcome.health = null;
        outcome.healthError = errorMessage(e);
      }
    }
    return outcome;
  };
}

/** Plan, apply, drift or validate of one environment. */
function commandRunner(app: App): EnvRunner {
  return async ({ command, context, paths, checkout }) => {
    const { renderPlan } = await import("../views/plan_text.ts");
    const outcome = (plan: Plan, extra: Partial<EnvOutcome> = {}): EnvOutcome => ({
      plan,
      rendered: renderPlan(plan),
      exitcode: command !== "apply" && plan.actions.length > 0 ? 2 : 0,
      ...extra,
    });
    if (command === "validate") {
      // DESIGN §9: validate runs on hosted runners, on anyone's pull request: never a build backend.
      const v = checkout
        ? await validateCheckout(app, paths.name, checkout, { noBuild: true })
        : await validateCec({ paths, settings: app.settings }, { log: app.log, noBuild: true });
      return {
        plan: null,
        validation: v,
        rendered: renderValidation(v, checkout?.label ?? paths.cec),
        exitcode: v.errors.length > 0 ? 1 : 0,
      };
    }
    const opts = {
      locked: context.locked && command !== "drift",
      untrusted: context.untrusted,
      approve: context.approve,
    };
    if (checkout) {
      if (command === "apply") {
        const r = await applyFromCheckout(app, paths, checkout, opts);
        return outcome(r.plan, { created: r.created });
      }
      const r = await planFromCheckout(app, paths, checkout, opts);
      return outcome(r.plan, { exists: r.exists });
    }
    const mode = command === "apply" ? "write" : "read";
    const plan = await withSession(app, paths, `action ${command}`, mode, async (s) => {
      const { plan, desired } = await s.plan({ untrusted: opts.untrusted });
      if (opts.locked) requireLocked(plan, desired);
      if (command === "apply") {
        opts.approve?.(plan);
        if (plan.actions.length > 0) await s.apply(plan);
      }
      return plan;
    });
    return outcome(plan);
  };
}

/** The health check in a few lines of markdown (the step summary stays small). */
function healthMarkdown(o: EnvOutcome): string | null {
  if (o.health === undefined) return null;
  if (o.health === null) {
    return `**Health**: not checked (${escapeMarkdown(o.healthError ?? "unknown error")})`;
  }
  const r = o.health;
  const failed = r.packs.filter((p) => p.status === "failed");
  const lines = [`**Health**: ${r.healthy ? "✅" : "❌"} ${escapeMarkdown(healthHeadline(r))}`];
  for (const p of failed.slice(0, 10)) lines.push(`- ${code(p.dir)}: ${escapeMarkdown(packLine(p))}`);
  if (failed.length > 10) lines.push(`- ... and ${failed.length - 10} more`);
  return lines.join("\n");
}

function asCdError(e: unknown, code: string): CdError {
  return e instanceof CdError ? e : new CdError(code, errorMessage(e), { cause: e });
}

const TITLES: Record<ActionCommand, string> = {
  plan: "plan",
  apply: "apply",
  drift: "drift check",
  validate: "validate",
};

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

interface MdOpts {
  runUrl?: string;
  sha?: string;
  machine: string;
  /** The hash of the plan a merge approves (plan comments). */
  planHash?: string;
}

function planBlock(plan: Plan, summary: string, label: string, open: boolean): string[] {
  const out = [`**${summary}**`, ""];
  if (plan.actions.length > 0 || plan.notes.length > 0) {
    out.push(
      `<details${open ? " open" : ""}><summary>${label}</summary>`,
      "",
      planDiffBlock(plan),
      "",
      "</details>",
    );
  }
  return out;
}

/** The markdown of one environment: the step summary section, and the body of the sticky comment. */
function envMarkdown(command: ActionCommand, r: EnvReport, opts: MdOpts): string {
  const where = `${code(r.name)} on ${code(opts.machine)}`;
  const parts = [`### ComfyDock ${TITLES[command]}: ${where}`, ""];
  const o = r.outcome;
  if (r.error || !o) {
    parts.push(r.error ? errorBlock(r.error) : "");
    if (r.refused) {
      parts.push(...planBlock(r.refused, `Plan made now: ${summaryLine(r.refused)}`, "Show it", true));
    }
  } else if (o.validation) {
    const v = o.validation;
    parts.push(v.errors.length === 0 ? "**Valid.**" : `**Invalid: ${v.errors.length} problem(s).**`, "");
    for (const e of v.errors) parts.push(`- ❌ ${code(e)}`);
    for (const w of v.warnings) parts.push(`- ⚠️ ${code(w)}`);
  } else if (command === "drift" && o.plan) {
    parts.push(renderDriftReport(o.plan, { runUrl: opts.runUrl, machine: opts.machine }));
    const health = healthMarkdown(o);
    if (health) parts.push("", health);
  } else if (o.plan) {
    if (o.exists === false) {
      parts.push(`_Environment ${where} does not exist yet: this is what its first apply does._`, "");
    }
    if (r.approvedOn) {
      parts.push(`Applied the plan approved on #${r.approvedOn.number} (${r.approvedOn.url}).`, "");
    }
    if (o.created) parts.push(`Created environment ${where}.`, "");
    const summary = command === "apply" ? applySummary(o.plan) : summaryLine(o.plan);
    parts.push(
      ...planBlock(
        o.plan,
        summary,
        command === "plan" ? "Show plan" : "Show what was applied",
        command === "plan",
      ),
    );
    if (opts.planHash) {
      parts.push(
        "",
        `Plan hash: ${code(opts.planHash)}. With ${
          code("approved-plan: required")
        }, merging this pull request ` +
          `approves exactly this plan for ${where}.`,
      );
    }
    const health = healthMarkdown(o);
    if (health) parts.push("", health);
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

type Approval = { pr: MergedPullRequest; plan: ApprovedPlan } | CdError;

/**
 * `approved-plan: required`: the merged pull request of the pushed commit, and the plan approved there for
 * each environment on this machine (its sticky comment). Looked up before anything runs.
 */
async function lookUpApprovals(
  inputs: ActionInputs,
  specs: EnvSpec[],
  gh: () => Promise<GitHubClient>,
): Promise<Map<string, Approval>> {
  const out = new Map<string, Approval>();
  let pr: MergedPullRequest | null = null;
  let failure: CdError | null = null;
  try {
    if (!inputs.repository || !inputs.sha) {
      throw new CdError(
        "NO_APPROVED_PLAN",
        "approved-plan: required needs GITHUB_REPOSITORY and GITHUB_SHA",
        {
          hint:
            "both are set by GitHub Actions; when running by hand set them, or use approved-plan: auto-approve",
        },
      );
    }
    pr = await (await gh()).mergedPullRequestOf(inputs.repository, inputs.sha);
    if (!pr) {
      throw new CdError(
        "NO_APPROVED_PLAN",
        `commit ${inputs.sha.slice(0, 12)} is not the merge of a pull request: no plan was approved for it`,
        {
          hint:
            "with approved-plan: required, change main by merging pull requests (their plan job comments " +
            "the plan that merging approves); to apply this commit anyway, review its plan and run the " +
            "workflow by hand with approved-plan: auto-approve",
        },
      );
    }
  } catch (e) {
    failure = asCdError(e, "GITHUB_API");
  }
  for (const spec of specs) {
    const name = spec.paths.name;
    if (failure || !pr) {
      out.set(name, failure!);
      continue;
    }
    try {
      const marker = planMarker({ machine: inputs.machine, env: name });
      const c = await (await gh()).botCommentWith(inputs.repository!, pr.number, marker);
      if (!c) {
        throw new CdError(
          "NO_APPROVED_PLAN",
          `pull request #${pr.number} has no plan comment for environment '${name}' on ${inputs.machine}`,
          {
            hint:
              "the plan job must run on this machine (the same runner label, or 'machine' input) for the " +
              "pull request's last commit; to apply anyway, review the plan and use approved-plan: auto-approve",
          },
        );
      }
      out.set(name, {
        pr,
        plan: await readApprovedPlan(c.body, `the plan comment on #${pr.number} (${c.url})`),
      });
    } catch (e) {
      out.set(name, asCdError(e, "GITHUB_API"));
    }
  }
  return out;
}

/** The check handed to apply: the plan must be the approved one (else it says what differs). */
function approver(
  approval: { pr: MergedPullRequest; plan: ApprovedPlan },
  machine: string,
  report: EnvReport,
) {
  return (plan: Plan) => {
    const diffs = approvalDifferences(approval.plan, plan, machine);
    if (diffs.length === 0) return;
    report.refused = plan;
    throw new CdError(
      "PLAN_NOT_APPROVED",
      `the plan for '${report.name}' on ${machine} is not the one approved on #${approval.pr.number}:\n` +
        diffs.map((d) => `- ${d}`).join("\n"),
      {
        hint: "nothing was applied. Review the plan made now (in the step summary); to apply it, run the " +
          "workflow by hand with approved-plan: auto-approve, or open a pull request to have it planned and approved",
      },
    );
  };
}

/** The sticky comment (plan) or the drift issue (drift) of each environment; API errors stay per environment. */
async function reportOnGitHub(
  inputs: ActionInputs,
  envs: EnvReport[],
  pr: PullRequestRef | null,
  gh: GitHubClient,
  mdOpts: MdOpts,
): Promise<void> {
  if (!inputs.repository) {
    throw new CdError("GITHUB_REPOSITORY", "GITHUB_REPOSITORY is not set", {
      hint: "it is set by GitHub Actions; when running by hand set it to owner/name",
    });
  }
  const repo = inputs.repository;
  const machine = inputs.machine;
  for (const r of envs) {
    const target = { machine, env: r.name };
    try {
      if (inputs.command === "plan" && pr) {
        const plan = r.outcome?.plan ?? null;
        const embedded = plan ? await embedPlan(plan, machine, pr.headSha ?? null) : null;
        let body = envMarkdown("plan", r, { ...mdOpts, planHash: embedded?.hash });
        if (embedded && !embedded.marker) {
          body +=
            "\n_This plan is too large to embed for approval: with `approved-plan: required` its merge " +
            "cannot be applied automatically._\n";
        }
        body = truncateMarkdown(
          body,
          GITHUB_BODY_LIMIT - (embedded?.marker?.length ?? 0) - 2,
          "_The plan is too long for a comment; the full plan is in the step summary of the run._",
        );
        if (embedded?.marker) body += `\n${embedded.marker}\n`;
        const res = await gh.upsertStickyComment(repo, pr.number, planMarker(target), body);
        r.github = `plan comment ${res.action} on #${pr.number}: ${res.url}`;
      } else if (inputs.command === "drift" && r.outcome?.plan) {
        // (A failed check says nothing about drift: its issue is left as it is.)
        const plan = r.outcome.plan;
        const report = plan.actions.length === 0 ? null : {
          markdown: truncateMarkdown(
            renderDriftReport(plan, { runUrl: inputs.runUrl, machine }),
            GITHUB_BODY_LIMIT - 200,
            "_The report is too long for an issue; the full report is in the step summary of the run._",
          ),
          // What the report says, not when or by which run: an unchanged report adds no comment.
          hash: sha256Hex(stableStringify(summarizeDrift(plan))),
        };
        const res = await gh.reportDrift(repo, target, inputs.driftLabel, report);
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
  machine: string,
): Promise<string[]> {
  const validationErrors = (r: EnvReport) =>
    (r.outcome?.validation?.errors ?? []).map((line) =>
      // "<file>.toml: <key>: <message>" lines are pinned to the key's line like a pyproject error.
      new CdError(/^\S+\.toml: [^:\s]+: /.test(line) ? "PYPROJECT_INVALID" : "INVALID", line)
    );
  // pyproject errors name the file and a key; the line of the key is looked up in the file's text.
  const texts = new Map<string, string>();
  for (const e of [...errors, ...envs.flatMap((r) => [r.error, ...validationErrors(r)])]) {
    for (const loc of e ? pyprojectLocations(e) : []) {
      const text = texts.has(loc.file) ? null : await Deno.readTextFile(loc.file).catch(() => null);
      if (text !== null) texts.set(loc.file, text);
    }
  }
  const out = errors.flatMap((e) => annotationsFor(e, `comfydock ${command}`, workspace, texts));
  for (const r of envs) {
    const title = `comfydock ${command} (${r.name} on ${machine})`;
    if (r.error) out.push(...annotationsFor(r.error, title, workspace, texts));
    for (const e of validationErrors(r)) out.push(...annotationsFor(e, title, workspace, texts));
    for (const w of r.outcome?.validation?.warnings ?? []) out.push(warningCommand({ title, message: w }));
    for (const n of r.outcome?.plan?.notes ?? []) out.push(warningCommand({ title, message: n }));
    if (r.githubError) out.push(errorCommand({ title: "GitHub API", message: r.githubError.message }));
  }
  return out;
}

function summaryMarkdown(
  command: ActionCommand,
  errors: CdError[],
  notes: string[],
  envs: EnvReport[],
  mdOpts: MdOpts,
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

/** The plan file under RUNNER_TEMP: the Plan for one environment, an array of Plans for several. */
async function writePlanJson(inputs: ActionInputs, envs: EnvReport[]): Promise<string> {
  const plans = envs.flatMap((r) => r.outcome?.plan ? [r.outcome.plan] : []);
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
  const { command, machine } = inputs;
  const errors: CdError[] = [];
  const notes: string[] = [];
  const log = deps.log ?? (() => {});
  const blank = { outcome: null, error: null, github: null, githubError: null };

  let pr: PullRequestRef | null = null;
  try {
    pr = pullRequestOf(inputs.eventName, await readEvent(inputs.eventPath));
  } catch (e) {
    errors.push(asCdError(e, "ACTION_EVENT"));
  }
  const untrusted = inputs.untrusted || (pr?.fork ?? false);
  if (pr?.fork) {
    notes.push(
      `Pull request #${pr.number} comes from a fork: its .cec was planned in the untrusted mode (no build ` +
        `backend runs).`,
    );
  }

  let client: GitHubClient | null = null;
  const gh = async () =>
    client ??= await (deps.github ?? createGitHubClient)({ token: inputs.token, baseUrl: inputs.apiUrl });

  const envs: EnvReport[] = [];
  let specs: EnvSpec[] = [];
  if (command === "apply" && pr) {
    errors.push(
      new CdError("ACTION_APPLY_ON_PULL_REQUEST", `command: apply on a ${inputs.eventName} event`, {
        hint:
          "a pull request's .cec is applied only once it is merged: use 'command: plan' on pull requests " +
          "and 'command: apply' on push to main",
      }),
    );
  } else {
    try {
      const revision = inputs.repository && inputs.sha ? `${inputs.repository}@${inputs.sha}` : null;
      const resolved = await resolveEnvironments(inputs.environments, {
        workingDirectory: inputs.workingDirectory,
        ws: deps.ws,
        checkoutRoot: inputs.workspace,
        name: inputs.name,
        revision,
      });
      specs = resolved.specs;
      for (const b of resolved.errors) envs.push({ ...blank, input: b.input, name: b.input, error: b.error });
    } catch (e) {
      errors.push(asCdError(e, "ACTION_INPUT"));
    }
  }

  const approvals = command === "apply" && inputs.approvedPlan === "required" && specs.length > 0
    ? await lookUpApprovals(inputs, specs, gh)
    : null;
  const runEnv = deps.runEnv ?? engineRunner(deps.app!);
  for (const spec of specs) {
    const report: EnvReport = { ...blank, input: spec.input, name: spec.paths.name };
    envs.push(report);
    log(
      startGroup(
        `comfydock ${command}: ${spec.paths.name} on ${machine} (${spec.checkout?.label ?? spec.input})`,
      ),
    );
    try {
      const approval = approvals?.get(spec.paths.name);
      if (approval instanceof CdError) throw approval;
      report.outcome = await runEnv({
        ...spec,
        command,
        context: {
          machine,
          locked: inputs.locked,
          untrusted,
          approve: approval ? approver(approval, machine, report) : undefined,
        },
      });
      if (approval) report.approvedOn = approval.pr;
    } catch (e) {
      report.error = asCdError(e, "ACTION_ENV_FAILED");
    } finally {
      log(endGroup());
    }
  }

  const mdOpts: MdOpts = { runUrl: inputs.runUrl, sha: pr?.headSha ?? inputs.sha, machine };
  const comment = command === "plan" && inputs.comment;
  if (comment && pr === null && envs.length > 0) {
    notes.push(`Not a pull request (${inputs.eventName ?? "no event"}): no plan comment posted.`);
  }
  // A fork's pull_request run has a read-only token: its plan goes to the summary only.
  const readOnlyToken = pr?.fork === true && inputs.eventName === "pull_request";
  if (comment && pr && readOnlyToken) {
    notes.push(
      "Its token is read-only (pull_request from a fork): the plan is in this summary, not in a comment.",
    );
  }
  if (envs.length > 0 && (command === "drift" || (comment && pr !== null && !readOnlyToken))) {
    try {
      await reportOnGitHub(inputs, envs, pr, await gh(), mdOpts);
    } catch (e) {
      errors.push(asCdError(e, "GITHUB_API"));
    }
  }

  const changes = envs.some((r) => (r.outcome?.plan?.actions.length ?? 0) > 0);
  const failed = errors.length > 0 || envs.some((r) => r.error || r.githubError || r.outcome?.exitcode === 1);
  const scrub = (s: string) => redactSecrets(s, [inputs.token]);
  const result: ActionResult = {
    command,
    exitcode: failed ? 1 : changes && command !== "apply" ? 2 : 0,
    changes,
    planJsonPath: await writePlanJson(inputs, envs),
    envs,
    errors,
    annotations: (await buildAnnotations(command, errors, envs, inputs.workspace, machine)).map(scrub),
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
