/** Markdown building blocks for what ComfyDock posts to GitHub (comments, issues, step summaries). */

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
 * A rendered plan as a ```diff block: Terraform-style symbols indented in the text are moved to column 0,
 * where GitHub's diff highlighting sees them (`~`, `-/+` and notes' `!` become `!`, shown as changed).
 */
export function planDiffBlock(rendered: string): string {
  const lines = rendered.split("\n").map((line) => {
    const m = /^(\s*)(-\/\+|[+~!-])(\s.*)?$/.exec(line);
    if (!m) return line ? `  ${line}` : line;
    const sym = m[2] === "+" || m[2] === "-" ? m[2] : "!";
    return `${sym} ${m[1]}${m[3]?.trimStart() ?? ""}`;
  });
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
