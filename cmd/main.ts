#!/usr/bin/env -S deno run -A
/**
 * The CLI entry: parses arguments and dispatches to one file per command group. Commands render results;
 * the work lives in reconcile/, providers/ and workspace/. Heavy modules are imported inside actions so
 * `--help` and no-op commands start fast.
 */
import { Command, CommanderError } from "@commander-js/extra-typings";
import process from "node:process";
import { CdError, errorMessage } from "../lib/errors.ts";
import { redactSecrets } from "../lib/redact.ts";
import {
  colorEnabledByDefault,
  configureUi,
  emitJson,
  info,
  jsonError,
  paint,
  printJson,
  ui,
} from "../lib/ui.ts";
import denoJson from "../deno.json" with { type: "json" };
import { registerEnvCommands } from "./env.ts";
import { registerReconcileCommands } from "./reconcile.ts";
import { registerNodeCommands } from "./node.ts";
import { registerModelCommands } from "./model.ts";
import { registerWorkflowCommands } from "./workflow.ts";
import { registerBundleCommands } from "./bundle.ts";
import { registerAdoptCommand } from "./adopt.ts";
import { registerActionCommand } from "./action.ts";
import { registerCompletionsCommand } from "./completions.ts";
import { registerHealthCommand } from "./health.ts";
import { complete, pathOf, walkWords } from "./complete.ts";

export const VERSION = denoJson.version;

/**
 * The command path that `args` name, as far as they name one (for errors commander raises before any
 * action runs: `node add` for `node add --bogus`).
 */
function commandPathOf(program: Command, args: string[]): string {
  return pathOf(walkWords(program, args).cmd);
}

/** `--json` anywhere before `--`: decided before parsing, so commander's own errors come as JSON too. */
function wantsJson(args: string[]): boolean {
  const end = args.indexOf("--");
  return (end < 0 ? args : args.slice(0, end)).includes("--json");
}

/** commander's error codes (`commander.unknownOption`) as ours (`USAGE_UNKNOWN_OPTION`). */
function usageCode(code: string): string {
  if (code === "commander.help") return "USAGE_MISSING_COMMAND";
  const name = code.replace(/^commander\./, "").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
  return `USAGE_${name}`;
}

/** A commander usage error as a CdError: its message without "error: ", its "Did you mean" as the hint. */
function usageError(e: CommanderError, command: string): CdError {
  const lines = e.message.replace(/^error: /, "").split("\n").map((l) => l.trim()).filter(Boolean);
  const suggestion = lines.find((l) => /^\(Did you mean/.test(l))?.replace(/^\((.*)\)$/, "$1");
  const help = `run 'comfydock ${command ? `${command} ` : ""}--help' for usage`;
  const message = e.code === "commander.help"
    ? `'comfydock ${command}' needs a subcommand`
    : lines.filter((l) => !/^\(Did you mean/.test(l)).join(" ");
  return new CdError(usageCode(e.code), message, { hint: suggestion ? `${suggestion} (${help})` : help });
}

export function buildProgram(): Command {
  const program = new Command()
    // Before any subcommand is added: they inherit both. Errors and help then come back to main() as
    // exceptions, which renders them (as JSON with --json) instead of commander exiting on its own.
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ui.json ? void (helpText += s) : process.stdout.write(s),
    })
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
        command: pathOf(action),
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
  registerAdoptCommand(program);
  registerActionCommand(program);
  registerCompletionsCommand(program);
  return program as unknown as Command;
}

/** Help printed with --json: it becomes the `data.help` of the one document. */
let helpText = "";

/** Renders an error the way users see it (and as the JSON document with --json); returns the exit code. */
export function renderError(e: unknown): number {
  // Last line of defence: whatever a message echoes (a URL, a server's reply) is shown without credentials
  // (jsonError redacts the JSON document the same way).
  if (ui.json) emitJson(jsonError(e));
  if (e instanceof CdError) {
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

/** Runs the CLI on `args`: parse, dispatch, render the outcome (one JSON document with --json). */
export async function main(args: string[]): Promise<void> {
  const program = buildProgram();
  if (args[0] === "__complete") {
    // What the completion scripts ask on TAB (cmd/complete.ts): plain lines, never an error.
    const out = await complete(program, Number(args[1]), args.slice(2)).catch(() => []);
    if (out.length) console.log(out.join("\n"));
    return;
  }
  configureUi({ json: wantsJson(args), command: commandPathOf(program, args) });
  if (wantsVersion(args)) {
    if (!ui.json) return console.log(VERSION);
    configureUi({ command: "" });
    printJson({ version: VERSION });
    return emitJson();
  }
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (e) {
    if (!(e instanceof CommanderError)) {
      Deno.exitCode = renderError(e);
      return;
    }
    // commander printed its message (and the help hint) to stderr already.
    Deno.exitCode = e.exitCode;
    if (!ui.json) return;
    if (e.exitCode === 0) printJson({ help: helpText });
    else return emitJson(jsonError(usageError(e, ui.command)));
  }
  if (ui.json) emitJson();
}

if (import.meta.main) await main(Deno.args);
