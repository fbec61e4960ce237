/**
 * What changed outside ComfyDock, from a Plan: the plan says what apply would do to make disk match `.cec`,
 * so read backwards it says how the disk drifted (a node apply would remove is a node someone installed by
 * hand). Pure: Plan in, groups out, rendered from the same summary as Markdown (issues, step summaries:
 * where Markdown is read) or as plain text (`comfydock drift` in a terminal).
 */
import type { Color } from "../lib/ui.ts";
import type { Action, ActionKind, Plan, ResourceType } from "../reconcile/types.ts";
import { code, escapeMarkdown } from "./markdown.ts";
import { colorOf, symbolOf } from "./plan_text.ts";

export type DriftGroupKey =
  | "comfyui"
  | "unmanaged-nodes"
  | "missing-nodes"
  | "changed-nodes"
  | "packages"
  | "missing-models"
  | "changed-models"
  | "edited-workflows"
  | "missing-workflows";

export interface DriftItem {
  address: string;
  kind: ActionKind;
  reason: string;
  details: string[];
}

export interface DriftGroup {
  key: DriftGroupKey;
  title: string;
  /** What the group means, in a few words ("on disk, not in .cec"). */
  what: string;
  items: DriftItem[];
}

export interface DriftSummary {
  environment: string;
  drifted: boolean;
  groups: DriftGroup[];
  /** Findings apply never acts on (an untracked workflow, a dirty dev node). */
  notes: string[];
}

const ALL: ActionKind[] = ["create", "update", "replace", "delete"];

const GROUPS: { key: DriftGroupKey; title: string; what: string; type: ResourceType; kinds: ActionKind[] }[] =
  [
    {
      key: "comfyui",
      title: "ComfyUI core",
      what: "the checkout differs from the pinned version",
      type: "comfyui",
      kinds: ALL,
    },
    {
      key: "unmanaged-nodes",
      title: "Unmanaged custom nodes",
      what: "on disk, not in .cec",
      type: "node",
      kinds: ["delete"],
    },
    {
      key: "missing-nodes",
      title: "Missing custom nodes",
      what: "in .cec, not on disk",
      type: "node",
      kinds: ["create"],
    },
    {
      key: "changed-nodes",
      title: "Changed custom nodes",
      what: "another version or files edited on disk",
      type: "node",
      kinds: ["update", "replace"],
    },
    {
      key: "packages",
      title: "Python packages",
      what: "the venv differs from uv.lock",
      type: "packages",
      kinds: ALL,
    },
    {
      key: "missing-models",
      title: "Missing models",
      what: "in .cec, not on disk",
      type: "model",
      kinds: ["create"],
    },
    {
      key: "changed-models",
      title: "Changed models",
      what: "the file on disk differs from .cec",
      type: "model",
      kinds: ["update", "replace", "delete"],
    },
    {
      key: "edited-workflows",
      title: "Edited workflows",
      what: "changed in ComfyUI, not in .cec",
      type: "workflow",
      kinds: ["update", "replace", "delete"],
    },
    {
      key: "missing-workflows",
      title: "Missing workflows",
      what: "tracked in .cec, not in ComfyUI",
      type: "workflow",
      kinds: ["create"],
    },
  ];

const MAX_DETAILS = 20;

export function summarizeDrift(plan: Plan): DriftSummary {
  const item = (a: Action): DriftItem => ({
    address: a.address,
    kind: a.kind,
    reason: a.reason,
    details: a.details ?? [],
  });
  const groups = GROUPS.map((g) => ({
    key: g.key,
    title: g.title,
    what: g.what,
    items: plan.actions.filter((a) => a.type === g.type && g.kinds.includes(a.kind)).map(item),
  })).filter((g) => g.items.length > 0);
  return { environment: plan.environment, drifted: plan.actions.length > 0, groups, notes: plan.notes };
}

const FIX =
  "run 'comfydock apply' to make the machine match .cec again, or 'comfydock capture' to record the " +
  "changes made on the machine into .cec and commit them.";

/**
 * Markdown for an issue body or a step summary. `runUrl` links the CI run that found the drift; `machine`
 * names the runner it was found on (a fleet reconciles the same `.cec` on several).
 */
export function renderDriftReport(plan: Plan, opts: { runUrl?: string; machine?: string } = {}): string {
  const s = summarizeDrift(plan);
  const count = plan.actions.length;
  const lines: string[] = [];
  const where = `environment ${code(s.environment)}${opts.machine ? ` on ${code(opts.machine)}` : ""}`;
  if (!s.drifted) {
    lines.push(`### No drift: ${where} matches its .cec`);
  } else {
    lines.push(
      `### Drift: ${where} differs from its .cec`,
      "",
      `${count} difference${count === 1 ? "" : "s"} found on ${plan.created_at}` +
        (opts.runUrl ? ` by [this run](${opts.runUrl})` : "") + ".",
    );
  }
  for (const g of s.groups) {
    lines.push("", `#### ${g.title} (${g.items.length})`, "", `_${g.what}_`, "");
    for (const it of g.items) {
      lines.push(`- ${code(it.address)}: ${escapeMarkdown(it.reason)}`);
      for (const d of it.details.slice(0, MAX_DETAILS)) lines.push(`  - ${escapeMarkdown(d)}`);
      if (it.details.length > MAX_DETAILS) lines.push(`  - ... and ${it.details.length - MAX_DETAILS} more`);
    }
  }
  if (s.notes.length > 0) {
    lines.push("", `#### Other findings (${s.notes.length})`, "", "_shown, never acted on_", "");
    for (const n of s.notes) lines.push(`- ${escapeMarkdown(n)}`);
  }
  if (s.drifted) {
    lines.push("", `**To fix**: ${FIX.replace(/'(comfydock \w+)'/g, "`$1`")}`);
  }
  return lines.join("\n") + "\n";
}

/** The same report for a terminal: plain text (no Markdown escapes), colours through `paint`. */
export function renderDriftText(
  plan: Plan,
  paint: (c: Color, s: string) => string = (_c, s) => s,
): string {
  const s = summarizeDrift(plan);
  const count = plan.actions.length;
  if (!s.drifted && s.notes.length === 0) {
    return `No drift: environment '${s.environment}' matches its .cec.\n`;
  }
  const lines = [
    s.drifted
      ? paint("yellow", `Drift: environment '${s.environment}' differs from its .cec`) +
        ` (${count} difference${count === 1 ? "" : "s"}).`
      : `No drift: environment '${s.environment}' matches its .cec.`,
  ];
  for (const g of s.groups) {
    lines.push("", `${g.title} (${g.items.length}): ${g.what}`);
    for (const it of g.items) {
      lines.push(`  ${paint(colorOf(it.kind), symbolOf(it.kind))} ${it.address}: ${it.reason}`);
      for (const d of it.details.slice(0, MAX_DETAILS)) lines.push(`      ${d}`);
      if (it.details.length > MAX_DETAILS) {
        lines.push(`      ... and ${it.details.length - MAX_DETAILS} more`);
      }
    }
  }
  if (s.notes.length > 0) {
    lines.push("", `Other findings (${s.notes.length}): shown, never acted on`);
    for (const n of s.notes) lines.push(`  ${paint("yellow", "!")} ${n}`);
  }
  if (s.drifted) lines.push("", `To fix: ${FIX}`);
  return lines.join("\n") + "\n";
}
