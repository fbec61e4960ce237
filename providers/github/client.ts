/**
 * The GitHub side of the Action, over octokit: one sticky plan comment per machine and environment on a pull
 * request, one drift issue per machine and environment (a fleet of runners reconciling the same `.cec` never
 * overwrite each other), and the merged pull request of a commit with its plan comment (approved plans).
 * Comments and issues are found by hidden HTML markers in their bodies, so re-runs edit what is there instead
 * of adding more. The token never leaves this module: errors carry the HTTP status and the endpoint, and any
 * text that came back is scrubbed of the token.
 */
import { CdError, errorMessage } from "../../lib/errors.ts";
import { redactSecrets } from "../../lib/redact.ts";
import { z } from "zod";

export const DEFAULT_API_URL = "https://api.github.com";

export type StickyResult = { action: "created" | "updated" | "unchanged"; id: number; url: string };

export type DriftResult =
  | { action: "opened" | "reopened" | "commented" | "closed" | "unchanged"; issue: number; url: string }
  | { action: "none" };

/** Which environment on which machine (a runner): what comments and issues are keyed by. */
export interface Target {
  machine: string;
  env: string;
}

/** A drift report: its markdown, and a hash of what it says (not of when or by which run it was found). */
export interface DriftReport {
  markdown: string;
  hash: string;
}

export interface MergedPullRequest {
  number: number;
  headSha: string | null;
  url: string;
}

export interface GitHubClient {
  /** Creates or edits in place the one comment on the PR whose body contains `marker`. */
  upsertStickyComment(repo: string, prNumber: number, marker: string, body: string): Promise<StickyResult>;
  /**
   * Keeps one issue per machine and environment in step with drift: `report` = the drift, or null when the
   * environment is clean. Opens (or reopens) the issue on drift, comments when a later run finds a different
   * report (the same report again changes nothing), closes it with a comment once clean.
   */
  reportDrift(repo: string, target: Target, label: string, report: DriftReport | null): Promise<DriftResult>;
  /** The merged pull request whose merge commit is `sha` (a push to main), or null. */
  mergedPullRequestOf(repo: string, sha: string): Promise<MergedPullRequest | null>;
  /** The body of the comment on issue/PR `number` holding `marker` and written by a bot account, or null. */
  botCommentWith(repo: string, number: number, marker: string): Promise<{ body: string; url: string } | null>;
}

/** Hidden marker of the sticky plan comment of one environment on one machine. */
export function planMarker(t: Target): string {
  return `<!-- comfydock:plan:${markerName(t)} -->`;
}

/** Hidden marker of the drift issue of one environment on one machine. */
export function driftMarker(t: Target): string {
  return `<!-- comfydock:drift:${markerName(t)} -->`;
}

// Percent-encoding keeps `-->` (and `/`, the separator) out of the names; plain names stay readable.
function markerName(t: Target): string {
  return `${encodeURIComponent(t.machine)}/${encodeURIComponent(t.env)}`;
}

const REPORT_HASH = /<!-- comfydock:drift-report:([0-9a-f]{64}) -->/;

/**
 * A comment is ComfyDock's when it holds the marker AND a bot account wrote it (the workflow's GITHUB_TOKEN is
 * `github-actions[bot]`; a GitHub App's token is its bot): anyone can post a comment quoting a marker, and
 * such a comment is neither edited over nor read back as an approved plan.
 */
function ours(c: { body?: string | null; user?: { type: string } | null }, marker: string): boolean {
  return c.user?.type === "Bot" && (c.body ?? "").includes(marker);
}

const Comment = z.object({
  id: z.number(),
  body: z.string().nullish(),
  html_url: z.string(),
  user: z.object({ type: z.string() }).nullish(),
});
const Pull = z.object({
  number: z.number(),
  html_url: z.string(),
  merged_at: z.string().nullish(),
  merge_commit_sha: z.string().nullish(),
  head: z.object({ sha: z.string().nullish() }),
});
const Issue = z.object({
  number: z.number(),
  state: z.enum(["open", "closed"]),
  body: z.string().nullish(),
  html_url: z.string(),
  updated_at: z.string(),
  pull_request: z.unknown().optional(),
  user: z.object({ type: z.string() }).nullish(),
});
type Issue = z.infer<typeof Issue>;

function repoParts(repo: string): { owner: string; repo: string } {
  const m = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(repo);
  if (!m) {
    throw new CdError("GITHUB_REPOSITORY", `'${repo}' is not an 'owner/name' repository`, {
      hint: "GITHUB_REPOSITORY is set by GitHub Actions; when running by hand set it to owner/name",
    });
  }
  return { owner: m[1], repo: m[2] };
}

