/** Markdown building blocks for what ComfyDock posts to GitHub (comments, issues, step summaries). */
import type { ActionKind, Plan } from "../reconcile/types.ts";
import { summaryLine, symbolOf } from "./plan_text.ts";

/** GitHub rejects comment and issue bodies over 65,536 characters; stay below with room for a marker. */
export const GITHUB_BODY_LIMIT = 65_000;

/** Text that GitHub must show as typed: no HTML tags swallowed, no accidental emphasis or links. */
export function escapeMarkdown(text: string): string {
  return text.replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]!)
    .replace(/([\\`*_[\]|])/g, "\\$1");
}

/** An inline code span that survives backticks inside the text. */
export function code(text: string): string {
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const ticks = "`".repeat(longest + 1);
  const pad = text.startsWith("`") || text.endsWith("`") ? " " : "";
  return `${ticks}${pad}${text}${pad}${ticks}`;
}

/** A fenced block that cannot be closed early by fences inside the text. */
export function fence(text: string, lang = ""): string {
  const longest = Math.max(2, ...[...text.matchAll(/^ {0,3}(`{3,})/gm)].map((m) => m[1].length));
  const ticks = "`".repeat(longest + 1);
  return `${ticks}${lang}\n${text.replace(/\n+$/, "")}\n${ticks}`;
}

/**
 * A plan as a ```diff block, from the Plan data: GitHub's diff highlighting colours column 0, so `+` and
 * `-` stay themselves and `~`, `-/+` and notes' `!` are shown as `!` (changed), with the real symbol kept
 * in the text.
 */
export function planDiffBlock(plan: Plan): string {
  const column0 = (kind: ActionKind) => (kind === "create" ? "+" : kind === "delete" ? "-" : "!");
  const lines: string[] = [];
  for (const a of plan.actions) {
    lines.push(`${column0(a.kind)} ${symbolOf(a.kind)} ${a.address}: ${a.reason}`);
    for (const d of a.details ?? []) lines.push(`      ${d}`);
  }
  if (plan.notes.length) {
    if (lines.length) lines.push("");
    lines.push("  Notes (not acted on):", ...plan.notes.map((n) => `! ${n}`));
  }
  lines.push("", `  ${summaryLine(plan)}`);
  return fence(lines.join("\n"), "diff");
}

/** Cuts markdown to `limit` characters at a line boundary, closing an open fence, with a note saying so. */
export function truncateMarkdown(text: string, limit: number, note: string): string {
  if (text.length <= limit) return text;
  const room = limit - note.length - 40;
  let cut = text.slice(0, room);
  cut = cut.slice(0, Math.max(0, cut.lastIndexOf("\n")));
  const fences = [...cut.matchAll(/^(`{3,})/gm)];
  const open = fences.length % 2 === 1 ? fences[fences.length - 1][1] : null;
  return `${cut}\n${open ? `${open}\n` : ""}\n${note}\n`;
}
