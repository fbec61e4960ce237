/** `comfydock adopt PATH`: an existing ComfyUI folder becomes an environment (workspace/adopt.ts). */
import type { Command } from "@commander-js/extra-typings";
import { appFor, globals } from "./context.ts";
import { paint, printJson, println, step, ui } from "../lib/ui.ts";
import { cleanUpOnSignal, printReport } from "./bundle.ts";

export function registerAdoptCommand(program: Command): void {
  program.command("adopt").description(
    "make an existing ComfyUI folder an environment (nodes, venv, models, workflows), its first plan clean",
  )
    .argument("<path>", "the ComfyUI folder (the one holding main.py, or its parent)")
    .option("--name <name>", "environment name (default: the folder's name)")
    .option("--move", "move the folder and its venv into the environment (default: leave it as it is)")
    .option("--python <path>", "the Python ComfyUI runs with (default: venv/ or .venv/ in or beside ComfyUI)")
    .option("--torch-backend <backend>", "cpu | cuXXX | rocmX.Y (default: the installed torch's build)")
    .option("--comfyui <version>", "ComfyUI version of a folder that is not a git checkout")
    .option("--comfyui-url <url>", "ComfyUI repository for a checkout without an origin")
    .action(async (path, opts, cmd) => {
      const g = globals(cmd);
      const app = await appFor(g);
      const { adoptFolder } = await import("../workspace/adopt.ts");
      step(`adopting ${path}`);
      const res = await cleanUpOnSignal(
        "Adopt interrupted; your folder is where it was and nothing was left behind.",
        () =>
          adoptFolder(app, path, {
            name: opts.name,
            move: opts.move,
            python: opts.python,
            torchBackend: opts.torchBackend,
            comfyui: opts.comfyui,
            comfyuiUrl: opts.comfyuiUrl,
          }),
      );
      if (ui.json) return printJson(res);
      println(
        paint("green", `Adopted ${res.comfyuiDir} as environment '${res.environment}'`) +
          ` in ${res.seconds} s`,
      );
      println(`  ${res.root}`);
      println(
        res.moved
          ? `  moved in: ComfyUI/ and its venv now live in the environment`
          : `  your folder was left as it was; the environment has its own ComfyUI checkout, copies of ` +
            `custom_nodes/ and user/, a ${res.venv === "hardlinked" ? "hard-linked" : res.venv} venv and ` +
            `links to your models`,
      );
      printReport(res.report);
      if (res.built) println("  'comfydock plan' shows no changes: the environment matches its .cec.");
      else {
        println(
          `  ${
            res.remaining?.actions.length ?? 0
          } change(s) remain (see 'comfydock -e ${res.environment} plan')`,
        );
      }
      if (!g.env) println(`Select it with 'comfydock use ${res.environment}'.`);
    });
}