function statusOf(e: unknown): number {
  const status = (e as { status?: unknown } | null)?.status;
  return typeof status === "number" ? status : 0;
}

function hintFor(status: number, endpoint: string): string {
  const onIssues = endpoint.includes("/issues") || endpoint.includes("/labels");
  if (status === 401) {
    return "the token was rejected: pass a valid 'github-token' (usually ${{ secrets.GITHUB_TOKEN }}) or set GITHUB_TOKEN";
  }
  if (status === 403) {
    return onIssues && !endpoint.includes("/comments")
      ? "the token may not write issues: add 'permissions: issues: write' to the workflow job"
      : "the token may not comment: add 'permissions: pull-requests: write' (plan) or 'issues: write' (drift) " +
        "to the workflow job; pull requests from forks get a read-only token";
  }
  if (status === 404) return "check GITHUB_REPOSITORY and that the token can see the repository";
  if (status === 0 || status >= 500) {
    return "GitHub (or GITHUB_API_URL) failed or is unreachable; re-run the job";
  }
  return "see the GitHub REST API documentation for this endpoint";
}

export interface GitHubClientOptions {
  /** From the `github-token` input or GITHUB_TOKEN. */
  token: string;
  /** GITHUB_API_URL (GitHub Enterprise, tests); default https://api.github.com. */
  baseUrl?: string;
}

