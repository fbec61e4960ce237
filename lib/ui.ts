/**
 * Output for humans and machines. Commands produce data; this module decides how it looks. Human text goes
 * to stdout, progress and diagnostics to stderr (so `--json` output stays parseable).
 */
export interface UiOptions {
  json: boolean;
  color: boolean;
  debug: boolean;
  yes: boolean;
}

export const ui: UiOptions = { json: false, color: false, debug: false, yes: false };

export function configureUi(opts: Partial<UiOptions>): void {
  Object.assign(ui, opts);
}

export function colorEnabledByDefault(): boolean {
  return !Deno.env.get("NO_COLOR") && Deno.stdout.isTerminal();
}

const codes = { red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36, gray: 90, bold: 1 } as const;
export type Color = keyof typeof codes;

export function paint(color: Color, s: string): string {
  return ui.color ? `\x1b[${codes[color]}m${s}\x1b[${color === "bold" ? 22 : 39}m` : s;
}

export function println(s = ""): void {
  console.log(s);
}

/** Diagnostics and progress: stderr, so stdout carries only the result. */
export function info(s: string): void {
  console.error(s);
}

export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}

/** A step line for long operations (`==> cloning ComfyUI`); silent in --json mode. */
export function step(s: string): void {
  if (!ui.json) console.error(paint("cyan", "==> ") + s);
}
