/** Environment bundles and sharing: export, import (bundle file, git URL or path), pull, push. */
import type { Command } from "@commander-js/extra-typings";
import { appFor, changeData, changeOutcome, confirm, globals, resolveEnv, withEnv } from "./context.ts";
import { info, paint, printJson, println, progress, step, ui } from "../lib/ui.ts";
import { withTask } from "../lib/progress.ts";

function kib(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

export function registerBundleCommands(program: Command): void {
  program.command("export").description("pack an environment's desired state into a file (.tar.gz)")
    .argument("[name]", "environment (default: -e or the active one)")
    .option("--out <file>", "where to write the bundle (default: ./<name>.comfydock.tar.gz)")
    .option("--with-dev-nodes", "include local/dev nodes' files")
    .option("--with-models", "include model files (large; otherwise models travel as hash + sources)")
    .action(async (name, opts, cmd) => {
      const paths = await resolveEnv(name ?? globals(cmd).env);
      const out = opts.out ?? `${paths.name}.comfydock.tar.gz`;
      const { exists } = await import("../lib/fsx.ts");
      if (await exists(out) && !await confirm(`${out} exists. Replace it?`, { destructive: true })) {
        info("Export cancelled; nothing was written.");
        return;
      }
      const { BundleManager } = await import("../providers/bundles/bundle.ts");
      const res = await withTask(
        progress,
        `packing ${out}`,
        (task) =>
          new BundleManager().createEnvBundle(paths, {
            out,
            withDevNodes: opts.withDevNodes,
            withModels: opts.withModels,
            onProgress: (done, total, path) => task.update(done, { total, detail: path }),
          }),
        { unit: "bytes" },
      );
      const { readDesired } = await import("../reconcile/desired.ts");
      const { portabilityWarnings } = await import("../providers/bundles/portability.ts");
      const warnings = portabilityWarnings(await readDesired(paths), { withModels: opts.withModels });
      if (ui.json) {
        printJson({
          file: res.file,
          bytes: res.bytes,
          manifest: res.manifest,
          skipped: res.skipped,
          warnings,
        });
        return;
      }
      const unpacked = res.manifest.files.reduce((n, f) => n + f.size, 0);
      println(
        paint("green", `Exported '${paths.name}' to ${res.file}`) +
          ` (${res.manifest.files.length} files, ${kib(unpacked)} -> ${kib(res.bytes)})`,
      );
      for (const s of res.skipped) println(`  ${paint("yellow", "!")} skipped ${s}`);
      for (const w of warnings) info(`${paint("yellow", "warning:")} ${w}`);
      if (!opts.withModels) {
        println("Models are referenced by hash and sources; pass --with-models to include the files.");
      }
      println(`Rebuild it anywhere with 'comfydock import ${res.file} [--name NAME]'.`);
    });

  program.command("import").description(
    "create an environment from a bundle, a git URL or a path of a .cec repo",
  )
    .argument("<source>", "bundle file | git URL | path to a .cec git repository (or an env dir holding one)")
    .option("--name <name>", "environment name (default: the exported environment's / the project's name)")
    .option("--no-apply", "only create the environment's .cec; build it later with 'comfydock apply'")
    .action(async (source, opts, cmd) => {
      const g = globals(cmd);
      const app = await appFor(g);
      const { importEnvironment, removePendingImportsSync } = await import("../workspace/import.ts");
      // Ctrl-C / kill: remove what the import made so far (staging dir, half-made environment), then exit.
      const onSignal = () => {
        removePendingImportsSync();
        info("Import interrupted; nothing was left behind.");
        Deno.exit(130);
      };
      const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
      for (const s of signals) Deno.addSignalListener(s, onSignal);
      step(`validating ${source}`);
      const res = await importEnvironment(app, source, {
        name: opts.name,
        apply: opts.apply,
      }).finally(() => {
        for (const s of signals) Deno.removeSignalListener(s, onSignal);
      });
      if (ui.json) {
        printJson(res);
        return;
      }
      const from = res.source.type === "create"
        ? "a new .cec"
        : res.source.type === "bundle"
        ? `bundle ${res.source.file} (environment '${res.source.manifest.source_environment}', ` +
          `comfydock ${res.source.manifest.tool.version}, ${res.source.manifest.created_at})`
        : `${res.source.url}${res.source.commit ? ` at ${res.source.commit.slice(0, 12)}` : ""}`;
      println(paint("green", `Imported environment '${res.environment}'`) + ` from ${from}`);
      println(`  ${res.root}`);
      if (res.built) println(`  built: ${res.applied} action(s) applied; it matches its .cec.`);
      else {
        println(
          `  not built yet: run 'comfydock -e ${res.environment} apply'` +
            (res.remaining?.actions.length ? ` (${res.remaining.actions.length} action(s) left)` : ""),
        );
      }
      if (res.devNodes.length) println(`  dev nodes placed: ${res.devNodes.join(", ")}`);
      if (res.modelsPlaced.length) println(`  model files placed: ${res.modelsPlaced.join(", ")}`);
      for (const n of res.notes) println(`  ${paint("yellow", "!")} ${n}`);
      if (res.missingModels.length) {
        println(paint("yellow", `\n${res.missingModels.length} model(s) have no download source:`));
        for (const m of res.missingModels) {
          const id = m.sha256 ? `sha256:${m.sha256}` : m.hash ?? "?";
          println(
            `  - ${m.key}${m.name ? ` (${m.name})` : ""}: ${m.category}/${m.filename}, ${id}` +
              (m.size !== undefined ? `, ${m.size} bytes` : ""),
          );
          println(`    ${m.hint}`);
        }
      }
      if (res.source.type === "git") {
        println(`Sync it later with 'comfydock -e ${res.environment} pull' / 'push'.`);
      }
      if (!g.env) println(`Select it with 'comfydock use ${res.environment}'.`);
    });

  program.command("pull").description("git pull the environment's .cec from its remote, then plan+apply")
    .option("--no-apply", "only pull (and validate) .cec")
    .action(async (opts, cmd) => {
      const { pullCec } = await import("../workspace/import.ts");
      const { paths, r } = await withEnv(globals(cmd), "pull", "write", async (s) => ({
        paths: s.paths,
        r: await pullCec(s, { apply: opts.apply }),
      }));
      const changed = r.before !== r.after;
      if (ui.json) {
        return printJson({
          environment: paths.name,
          before: r.before,
          after: r.after,
          changed,
          ...changeData(r.result ?? null),
        });
      }
      if (r.result && !r.result.accepted) return println(changeOutcome(r.result, opts.apply));
      println(
        changed
          ? `Pulled ${r.before?.slice(0, 12) ?? "(none)"}..${r.after?.slice(0, 12)} into ${paths.cec}`
          : "Already up to date.",
      );
      if (r.result) println(changeOutcome(r.result, opts.apply));
    });

  program.command("push").description("git push the environment's committed .cec to its remote")
    .action(async (_opts, cmd) => {
      const paths = await resolveEnv(globals(cmd).env);
      const { pushCec } = await import("../workspace/import.ts");
      const r = await pushCec(paths);
      if (ui.json) printJson({ environment: paths.name, ...r });
      else {
        println(`Pushed ${r.pushed?.slice(0, 12) ?? "(nothing)"} from ${paths.cec}`);
        if (r.uncommitted) {
          println(
            `${
              paint("yellow", "!")
            } .cec has uncommitted edits (not pushed): 'comfydock commit -m MSG' first`,
          );
        }
      }
    });
}
