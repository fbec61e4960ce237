/** The GitHub Action's entrypoint: `comfydock action`, configured by INPUT_* and GITHUB_* variables. */
import type { Command } from "@commander-js/extra-typings";

export function registerActionCommand(program: Command): void {
  program.command("action")
    .description("GitHub Action entrypoint (reads INPUT_* and GITHUB_* variables; see action.yml)")
    .action(async (_o, cmd) => {
      const { readActionInputs } = await import("../action/inputs.ts");
      const { appFor, globals } = await import("./context.ts");
      const { runAction } = await import("../action/run.ts");
      const { redactSecrets } = await import("../lib/redact.ts");
      const { info, printJson, println, step, ui } = await import("../lib/ui.ts");
      const inputs = readActionInputs(Deno.env.toObject(), Deno.cwd());
      // The workspace on the runner (input `workspace`) is where every setting of this run is read from.
      if (inputs.home) Deno.env.set("COMFYDOCK_HOME", inputs.home);
      // Progress and `::group::` markers go to stdout, where the runner reads workflow commands (stderr in
      // --json mode, where stdout is the result document).
      const log = ui.json ? step : (line: string) => println(line.startsWith("::") ? line : `==> ${line}`);
      // The Action never asks: the workflow's trigger is the request (approved plans are checked on their own).
      const app = await appFor(globals(cmd), { confirm: () => Promise.resolve(true), log });
      const result = await runAction(inputs, { ws: app.ws, app, log });
      const scrub = (s: string) => redactSecrets(s, [inputs.token]);
      if (ui.json) {
        // Workflow commands travel in the document: stdout holds nothing else with --json.
        printJson(JSON.parse(scrub(JSON.stringify(
          {
            command: result.command,
            exitcode: result.exitcode,
            changes: result.changes,
            plan_json: result.planJsonPath,
            machine: inputs.machine,
            environments: result.envs.map((r) => ({
              name: r.name,
              input: r.input,
              plan: r.outcome?.plan ?? null,
              validation: r.outcome?.validation ?? null,
              error: r.error,
              github: r.github,
              github_error: r.githubError,
            })),
            errors: result.errors,
            annotations: result.annotations,
          },
        ))));
      } else {
        for (const r of result.envs) {
          if (r.outcome) println(scrub(`${r.name} on ${inputs.machine}:\n${r.outcome.rendered}\n`));
          if (r.github) println(r.github);
        }
      }
      // Workflow commands go to stdout, where the runner reads them; hints follow as plain lines.
      if (!ui.json) { for (const a of result.annotations) console.log(a); }
      for (const e of [...result.errors, ...result.envs.flatMap((r) => [r.error, r.githubError])]) {
        if (e?.hint) info(scrub(`hint (${e.code}): ${e.hint}`));
      }
      if (result.exitcode === 1) {
        const { CdError } = await import("../lib/errors.ts");
        const { reportFailure } = await import("../lib/ui.ts");
        const first = [...result.errors, ...result.envs.map((r) => r.error)].find((e) => e);
        reportFailure(
          new CdError(
            first?.code ?? "ACTION_FAILED",
            scrub(first?.message ?? `the ${result.command} run failed`),
            {
              hint: first?.hint ? scrub(first.hint) : undefined,
            },
          ),
        );
      }
    });
}
