/** The GitHub Action's entrypoint. */
import type { Command } from "@commander-js/extra-typings";
import { notBuilt } from "./context.ts";

export function registerActionCommand(program: Command): void {
  program.command("action").description("GitHub Action entrypoint (reads INPUT_* variables)")
    .action(() => notBuilt("action", 9));
}
