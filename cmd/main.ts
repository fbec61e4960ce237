#!/usr/bin/env -S deno run -A
/**
 * The CLI entry: parses arguments and dispatches to one file per command group. Commands render results;
 * the work lives in reconcile/, providers/ and workspace/. Heavy modules are imported inside actions so
 * `--help` and no-op commands start fast.
 */
import { Command } from "@commander-js/extra-typings";
import { CdError, errorMessage } from "../lib/errors.ts";
import { redactSecrets } from "../lib/redact.ts";
import { colorEnabledByDefault, configureUi, info, paint, printJson, ui } from "../lib/ui.ts";
import denoJson from "../deno.json" with { type: "json" };
import { registerEnvCommands } from "./env.ts";
import { registerReconcileCommands } from "./reconcile.ts";
import { registerNodeCommands } from "./node.ts";
import { registerModelCommands } from "./model.ts";
import { registerWorkflowCommands } from "./workflow.ts";
import { registerBundleCommands } from "./bundle.ts";
import { registerActionCommand } from "./action.ts";
import { registerCompletionsCommand } from "./completions.ts";
import { registerHealthCommand } from "./health.ts";

export const VERSION = denoJson.version;

export function buildProgram(): Command {
  const program = new Command()
    .name("comfydock")
    .description("Declarative, reproducible ComfyUI environments: .cec/pyproject.toml is the desired state.")
    .option("-e, --env <name>", "environment to act on (default: the active one)")
    .option("--json", "machine-readable output on stdout")
    .option("-y, --yes", "answer yes to every question (needed when stdin is not a terminal)")
    .option("--debug", "show stack traces and debug output")
    .option("--no-color", "plain output (also when NO_COLOR is set)")
    .option("--lock-timeout <seconds>", "wait up to this long for another command's lock on the environment")
    .showSuggestionAfterError(true)
    .showHelpAfterError("(run 'comfydock --help' for the list of commands)")
    .hook("preAction", (_this, action) => {
      const o = action.optsWithGlobals() as {
        json?: boolean;
        debug?: boolean;
        yes?: boolean;
        color?: boolean;
      };
      configureUi({
        json: !!o.json,
        debug: !!o.debug,
        yes: !!o.yes,
        color: o.color !== false && colorEnabledByDefault(),
      });
    });
  program.configureHelp({ sortSubcommands: false, showGlobalOptions: true });
  program.addHelpText("afterAll", "\n-V, --version (before any command) prints the version.");
  registerEnvCommands(program);
  registerReconcileCommands(program);
  registerHealthCommand(program);
  registerNodeCommands(program);
  registerModelCommands(program);
  registerWorkflowCommands(program);
  registerBundleCommands(program);
  registerActionCommand(program);
  registerCompletionsCommand(program);
  return program as unknown as Command;
}

/** Renders an error the way users see it; returns the exit code. */
export function renderError(e: unknown): number {
  if (e instanceof CdError) {
    // Last line of defence: whatever a message echoes (a URL, a server's reply) is shown without credentials.
    if (ui.json) {
      const { code, message, hint } = e.toJSON();
      printJson({
        error: { code, message: redactSecrets(message), ...(hint ? { hint: redactSecrets(hint) } : {}) },
      });
    }
    info(`${paint("red", "error:")} ${redactSecrets(e.message)}`);
    if (e.hint) info(`${paint("yellow", "hint:")} ${redactSecrets(e.hint)}`);
    if (ui.debug && e.stack) info(e.stack);
    return e.exitCode;
  }
  info(`${paint("red", "error:")} ${redactSecrets(errorMessage(e))}`);
  info(`${paint("yellow", "hint:")} this is unexpected; run again with --debug and report the output`);
  if (ui.debug && e instanceof Error && e.stack) info(e.stack);
  return 1;
}

/**
 * `-V/--version` counts only before a command: commander would otherwise take it anywhere and swallow
 * subcommand options of the same name (`node update ID --version 1.2.0`).
 */
export function wantsVersion(args: string[]): boolean {
  const flag = args.findIndex((a) => a === "--version" || a === "-V");
  const command = args.findIndex((a) => !a.startsWith("-"));
  return flag >= 0 && (command < 0 || flag < command);
}

if (import.meta.main) {
  if (wantsVersion(Deno.args)) {
    console.log(VERSION);
    Deno.exit(0);
  }
  const program = buildProgram();
  try {
    await program.parseAsync(Deno.args, { from: "user" });
  } catch (e) {
    Deno.exitCode = renderError(e);
  }
}
