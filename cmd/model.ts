/** Models: scan, find, list, show, add, remove, sources, index rebuild. */
import type { Command } from "@commander-js/extra-typings";
import { notBuilt } from "./context.ts";

export function registerModelCommands(program: Command): void {
  const model = program.command("model").description("content-addressed models");
  model.command("scan").argument("[paths...]").option("--full", "compute full hashes now")
    .action(() => notBuilt("model scan", 6));
  model.command("find").argument("<query>").action(() => notBuilt("model find", 6));
  model.command("list").action(() => notBuilt("model list", 6));
  model.command("show").argument("<keyOrHash>").action(() => notBuilt("model show", 6));
  model.command("add").argument("<source>", "PATH|URL|HASH|hf:REPO/FILE|civitai:VERSION_ID")
    .option("--category <c>").option("--key <k>").action(() => notBuilt("model add", 6));
  model.command("remove").argument("<key>").action(() => notBuilt("model remove", 6));
  model.command("sources").argument("<key>").action(() => notBuilt("model sources", 6));
  model.command("index").command("rebuild").action(() => notBuilt("model index rebuild", 6));
}
