/** Environment bundles: export and import. */
import type { Command } from "@commander-js/extra-typings";
import { notBuilt } from "./context.ts";

export function registerBundleCommands(program: Command): void {
  program.command("export").description("pack an environment's desired state into a file")
    .argument("[name]").option("--out <file>").option("--with-dev-nodes").option("--with-models")
    .action(() => notBuilt("export", 8));
  program.command("import").description("create an environment from a bundle, a git URL or a path")
    .argument("<source>").option("--name <name>").action(() => notBuilt("import", 8));
}