export async function createGitHubClient(opts: GitHubClientOptions): Promise<GitHubClient> {
  if (!opts.token) {
    throw new CdError("GITHUB_TOKEN_MISSING", "no GitHub token", {
      hint: "pass 'github-token: ${{ secrets.GITHUB_TOKEN }}' to the action, or set GITHUB_TOKEN",
    });
  }
  const token = opts.token;
  const baseUrl = (opts.baseUrl || DEFAULT_API_URL).replace(/\/+$/, "");
  const { Octokit } = await import("@octokit/rest");
  const silent = () => {};
  const octokit = new Octokit({
    auth: token,
    baseUrl,
    userAgent: "comfydock-action",
    log: { debug: silent, info: silent, warn: silent, error: silent },
  });

  /** Any failure of an API call as a CdError naming status and endpoint, never the token. */
  function apiError(e: unknown, method: string, endpoint: string): CdError {
    const status = statusOf(e);
    const detail = redactSecrets(errorMessage(e), [token]).split("\n")[0];
    return new CdError(
      "GITHUB_API",
      `GitHub API ${status || "request"} failed on ${method} ${endpoint}: ${detail}`,
      {
        hint: hintFor(status, endpoint),
      },
    );
  }

  async function call<T>(method: string, endpoint: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw apiError(e, method, endpoint);
    }
  }

  async function listAll<S extends z.ZodType>(
    route: string,
    params: Record<string, string | number>,
    schema: S,
  ): Promise<z.infer<S>[]> {
    const [method, endpoint] = route.split(" ");
    const items = await call(method, endpoint, () => octokit.paginate(route, { ...params, per_page: 100 }));
    const parsed = z.array(schema).safeParse(items);
    if (!parsed.success) {
      throw new CdError(
        "GITHUB_API",
        `unexpected reply from ${method} ${endpoint}: ${parsed.error.issues[0].message}`,
        {
          hint: "is GITHUB_API_URL pointing at a GitHub REST API?",
        },
      );
    }
    return parsed.data;
  }

  async function createComment(o: { owner: string; repo: string }, issue: number, body: string) {
    const res = await call(
      "POST",
      "/repos/{owner}/{repo}/issues/{issue_number}/comments",
      () => octokit.rest.issues.createComment({ ...o, issue_number: issue, body }),
    );
    return Comment.parse(res.data);
  }

  async function updateIssue(
    o: { owner: string; repo: string },
    issue: number,
    fields: { body?: string; state?: "open" | "closed"; state_reason?: "completed" | "reopened" },
  ) {
    const res = await call(
      "PATCH",
      "/repos/{owner}/{repo}/issues/{issue_number}",
      () => octokit.rest.issues.update({ ...o, issue_number: issue, ...fields }),
    );
    return Issue.parse(res.data);
  }

  async function ensureLabel(o: { owner: string; repo: string }, name: string): Promise<void> {
    try {
      await octokit.rest.issues.getLabel({ ...o, name });
      return;
    } catch (e) {
      if (statusOf(e) !== 404) throw apiError(e, "GET", "/repos/{owner}/{repo}/labels/{name}");
    }
    await call("POST", "/repos/{owner}/{repo}/labels", () =>
      octokit.rest.issues.createLabel({
        ...o,
        name,
        color: "d93f0b",
        description: "An environment differs from its .cec (reported by ComfyDock)",
      }));
  }

  /**
   * The drift issue of the environment: the open one if any, else the most recently updated closed one. Like
   * comments, only an issue a bot opened counts: one quoting the marker is someone else's, never edited over.
   */
  async function findDriftIssue(o: { owner: string; repo: string }, marker: string, label: string) {
    const all = await listAll(
      "GET /repos/{owner}/{repo}/issues",
      { ...o, labels: label, state: "all" },
      Issue,
    );
    const mine = all.filter((i: Issue) => !i.pull_request && ours(i, marker));
    return mine.find((i: Issue) => i.state === "open") ??
      mine.sort((a: Issue, b: Issue) => b.updated_at.localeCompare(a.updated_at))[0];
  }

  return {
    async upsertStickyComment(repo, prNumber, marker, body) {
      const o = repoParts(repo);
      const clean = redactSecrets(body, [token]);
      const full = clean.includes(marker) ? clean : `${marker}\n${clean}`;
      const comments = await listAll(
        "GET /repos/{owner}/{repo}/issues/{issue_number}/comments",
        { ...o, issue_number: prNumber },
        Comment,
      );
      const existing = comments.find((c) => ours(c, marker));
      if (!existing) {
        const c = await createComment(o, prNumber, full);
        return { action: "created", id: c.id, url: c.html_url };
      }
      if (existing.body === full) return { action: "unchanged", id: existing.id, url: existing.html_url };
      const res = await call(
        "PATCH",
        "/repos/{owner}/{repo}/issues/comments/{comment_id}",
        () => octokit.rest.issues.updateComment({ ...o, comment_id: existing.id, body: full }),
      );
      const c = Comment.parse(res.data);
      return { action: "updated", id: c.id, url: c.html_url };
    },

    async reportDrift(repo, target, label, drift) {
      const o = repoParts(repo);
      const marker = driftMarker(target);
      const issue = await findDriftIssue(o, marker, label);
      const where = `environment \`${target.env}\` on \`${target.machine}\``;
      if (drift === null) {
        if (!issue || issue.state === "closed") return { action: "none" };
        await createComment(o, issue.number, `No drift any more: ${where} matches its .cec.`);
        await updateIssue(o, issue.number, { state: "closed", state_reason: "completed" });
        return { action: "closed", issue: issue.number, url: issue.html_url };
      }
      const report = redactSecrets(drift.markdown, [token]);
      // The hash of what the report says rides along hidden, so the next run can tell "nothing new".
      const body = `${marker}\n<!-- comfydock:drift-report:${drift.hash} -->\n${report}`;
      if (!issue) {
        await ensureLabel(o, label);
        const res = await call(
          "POST",
          "/repos/{owner}/{repo}/issues",
          () =>
            octokit.rest.issues.create({
              ...o,
              title: `Drift: environment ${target.env} on ${target.machine} differs from its .cec`,
              body,
              labels: [label],
            }),
        );
        const created = Issue.parse(res.data);
        return { action: "opened", issue: created.number, url: created.html_url };
      }
      const reopen = issue.state === "closed";
      if (!reopen && REPORT_HASH.exec(issue.body ?? "")?.[1] === drift.hash) {
        return { action: "unchanged", issue: issue.number, url: issue.html_url };
      }
      // The body always shows the latest report; a comment marks each new finding (and notifies).
      await updateIssue(
        o,
        issue.number,
        reopen ? { body, state: "open", state_reason: "reopened" } : { body },
      );
      await createComment(o, issue.number, report);
      return { action: reopen ? "reopened" : "commented", issue: issue.number, url: issue.html_url };
    },

    async mergedPullRequestOf(repo, sha) {
      const o = repoParts(repo);
      const pulls = await listAll(
        "GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls",
        { ...o, commit_sha: sha },
        Pull,
      );
      const merged = pulls.find((p) => p.merge_commit_sha === sha && p.merged_at) ?? null;
      return merged && { number: merged.number, headSha: merged.head.sha ?? null, url: merged.html_url };
    },

    async botCommentWith(repo, number, marker) {
      const o = repoParts(repo);
      const comments = await listAll(
        "GET /repos/{owner}/{repo}/issues/{issue_number}/comments",
        { ...o, issue_number: number },
        Comment,
      );
      const c = comments.find((c) => ours(c, marker));
      return c ? { body: c.body ?? "", url: c.html_url } : null;
    },
  };
}
