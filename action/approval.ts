/**
 * Approved plans (input `approved-plan: required`). The pull request's plan job publishes its plan: the plan
 * JSON under RUNNER_TEMP (the `plan-json` output, to keep as an artifact) and, in the sticky comment of the
 * machine and environment, its hash (shown) and the approved part of it (hidden, gzip + base64 in an HTML
 * comment, at most MAX_EMBEDDED characters). Merging the pull request approves it. The push job finds the
 * pull request of the pushed merge commit, reads that comment (only one written by a bot account: the Action's
 * token), and applies only if the plan it makes now is the approved one:
 *
 * - the same desired state: the fingerprint of the merged `.cec` equals the pull request's (a branch that was
 *   not up to date with main, or a later push, makes another `.cec`);
 * - the same actions: each resource, kind and payload (before/after). Words (reasons, details), notes and the
 *   observed fingerprint are not compared: the push job runs later on the same machine, and what it observes
 *   may legitimately differ in ways that change nothing to do (a workflow saved in the UI, a cache refreshed).
 *   Anything that changes what apply would do (a node installed by hand meanwhile, another merge applied
 *   first) fails the job, naming each difference.
 */
import { CdError, errorMessage } from "../lib/errors.ts";
import { sha256Hex } from "../lib/fsx.ts";
import { BodyLimitError, readBody } from "../lib/http.ts";
import { z } from "zod";
import { actionDifferences, actionKey } from "../reconcile/engine.ts";
import { stableStringify } from "../reconcile/fingerprint.ts";
import type { Action, Plan } from "../reconcile/types.ts";

/** Room left in a 65,536-character comment for the visible plan once the approved one is embedded. */
export const MAX_EMBEDDED = 40_000;
/** Bound on what a decompressed embedded plan may grow to (it is read back from a comment). */
const MAX_DECOMPRESSED = 4 * 1024 * 1024;

const PREFIX = "<!-- comfydock:approved-plan v1 ";

const ApprovedAction = z.object({
  address: z.string(),
  type: z.enum(["comfyui", "node", "packages", "model", "workflow"]),
  kind: z.enum(["create", "update", "replace", "delete"]),
  reason: z.string(),
  before: z.unknown(),
  after: z.unknown(),
});

const ApprovedPlan = z.object({
  format: z.literal(1),
  environment: z.string(),
  machine: z.string(),
  /** The pull request's head commit the plan was made at. */
  head: z.string().nullable(),
  desired: z.string(),
  actions: z.array(ApprovedAction),
});
export type ApprovedPlan = z.infer<typeof ApprovedPlan>;

function approvedPart(plan: Plan, machine: string, head: string | null): ApprovedPlan {
  return {
    format: 1,
    environment: plan.environment,
    machine,
    head,
    desired: plan.fingerprints.desired,
    actions: plan.actions.map((a) => ({
      address: a.address,
      type: a.type,
      kind: a.kind,
      reason: a.reason,
      before: a.before,
      after: a.after,
    })),
  };
}

/** What was approved, as a hash: environment, machine, desired state and actions (not the commit or words). */
function hashOf(p: ApprovedPlan): string {
  return sha256Hex(stableStringify({
    environment: p.environment,
    machine: p.machine,
    desired: p.desired,
    actions: p.actions.map(actionKey),
  }));
}

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

async function gzip(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function gunzip(bytes: Uint8Array): Promise<string> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new DecompressionStream("gzip"),
  );
  // In memory, nothing to wait for: only the size bound applies (no rate rule).
  const all = await readBody(new Response(stream), {
    maxBytes: MAX_DECOMPRESSED,
    minRate: 0,
    stallMs: 60_000,
  })
    .catch((e) => {
      throw e instanceof BodyLimitError ? new Error(`it expands beyond ${MAX_DECOMPRESSED} bytes`) : e;
    });
  return new TextDecoder("utf-8", { fatal: true }).decode(all);
}

/**
 * The plan as the sticky comment carries it: its hash, and the hidden marker holding it (null when it is
 * larger than MAX_EMBEDDED: the comment then says so, and an approval of it cannot be checked).
 */
export async function embedPlan(
  plan: Plan,
  machine: string,
  head: string | null,
): Promise<{ hash: string; marker: string | null }> {
  const part = approvedPart(plan, machine, head);
  const data = toBase64(await gzip(JSON.stringify(part)));
  const marker = `${PREFIX}${data} -->`;
  return { hash: hashOf(part), marker: marker.length <= MAX_EMBEDDED ? marker : null };
}

/** Reads the approved plan embedded in a comment body, checking that it is the one whose hash is shown. */
export async function readApprovedPlan(body: string, where: string): Promise<ApprovedPlan> {
  const start = body.indexOf(PREFIX);
  if (start < 0) {
    throw new CdError("NO_APPROVED_PLAN", `${where} holds no plan that can be approved`, {
      hint: /too large to embed/.test(body)
        ? "the plan was too large to embed in the comment; apply it with 'approved-plan: auto-approve' after " +
          "reviewing it in the plan job's summary"
        : "the plan job failed or has not finished for the pull request's last commit; re-run it",
    });
  }
  const end = body.indexOf(" -->", start);
  const data = body.slice(start + PREFIX.length, end < 0 ? undefined : end);
  let part: ApprovedPlan;
  try {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    part = ApprovedPlan.parse(JSON.parse(await gunzip(bytes)));
  } catch (e) {
    throw new CdError("NO_APPROVED_PLAN", `${where}: the embedded plan cannot be read (${errorMessage(e)})`, {
      hint: "the comment was edited or damaged; re-run the plan job of the pull request",
    });
  }
  const shown = /Plan hash: `([0-9a-f]{64})`/.exec(body)?.[1];
  if (shown !== hashOf(part)) {
    throw new CdError(
      "NO_APPROVED_PLAN",
      `${where}: the embedded plan is not the one whose hash the comment shows`,
      {
        hint: "the comment was edited; re-run the plan job of the pull request and review its plan",
      },
    );
  }
  return part;
}

/** Why `fresh` is not the approved plan, one line per difference; empty when it is. */
export function approvalDifferences(approved: ApprovedPlan, fresh: Plan, machine: string): string[] {
  const lines: string[] = [];
  if (approved.machine !== machine || approved.environment !== fresh.environment) {
    lines.push(
      `the approved plan is for '${approved.environment}' on ${approved.machine}, ` +
        `not '${fresh.environment}' on ${machine}`,
    );
  }
  if (approved.desired !== fresh.fingerprints.desired) {
    lines.push(
      `.cec differs from the one the plan was approved for` +
        `${
          approved.head ? ` (pull request head ${approved.head.slice(0, 12)})` : ""
        }: the branch was not up to ` +
        `date with main, or main changed after it`,
    );
  }
  lines.push(...actionDifferences(approved.actions as Action[], fresh.actions));
  return lines;
}
