/** Workspace and environment lifecycle: init, create, list, use, delete, run, config, comfyui update. */
import type { Command } from "@commander-js/extra-typings";
import { notBuilt } from "./context.ts";

export function registerEnvCommands(program: Command): void {
  program.command("init").description(
    "create a workspace (default: $COMFYDOCK_HOME or ~/.comfydock_workspace)",
  )
    .argument("[path]").action(() => notBuilt("init", 12));
  program.command("create").description("create an environment: ComfyUI checkout, venv, .cec repo")
    .argument("<name>")
    .option("--python <version>", "Python X.Y (an interpreter already on this machine)")
    .option("--comfyui <ref>", "ComfyUI tag, commit or 'latest'", "latest")
    .option("--comfyui-url <url>", "ComfyUI git URL (default $COMFYDOCK_COMFYUI_URL or the official repo)")
    .option("--torch-backend <backend>", "auto|cpu|cuXXX|rocmX.Y", "auto")
    .option("--use", "make it the active environment")
    .action(() => notBuilt("create", 12));
  program.command("list").description("list environments (active marked)").action(() => notBuilt("list", 12));
  program.command("use").description("set the active environment").argument("<name>")
    .action(() => notBuilt("use", 12));
  program.command("delete").description("delete an environment").argument("<name>")
    .option("--force", "delete even with uncommitted workflow edits").action(() => notBuilt("delete", 12));
  program.command("run").description("start ComfyUI in the environment (args after -- go to main.py)")
    .argument("[args...]").action(() => notBuilt("run", 12));
  const config = program.command("config").description("workspace configuration and API keys");
  config.command("get").argument("<key>").action(() => notBuilt("config get", 12));
  config.command("set").argument("<key>").argument("<value>").action(() => notBuilt("config set", 12));
  config.command("list").action(() => notBuilt("config list", 12));
  config.command("set-key").argument("<service>", "civitai|huggingface|github")
    .action(() => notBuilt("config set-key", 12));
  program.command("comfyui").description("ComfyUI core version")
    .command("update").argument("[version]", "TAG|COMMIT|latest").action(() =>
      notBuilt("comfyui update", 12)
    );
}
