/** Workflows: status, track, untrack, sync, analyze, import, export. */
import type { Command } from "@commander-js/extra-typings";
import { notBuilt } from "./context.ts";

export function registerWorkflowCommands(program: Command): void {
  const wf = program.command("workflow").description("tracked ComfyUI workflows");
  wf.command("status").action(() => notBuilt("workflow status", 7));
  wf.command("track").argument("[name]").option("--all").option("--pattern <glob>")
    .action(() => notBuilt("workflow track", 7));
  wf.command("untrack").argument("<name>").action(() => notBuilt("workflow untrack", 7));
  wf.command("sync").option("--strategy <s>", "ours|theirs").action(() => notBuilt("workflow sync", 7));
  wf.command("analyze").argument("<file>").action(() => notBuilt("workflow analyze", 7));
  wf.command("import").argument("<fileOrUrl>").action(() => notBuilt("workflow import", 7));
  wf.command("export").argument("<name>").option("--out <file>").action(() => notBuilt("workflow export", 7));
}
