/** Custom nodes: add, remove, update, list, find, show, index update. */
import type { Command } from "@commander-js/extra-typings";
import { notBuilt } from "./context.ts";

export function registerNodeCommands(program: Command): void {
  const node = program.command("node").description("custom nodes (registry, git, local)");
  node.command("add").argument("<spec...>", "registry-id[@version] | git-url[@ref] | path (with --dev)")
    .option("--dev", "a local node you develop (never deleted or overwritten)")
    .option("--no-apply", "only edit and commit .cec").action(() => notBuilt("node add", 10));
  node.command("remove").argument("<id>").action(() => notBuilt("node remove", 10));
  node.command("update").argument("[id]").option("--version <v>").action(() => notBuilt("node update", 10));
  node.command("list").action(() => notBuilt("node list", 10));
  node.command("find").argument("<query>").action(() => notBuilt("node find", 10));
  node.command("show").argument("<id>").action(() => notBuilt("node show", 10));
  node.command("index").command("update").option("--from <fileOrUrl>")
    .action(() => notBuilt("node index update", 10));
}
