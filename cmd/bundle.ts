/** Environment bundles and sharing: export, import (bundle file, git URL or path), pull, push. */
import type { Command } from "@commander-js/extra-typings";
import { appFor, changeData, changeOutcome, confirm, globals, resolveEnv, withEnv } from "./context.ts";
import { info, paint, printJson, println, progress, step, ui } from "../lib/ui.ts";
import { withTask } from "../lib/progress.ts";
import type { ReportLine } from "../providers/formats/report.ts";

function kib(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

/**
 * Runs a command that builds a new environment. Ctrl-C / kill: what it made so far is removed (a folder an
 * adopt --move brought in goes back first), `message` is shown, and the process exits 130.
 */
export async function cleanUpOnSignal<T>(message: string, fn: () => Promise<T>): Promise<T> {
  const { removePendingImportsSync } = await import("../workspace/import.ts");
  const onSignal = () => {
    const stuck = removePendingImportsSync();
    if (stuck.length === 0) info(message);
    else {
      // A moved-in folder whose old place was taken meanwhile: kept where it is, never deleted.
      info(
        `${paint("yellow", "warning:")} interrupted; these could not go back (their old place is taken now):`,
      );
      for (const s of stuck) info(`  ${s}`);
      info("move each back by hand; nothing was deleted");
    }
    Deno.exit(130);
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  try {
    return await fn();
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
  }
}

/** What an import from another tool's format mapped and what it could not (never silently dropped). */
export function printReport(lines: ReportLine[]): void {
  if (lines.length === 0) return;
  const mapped = lines.filter((l) => l.outcome !== "not mapped");
  const unmapped = lines.filter((l) => l.outcome === "not mapped");
  println(`  mapped: ${mapped.length} item(s)${unmapped.length ? `, not mapped: ${unmapped.length}` : ""}`);
  for (const l of mapped) {
    println(`    ${paint("green", l.outcome === "kept" ? "=" : "+")} ${l.item} -> ${l.detail}`);
  }
  for (const l of unmapped) println(`    ${paint("yellow", "!")} ${l.item}: ${l.detail}`);
}

export function registerBundleCommands(program: Command): void {
  program.command("export").description("pack an environment's desired state into a file (.tar.gz)")
    .argument("[name]", "environment (default: -e or the active one)")
    .option("--out <file>", "where to write the bundle (default: ./<name>.comfydock.tar.gz)")
    .option("--with-dev-nodes", "include local/dev nodes' files")
    .option("--with-models", "include model files (large; otherwise models travel as hash + sources)")
    .option(
      "--format <format>",
      "bundle (default) | manager-snapshot (ComfyUI-Manager's snapshot JSON)",
      "bundle",
    )
    .action(async (name, opts, cmd) => {
      const paths = await resolveEnv(name ?? globals(cmd).env);
      if (!["bundle", "manager-snapshot"].includes(opts.format)) {
        const { CdError } = await import("../lib/errors.ts");
        throw new CdError("EXPORT_FORMAT_UNKNOWN", `--format '${opts.format}' is not a format`, {
          hint: "use --format bundle or --format manager-snapshot",
        });
      }
      const snapshot = opts.format === "manager-snapshot";
      const out = opts.out ?? (snapshot ? `${paths.name}.snapshot.json` : `${paths.name}.comfydock.tar.gz`);
      const { exists, writeFileAtomic } = await import("../lib/fsx.ts");
      if (await exists(out) && !await confirm(`${out} exists. Replace it?`, { destructive: true })) {
        info("Export cancelled; nothing was written.");
        return;
      }
      if (snapshot) {
        const { readDesired } = await import("../reconcile/desired.ts");
        const { managerSnapshotOf } = await import("../workspace/manager_snapshot.ts");
        const r = managerSnapshotOf(await readDesired(paths));
        await writeFileAtomic(out, r.text);
        if (ui.json) return printJson({ file: out, format: "manager-snapshot", skipped: r.skipped });
        println(paint("green", `Exported '${paths.name}' as a ComfyUI-Manager snapshot to ${out}`));
        for (const s of r.skipped) println(`  ${paint("yellow", "!")} not in the snapshot: ${s}`);
        println("Restore it with ComfyUI-Manager (Snapshot Manager, or 'cm-cli restore-snapshot FILE').");
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
    "create an environment from a bundle, a ComfyUI-Manager snapshot, a git URL or a path of a .cec repo",
  )
    .argument(
      "<source>",
      "bundle file | snapshot (.json/.yaml) | git URL | path to a .cec git repository (ours, ComfyGit, 1.x)",
    )
    .option("--name <name>", "environment name (default: the exported environment's / the project's name)")
    .option("--no-apply", "only create the environment's .cec; build it later with 'comfydock apply'")
    .option("--python <version>", "Python X.Y for a snapshot (default: 3.12 if installed, else the newest)")
    .option(
      "--torch-backend <backend>",
      "for snapshots and converted .cec: auto | cpu | cuXXX | rocmX.Y",
      "auto",
    )
    .option("--comfyui <version>", "ComfyUI for a snapshot that names no commit (default: latest)")
    .option(
      "--comfyui-url <url>",
      "ComfyUI git repository (default: COMFYDOCK_COMFYUI_URL or the official one)",
    )
    .action(async (source, opts, cmd) => {
      const g = globals(cmd);
      const app = await appFor(g);
      const { importSource } = await import("../workspace/import_source.ts");
      step(`validating ${source}`);
      const res = await cleanUpOnSignal(
        "Import interrupted; nothing was left behind.",
        () =>
          importSource(app, source, {
            name: opts.name,
            apply: opts.apply,
            python: opts.python,
            torchBackend: opts.torchBackend,
            comfyui: opts.comfyui,
            comfyuiUrl: opts.comfyuiUrl,
          }),
      );
      if (ui.json) {
        printJson(res);
        return;
      }
      const from = res.source.type === "create"
        ? "a new .cec"
        : res.source.type === "snapshot"
        ? `ComfyUI-Manager snapshot ${res.source.file} (${res.source.format})`
        : res.source.type === "adopt"
        ? res.source.path
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
      printReport(res.report);
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
