/** Workspace and environment lifecycle: init, create, list, use, delete, run, config, comfyui update. */
import type { Command } from "@commander-js/extra-typings";
import {
  appFor,
  changeData,
  configManager,
  confirm,
  type GlobalFlags,
  globals,
  requireWorkspace,
  resolveEnv,
  withEnv,
  workspace,
} from "./context.ts";
import { info, paint, printJson, println } from "../lib/ui.ts";
import type { EnvPaths } from "../reconcile/paths.ts";
import { versionLabel } from "../providers/comfyui/versions.ts";

function gib(bytes: number): string {
  return bytes >= 1 << 30 ? `${(bytes / (1 << 30)).toFixed(1)} GiB` : `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}

/** Reads a secret: all of stdin when piped, else a hidden prompt. Never echoed. */
async function readSecret(service: string): Promise<string> {
  if (!Deno.stdin.isTerminal()) return (await new Response(Deno.stdin.readable).text()).trim();
  const { password, isCancel } = await import("@clack/prompts");
  const v = await password({ message: `API key for ${service}` });
  if (isCancel(v)) {
    const { CdError } = await import("../lib/errors.ts");
    throw new CdError("CANCELLED", "cancelled; nothing was stored");
  }
  return String(v);
}

/**
 * Before `run`: plans (read-only) and warns when the environment differs from `.cec`. Never blocks: the
 * user may want to run what is on disk; a check that cannot be made is reported the same way.
 */
async function warnOnDrift(g: GlobalFlags, paths: EnvPaths): Promise<void> {
  const [{ summaryLine }, { errorMessage }] = await Promise.all([
    import("../views/plan_text.ts"),
    import("../lib/errors.ts"),
  ]);
  try {
    const plan = await withEnv({ ...g, env: paths.name }, "run", "read", async (s) => (await s.plan()).plan);
    if (plan.actions.length === 0) return;
    info(paint("yellow", `warning: environment '${paths.name}' differs from its .cec. ${summaryLine(plan)}`));
    info(`  run 'comfydock -e ${paths.name} apply' to make it match ('comfydock plan' shows the changes);`);
    info("  starting ComfyUI as it is on disk.");
  } catch (e) {
    info(
      paint(
        "yellow",
        `warning: could not check '${paths.name}' against .cec: ${errorMessage(e).split("\n")[0]}`,
      ),
    );
  }
}

async function createCommand(
  name: string,
  opts: {
    python?: string;
    comfyui: string;
    comfyuiUrl?: string;
    torchBackend?: string;
    torchIndex?: string;
    resolveAsOf?: string;
    use?: boolean;
  },
  g: GlobalFlags,
): Promise<void> {
  const ws = await requireWorkspace();
  const { createEnvironment } = await import("../workspace/create.ts");
  const settings = (await (await import("../workspace/workspace.ts")).readWorkspaceMeta(ws)).settings;
  const controller = new AbortController();
  const onInt = () => {
    if (!controller.signal.aborted) {
      info("interrupted: stopping after the current step and cleaning up...");
    }
    controller.abort();
  };
  Deno.addSignalListener("SIGINT", onInt);
  try {
    const env = await createEnvironment(await appFor(g), name, {
      python: opts.python ??
        (typeof settings.default_python === "string" ? settings.default_python : undefined),
      comfyui: opts.comfyui,
      // Unset: the settings' URL (COMFYDOCK_COMFYUI_URL before `config set comfyui_url`, as for every setting).
      comfyuiUrl: opts.comfyuiUrl,
      torchBackend: opts.torchBackend ??
        (typeof settings.default_torch_backend === "string" && !opts.torchIndex
          ? settings.default_torch_backend
          : undefined),
      torchIndex: opts.torchIndex,
      resolveAsOf: opts.resolveAsOf,
      use: !!opts.use,
      signal: controller.signal,
    });
    if (g.json) printJson(env);
    else {
      println(paint("green", `Created environment '${env.name}' in ${env.seconds} s`));
      println(
        `  ComfyUI ${versionLabel(env.comfyui_version, env.comfyui_commit)}, Python ${env.python_version}, ` +
          `torch ${env.torch ?? "not installed"} (${env.torch_backend})`,
      );
      if (env.exclude_newer) println(`  packages resolved as of ${env.exclude_newer} (exclude-newer)`);
      println(`  ${env.path}`);
      println(
        env.active
          ? `  active: yes. Start it with 'comfydock run'`
          : `  switch to it with 'comfydock use ${env.name}'`,
      );
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onInt);
  }
}

async function deleteCommand(name: string, opts: { force?: boolean }, g: GlobalFlags): Promise<void> {
  const ws = await requireWorkspace();
  const { deleteEnvironment } = await import("../workspace/workspace.ts");
  const summary = await deleteEnvironment(ws, name, {
    force: !!opts.force,
    lockTimeoutMs: (await appFor(g)).lockTimeoutMs,
    confirm: (s) => {
      const lose = [
        ...(s.untrackedWorkflows.length ? [`${s.untrackedWorkflows.length} untracked workflow(s)`] : []),
        ...(s.modelFiles ? [`${s.modelFiles} model file(s) in ComfyUI/models (${gib(s.modelBytes)})`] : []),
        ...(s.modifiedWorkflows.length ? [`${s.modifiedWorkflows.length} uncaptured workflow edit(s)`] : []),
      ];
      return confirm(
        `Delete environment '${name}' (${s.path})${lose.length ? `, losing ${lose.join(", ")}` : ""}?`,
        { destructive: true },
      );
    },
  });
  if (summary === null) {
    printJson({ name, deleted: false });
    return info("Cancelled; nothing was deleted.");
  }
  if (g.json) printJson({ ...summary, deleted: true });
  else println(`Deleted environment '${name}'.`);
}

async function comfyuiUpdateCommand(version: string | undefined, opts: { apply: boolean }, g: GlobalFlags) {
  const { updateComfyUI } = await import("../workspace/environment.ts");
  const r = await withEnv(g, "comfyui update", "write", (s) => updateComfyUI(s, version ?? "latest", opts));
  if (g.json) return printJson({ from: r.from, to: r.to, dependencies: r.dependencies, ...changeData(r) });
  if (!r.accepted) return println("Cancelled; .cec and the environment are as they were.");
  const same = r.from.commit === r.to.commit;
  const to = versionLabel(r.to.version, r.to.commit);
  println(
    same
      ? `ComfyUI is already at ${to}.`
      : `ComfyUI ${versionLabel(r.from.version, r.from.commit)} -> ${to}` +
        (r.applied.length ? ", applied." : !opts.apply ? "; .cec committed (--no-apply)." : "."),
  );
  if (r.dependencies.added.length) println(`  + ${r.dependencies.added.join(", ")}`);
  if (r.dependencies.removed.length) println(`  - ${r.dependencies.removed.join(", ")}`);
  if (r.excludeNewer) {
    println(
      `  packages now resolve as of ${r.excludeNewer.to} (exclude-newer moved from ${r.excludeNewer.from} ` +
        "to the new commit's date)",
    );
  }
}

export function registerEnvCommands(program: Command): void {
  program.command("init").description(
    "create a workspace (default: $COMFYDOCK_HOME or ~/.comfydock_workspace)",
  )
    .argument("[path]").action(async (path, _o, cmd) => {
      const { initWorkspace } = await import("../workspace/workspace.ts");
      const { resolve } = await import("node:path");
      const r = await initWorkspace(path ? resolve(path) : workspace().root);
      if (globals(cmd).json) printJson(r);
      else if (r.created) {
        println(`Initialized a ComfyDock workspace at ${r.root}`);
        if (path && resolve(path) !== workspace().root) {
          println(`Use it with: export COMFYDOCK_HOME=${r.root}`);
        }
        println("Next: comfydock create NAME");
      } else {println(
          `A workspace already exists at ${r.root}; nothing was overwritten (missing folders added).`,
        );}
    });

  program.command("create").description("create an environment: ComfyUI checkout, venv, .cec repo")
    .argument("<name>")
    .option("--python <version>", "Python X.Y (an interpreter already on this machine)")
    .option("--comfyui <ref>", "ComfyUI tag, commit or 'latest'", "latest")
    .option("--comfyui-url <url>", "ComfyUI git URL (default $COMFYDOCK_COMFYUI_URL or the official repo)")
    .option(
      "--torch-backend <backend>",
      "auto|cpu|cuXXX|rocmX.Y|pypi (default: config default_torch_backend, else auto)",
    )
    .option("--torch-index <url>", "the index torch comes from, written into .cec as given")
    .option(
      "--resolve-as-of <date>",
      "resolve packages as uploaded before DATE (YYYY-MM-DD) or 'comfyui' (the ComfyUI commit's date)",
    )
    .option("--use", "make it the active environment")
    .action((name, opts, cmd) => createCommand(name, opts, globals(cmd)));

  program.command("list").description("list environments (active marked)").action(async (_o, cmd) => {
    const ws = await requireWorkspace();
    const { listEnvironments } = await import("../workspace/workspace.ts");
    const envs = await listEnvironments(ws);
    if (globals(cmd).json) return printJson({ environments: envs });
    if (!envs.length) return println("No environments yet. Create one with 'comfydock create NAME'.");
    for (const e of envs) {
      const mark = e.active ? paint("green", "*") : " ";
      const what = e.error
        ? paint("red", `(unreadable: ${e.error})`)
        : `ComfyUI ${e.comfyui_version}  Python ${e.python_version}  torch ${
          e.torch ? `${e.torch} (${e.torch_backend ?? "-"})` : `- (${e.torch_backend ?? "-"}, not installed)`
        }`;
      println(`${mark} ${e.name.padEnd(20)} ${what}`);
    }
  });

  program.command("use").description("set the active environment").argument("<name>")
    .action(async (name, _o, cmd) => {
      const ws = await requireWorkspace();
      const { setActiveEnvironment } = await import("../workspace/workspace.ts");
      const env = await setActiveEnvironment(ws, name);
      if (globals(cmd).json) printJson(env);
      else println(`Active environment: ${env.name}`);
    });

  program.command("delete").description("delete an environment").argument("<name>")
    .option("--force", "delete even with uncommitted workflow edits")
    .action((name, opts, cmd) => deleteCommand(name, opts, globals(cmd)));

  program.command("run").description("start ComfyUI in the environment (args after -- go to main.py)")
    .argument("[args...]").option("--no-check", "skip the check that the environment matches .cec")
    .allowUnknownOption().action(async (args, opts, cmd) => {
      const paths = await resolveEnv(globals(cmd).env);
      if (opts.check) await warnOnDrift(globals(cmd), paths);
      const { runComfyUI } = await import("../workspace/environment.ts");
      const g = globals(cmd);
      Deno.exitCode = await runComfyUI(paths, args, { stdoutToStderr: g.json });
      if (g.json) printJson({ environment: paths.name, exit_code: Deno.exitCode });
    });

  const config = program.command("config").description("workspace configuration and API keys");
  config.command("get").argument("<key>").action(async (key, _o, cmd) => {
    const value = await (await configManager()).get(key);
    if (globals(cmd).json) printJson({ key, value });
    else println(value === null ? "(not set)" : typeof value === "string" ? value : JSON.stringify(value));
  });
  config.command("set").argument("<key>").argument("<value>").action(async (key, raw, _o, cmd) => {
    const value = await (await configManager()).set(key, raw);
    if (globals(cmd).json) printJson({ key, value });
    else println(`${key} = ${JSON.stringify(value)}`);
  });
  config.command("list").action(async (_o, cmd) => {
    const { SETTINGS } = await import("../workspace/config.ts");
    const all = await (await configManager()).list();
    if (globals(cmd).json) return printJson(all);
    for (const k of Object.keys(SETTINGS)) {
      println(
        `${k.padEnd(22)} ${k in all.settings ? JSON.stringify(all.settings[k]) : paint("gray", "(not set)")}`,
      );
    }
    for (const [s, k] of Object.entries(all.keys)) println(`key ${s.padEnd(18)} ${k.masked}  (${k.source})`);
  });
  config.command("set-key").argument("<service>", "civitai|huggingface|github")
    .description("store an API key (read from stdin, or a hidden prompt)")
    .action(async (service, _o, cmd) => {
      const { serviceName } = await import("../workspace/config.ts");
      const manager = await configManager();
      serviceName(service); // fail on a bad service before asking for a secret
      const secret = await readSecret(service);
      if (!secret) {
        const { CdError } = await import("../lib/errors.ts");
        throw new CdError("INVALID_KEY", `no ${service} key was given; nothing was stored`, {
          hint: `pipe it in (e.g. 'comfydock config set-key ${service} < key.txt') or type it at the prompt`,
        });
      }
      const r = await manager.setKey(service, secret);
      if (globals(cmd).json) printJson(r);
      else {println(
          r.masked
            ? `Stored the ${r.service} key (${r.masked}) in ${manager.ws.keysFile}`
            : `Removed the ${r.service} key`,
        );}
    });

  program.command("comfyui").description("ComfyUI core version")
    .command("update").description("pin another ComfyUI version and apply it")
    .argument("[version]", "TAG|COMMIT|latest")
    .option("--no-apply", "only edit and commit .cec")
    .action((version, opts, cmd) => comfyuiUpdateCommand(version, opts, globals(cmd)));
}
