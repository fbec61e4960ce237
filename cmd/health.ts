/** `comfydock health`: start ComfyUI headless in the environment and report each custom node pack. */
import type { Command } from "@commander-js/extra-typings";
import { CdError } from "../lib/errors.ts";
import { paint, printJson, println, step, ui } from "../lib/ui.ts";
import type { HealthResult } from "../providers/comfyui/health.ts";
import type { Session } from "../workspace/session.ts";
import { type GlobalFlags, globals, withEnv } from "./context.ts";

/** Exit code of an unhealthy environment (0 healthy, 1 error). */
export const UNHEALTHY = 2;

/** `--timeout S` in milliseconds (undefined: the settings' limit). */
function timeoutMs(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    throw new CdError("BAD_TIMEOUT", `--timeout ${raw}: expected a number of seconds`, {
      hint: "for example --timeout 120",
    });
  }
  return n * 1000;
}

/** The check in a session the caller holds (a read session for `health`, the apply's for `--verify`). */
export async function runCheck(s: Session, limitMs?: number): Promise<HealthResult> {
  const { checkHealth } = await import("../workspace/health.ts");
  return await checkHealth(s, { timeoutMs: limitMs, onLine: ui.debug ? step : undefined });
}

/** The report for people (stdout). */
export async function printHealth(r: HealthResult): Promise<void> {
  const { healthHeadline, packLine } = await import("../providers/comfyui/health.ts");
  println(`Health of '${r.environment}': ${paint(r.healthy ? "green" : "red", healthHeadline(r))}`);
  for (const p of r.packs) {
    println(`  ${p.status === "loaded" ? paint("green", "✓") : paint("red", "✗")} ${packLine(p)}`);
  }
  if (!r.started && r.output_tail.length) {
    println("Last lines ComfyUI printed:");
    for (const l of r.output_tail.slice(-12)) println(`  | ${l}`);
  }
  const missing = [...new Set(r.packs.flatMap((p) => p.missing_module ? [p.missing_module] : []))];
  if (r.missing_module) missing.unshift(r.missing_module);
  if (missing.length) {
    println(
      paint("yellow", "hint: ") +
        `missing Python module(s) ${missing.join(", ")}: add the package to the node's dependency group ` +
        `(or [dependency-groups] user) in .cec and apply`,
    );
  }
}

async function healthCommand(opts: { timeout?: string }, g: GlobalFlags): Promise<void> {
  const limitMs = timeoutMs(opts.timeout); // a bad --timeout is refused before anything is locked
  const r = await withEnv(g, "health", "read", (s) => runCheck(s, limitMs));
  if (ui.json) printJson(r);
  else await printHealth(r);
  if (!r.healthy) Deno.exitCode = UNHEALTHY;
}

export function registerHealthCommand(program: Command): void {
  program.command("health").description(
    "start ComfyUI headless (CPU, its CI quick test) and report whether each custom node pack imports",
  )
    .option(
      "--timeout <seconds>",
      "stop a start-up that takes longer (default 300, COMFYDOCK_HEALTH_TIMEOUT)",
    )
    .action((opts, cmd) => healthCommand(opts, globals(cmd)));
}
