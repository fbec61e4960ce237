/**
 * Human rendering of a Plan, apart from the Plan itself (Terraform's grammar: + ~ - -/+). The terminal, the
 * environment log and Markdown (views/markdown.ts) all render from the Plan data with these symbols.
 */
import type { Color } from "../lib/ui.ts";
import type { Action, ActionKind, Plan } from "../reconcile/types.ts";

const SYMBOL: Record<ActionKind, { sym: string; color: Color; verb: string }> = {
  create: { sym: "+", color: "green", verb: "will be created" },
  update: { sym: "~", color: "yellow", verb: "will be updated" },
  replace: { sym: "-/+", color: "magenta", verb: "will be replaced" },
  delete: { sym: "-", color: "red", verb: "will be removed" },
};

/** The plan symbol of an action kind. */
export function symbolOf(kind: ActionKind): string {
  return SYMBOL[kind].sym;
}

/** The terminal colour of an action kind's symbol. */
export function colorOf(kind: ActionKind): Color {
  return SYMBOL[kind].color;
}

/** One line per action: `+ node.foo: not installed` (the environment log, Markdown). */
export function actionLines(actions: Action[]): string[] {
  return actions.map((a) => `${SYMBOL[a.kind].sym} ${a.address}: ${a.reason}`);
}

export interface PlanSummary {
  add: number;
  change: number;
  remove: number;
}

export function summarize(actions: Action[]): PlanSummary {
  const s = { add: 0, change: 0, remove: 0 };
  for (const a of actions) {
    if (a.kind === "create") s.add++;
    else if (a.kind === "update") s.change++;
    else if (a.kind === "delete") s.remove++;
    else {
      s.add++;
      s.remove++;
    }
  }
  return s;
}

export function summaryLine(plan: Plan): string {
  if (plan.actions.length === 0) return "No changes. Environment matches .cec.";
  const s = summarize(plan.actions);
  return `Plan: ${s.add} to add, ${s.change} to change, ${s.remove} to remove.`;
}

/** `paint` is injected so this module stays pure (the CLI passes lib/ui.ts paint). */
export function renderPlan(plan: Plan, paint: (c: Color, s: string) => string = (_c, s) => s): string {
  const lines: string[] = [];
  if (plan.actions.length > 0) {
    lines.push(`ComfyDock will perform the following actions on environment '${plan.environment}':`, "");
    for (const a of plan.actions) {
      const k = SYMBOL[a.kind];
      lines.push(`  ${paint(k.color, k.sym)} ${paint("bold", a.address)} ${k.verb}: ${a.reason}`);
      for (const d of a.details ?? []) lines.push(`      ${d}`);
    }
    lines.push("");
  }
  if (plan.notes.length > 0) {
    lines.push("Notes (not acted on):");
    for (const n of plan.notes) lines.push(`  ! ${n}`);
    lines.push("");
  }
  lines.push(paint("bold", summaryLine(plan)));
  return lines.join("\n");
}
