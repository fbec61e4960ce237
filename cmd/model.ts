/** Models: scan, find, list, show, add, remove, sources, index rebuild. */
import type { Command } from "@commander-js/extra-typings";
import { CdError } from "../lib/errors.ts";
import { info, paint, printJson, println, progress, step, ui } from "../lib/ui.ts";
import { withTask } from "../lib/progress.ts";
import type { WorkspacePaths } from "../reconcile/paths.ts";
import type { ModelIndex, ModelInfo, ScanProgress, ScanResult } from "../providers/models/index_db.ts";
import {
  changeData,
  changeOutcome,
  configManager,
  type GlobalFlags,
  globals,
  requireWorkspace,
  resolveEnv,
  runChange,
  settings,
  withEnv,
} from "./context.ts";
import type { ModelSpec } from "../reconcile/schema.ts";

/** A scan as one progress task: bytes read (quick samples, full hashes), the phase and file count as detail. */
function scanTask<T>(label: string, fn: (onProgress: (p: ScanProgress) => void) => Promise<T>): Promise<T> {
  return withTask(progress, label, (task) =>
    fn((p) =>
      task.update(p.bytesDone, {
        total: p.bytesTotal,
        detail: `${p.phase === "full" ? "hashing" : "reading"} ${p.filesDone} of ${p.filesTotal} file(s)`,
      })
    ), { unit: "bytes" });
}

function warnAll(warnings: string[]): void {
  for (const w of warnings) info(`${paint("yellow", "warning:")} ${w}`);
}

async function openIndex(ws: WorkspacePaths): Promise<ModelIndex> {
  const { openModelIndex, rescanKnownRoots } = await import("../providers/models/store.ts");
  const index = openModelIndex(ws);
  if (index.recovered) {
    info(`${paint("yellow", "warning:")} the model index was unreadable: ${index.recovered}`);
    step("rebuilding it by rescanning the model folders (same as 'comfydock model index rebuild')");
    warnAll((await rescanKnownRoots(index, ws)).warnings);
  }
  return index;
}

function describeScan(r: ScanResult): string {
  return `${r.root}: ${r.files} model file(s), ${r.unchanged} unchanged, ${r.hashed} hashed, ${r.removed} gone`;
}

async function modelLine(m: ModelInfo): Promise<string> {
  const { formatSize } = await import("../providers/models/format.ts");
  const id = m.hashes.sha256 ? `sha256:${m.hashes.sha256.slice(0, 12)}` : `quick:${m.hashes.quick ?? "?"}`;
  const f = m.files[0];
  return `${id.padEnd(20)} ${formatSize(m.size).padStart(10)}  ${(f?.category ?? "-").padEnd(16)} ${
    f?.path ?? ""
  }${m.files.length > 1 ? ` (+${m.files.length - 1} more)` : ""}`;
}

function modelJson(m: ModelInfo) {
  return { id: m.id, name: m.name, size: m.size, hashes: m.hashes, files: m.files, metadata: m.metadata };
}

/**
 * Reports a model change (the plan was shown and confirmed inside it). JSON: the models it is about, then
 * the change (see changeData).
 */
function reportChange(
  message: string,
  models: { key: string; spec: unknown }[],
  r: import("../workspace/session.ts").ChangeResult,
  apply: boolean,
): void {
  if (ui.json) return printJson({ models, ...changeData(r) });
  if (r.commit) println(`Committed .cec: ${message}`);
  println(changeOutcome(r, apply));
}

async function modelAdd(
  source: string,
  opts: { category?: string; key?: string; apply: boolean },
  g: GlobalFlags,
): Promise<void> {
  const { parseAddSource, buildModelEntry } = await import("../providers/models/add.ts");
  const { prepared: entry, result } = await runChange(g, "model add", async (paths, app) => {
    using index = await openIndex(paths.workspace);
    const entry = await buildModelEntry(parseAddSource(source), opts, {
      ws: paths.workspace,
      settings: app.settings,
      index,
      download: { log: step, progress },
      // The user typed this URL: a Hugging Face or Civitai token in it becomes their stored key.
      credentials: {
        kind: "store",
        store: async (service, token) => void await (await configManager()).setKey(service, token),
      },
    });
    if (!ui.json) step(`${entry.key}: ${entry.note}`);
    return entry;
  }, (entry) => ({
    message: `model add ${entry.key}`,
    apply: opts.apply,
    edit: (desired) => {
      const existing = desired.models[entry.key];
      if (existing && existing.sha256 !== entry.spec.sha256) {
        throw new CdError("MODEL_KEY_TAKEN", `models.${entry.key} already names a different model`, {
          hint: "choose another key with --key, or 'comfydock model remove " + entry.key + "' first",
        });
      }
      // The same content under the same key: nothing to change.
      return {
        edits: existing ? [] : [{ path: ["tool", "comfydock", "models", entry.key], value: entry.spec }],
      };
    },
  }));
  if (!result.commit && result.accepted && result.plan === null && !ui.json) {
    return println(`'${entry.key}' is already in pyproject.toml with this content; nothing to do.`);
  }
  reportChange(`model add ${entry.key}`, [{ key: entry.key, spec: entry.spec }], result, opts.apply);
}

function requireModel(
  desired: { models: Record<string, ModelSpec>; paths: { pyproject: string } },
  key: string,
) {
  const spec = desired.models[key];
  if (!spec) {
    throw new CdError("MODEL_NOT_FOUND", `no [tool.comfydock.models.${key}] in ${desired.paths.pyproject}`, {
      hint: "'comfydock model list' shows the keys",
    });
  }
  return spec;
}

async function modelRemove(key: string, opts: { apply: boolean }, g: GlobalFlags): Promise<void> {
  let removed: ModelSpec | null = null;
  const { result } = await runChange(g, "model remove", () => Promise.resolve(null), () => ({
    message: `model remove ${key}`,
    apply: opts.apply,
    edit: (desired) => {
      removed = requireModel(desired, key);
      return { edits: [{ path: ["tool", "comfydock", "models", key], value: undefined }] };
    },
  }));
  reportChange(`model remove ${key}`, [{ key, spec: removed }], result, opts.apply);
}

export function registerModelCommands(program: Command): void {
  const model = program.command("model").description("content-addressed models");

  model.command("scan").description("index model files (default: the workspace store and model_paths)")
    .argument("[paths...]").option("--full", "compute full hashes (sha256) now, not only quick identities")
    .action(async (paths, opts, cmd) => {
      globals(cmd);
      const ws = await requireWorkspace();
      const { defaultScanRoots } = await import("../providers/models/store.ts");
      const { resolve } = await import("node:path");
      const roots = paths.length ? paths.map((p) => resolve(p)) : await defaultScanRoots(ws);
      if (!roots.length) {
        throw new CdError("MODEL_NOTHING_TO_SCAN", "no model folders to scan", {
          hint:
            "pass a folder ('comfydock model scan ~/ComfyUI/models') or add model_paths to .metadata/workspace.json",
        });
      }
      using index = await openIndex(ws);
      const results: ScanResult[] = [];
      for (const root of roots) {
        results.push(
          await scanTask(
            `indexing ${root}`,
            (onProgress) => index.scanDirectory(root, { full: opts.full, onProgress }),
          ),
        );
      }
      warnAll(results.flatMap((r) => r.warnings));
      if (ui.json) printJson({ results, index: index.stats() });
      else {
        for (const r of results) println(describeScan(r));
        const s = index.stats();
        println(`Index: ${s.models} model(s) in ${s.files} file(s).`);
      }
    });

  model.command("find").description("search the index by name, hash prefix or category").argument("<query>")
    .action(async (query, _opts, cmd) => {
      globals(cmd);
      using index = await openIndex(await requireWorkspace());
      const found = index.searchModels(query);
      if (ui.json) printJson({ models: found.map(modelJson) });
      else if (!found.length) println(`No indexed model matches '${query}'.`);
      else for (const m of found) println(await modelLine(m));
    });

  model.command("list").description("the models this environment requires: present or missing, and where")
    .action(async (_opts, cmd) => {
      const { readDesired } = await import("../reconcile/desired.ts");
      const { modelProvider } = await import("../providers/models/provider.ts");
      const { paths, desired, observed } = await withEnv(globals(cmd), "model list", "read", async (s) => {
        const desired = await readDesired(s.paths);
        const observed = await modelProvider.observe(desired, {
          paths: s.paths,
          settings: s.app.settings,
          readOnly: true,
        });
        return { paths: s.paths, desired, observed };
      });
      const rows = Object.entries(desired.models).map(([key, spec]) => {
        const o = observed.models[key];
        const state = o.state === "ok" ? "present" : o.state === "wrong" ? "wrong-content" : "missing";
        return {
          key,
          category: spec.category,
          filename: spec.filename,
          state,
          path: o.path,
          available_at: o.found,
        };
      });
      if (ui.json) printJson({ environment: paths.name, models: rows });
      else if (!rows.length) println(`Environment '${paths.name}' requires no models.`);
      else {
        for (const r of rows) {
          const mark = r.state === "present" ? paint("green", "✓") : paint("yellow", "✗");
          const where = r.state === "present"
            ? ""
            : r.available_at
            ? ` (on this machine at ${r.available_at}; 'comfydock apply' links it)`
            : " (not on this machine; 'comfydock apply' downloads it)";
          println(
            `  ${mark} ${r.key.padEnd(24)} ${`${r.category}/${r.filename}`.padEnd(48)} ${r.state}${where}`,
          );
        }
      }
    });

  model.command("show").description("a model of this environment (KEY) or of the index (HASH or path)")
    .argument("<keyOrHash>").action(async (arg, _opts, cmd) => {
      const g = globals(cmd);
      const ws = await requireWorkspace();
      let spec: unknown = null;
      let indexed: ModelInfo | null = null;
      using index = await openIndex(ws);
      try {
        const paths = await resolveEnv(g.env);
        const { readDesired } = await import("../reconcile/desired.ts");
        const desired = await readDesired(paths);
        const s = desired.models[arg];
        if (s) {
          spec = s;
          indexed = index.resolveByHash(s.sha256 ? `sha256:${s.sha256}` : s.hash!);
        }
      } catch (e) {
        if (!(e instanceof CdError)) throw e; // no environment: show from the index only
      }
      indexed ??= index.getModelInfo(arg);
      if (!spec && !indexed) {
        throw new CdError("MODEL_NOT_FOUND", `no model key or indexed model matches '${arg}'`, {
          hint:
            "'comfydock model list' shows this environment's keys, 'comfydock model find' searches the index",
        });
      }
      if (ui.json) {
        printJson({ key: spec ? arg : null, spec, indexed: indexed && modelJson(indexed) });
        return;
      }
      if (spec) println(`${paint("bold", arg)} (pyproject.toml)\n${JSON.stringify(spec, null, 2)}`);
      if (indexed) {
        println(`Indexed model ${indexed.id}: ${indexed.name}`);
        for (const [t, v] of Object.entries(indexed.hashes)) println(`  ${t}: ${v}`);
        for (const f of indexed.files) {
          println(`  file: ${f.path} (${f.category ?? "-"})${f.sha256 ? "" : " [quick identity only]"}`);
        }
      } else println("Not on this machine (not in the model index).");
    });

  model.command("add").description("add a model to this environment's pyproject.toml, then apply")
    .argument("<source>", "PATH|URL|HASH|hf:REPO/FILE|civitai:VERSION_ID")
    .option("--category <c>", "ComfyUI models folder (checkpoints, loras, vae, ...)")
    .option("--key <k>", "key under [tool.comfydock.models] (default: from the filename)")
    .option("--no-apply", "only edit and commit .cec")
    .action((source, opts, cmd) => modelAdd(source, opts, globals(cmd)));

  model.command("remove").description("remove a model from pyproject.toml (the stored file is kept)")
    .argument("<key>").option("--no-apply", "only edit and commit .cec")
    .action((key, opts, cmd) => modelRemove(key, opts, globals(cmd)));

  model.command("sources")
    .description("look up download sources by sha256 (Civitai; Hugging Face for models from the Hub)")
    .argument("<key>")
    .option("--write", "add the sources found to the entry in pyproject.toml (commits .cec; no apply needed)")
    .action(async (key, opts, cmd) => {
      const g = globals(cmd);
      const paths = await resolveEnv(g.env);
      const { readDesired } = await import("../reconcile/desired.ts");
      const { describeSource, sourceConfig } = await import("../providers/models/sources.ts");
      const { findSources } = await import("../providers/models/find_sources.ts");
      const spec = (await readDesired(paths)).models[key];
      if (!spec) {
        throw new CdError("MODEL_NOT_FOUND", `no [tool.comfydock.models.${key}] in ${paths.pyproject}`, {
          hint: "'comfydock model list' shows the keys",
        });
      }
      const sha256 = spec.sha256;
      if (!sha256) {
        throw new CdError("MODEL_NO_SHA256", `models.${key} has no sha256 to look up`, {
          hint: "run 'comfydock model scan --full' on its folder and add it again by path",
        });
      }
      const r = await (async () => {
        using index = await openIndex(paths.workspace);
        return await findSources(sourceConfig(await settings()), { ...spec, sha256 }, index);
      })();
      let commit: string | null = null;
      if (opts.write && r.found.length) {
        // Sources change where a download may come from, never what is on disk: no plan or apply follows.
        commit = (await withEnv(g, "model sources", "write", (s) =>
          s.change({
            message: `model sources ${key}`,
            apply: false,
            edit: (desired) => ({
              edits: [{
                path: ["tool", "comfydock", "models", key, "sources"],
                value: [...requireModel(desired, key).sources, ...r.found],
              }],
            }),
          }))).commit;
      }
      if (ui.json) {
        printJson({
          key,
          configured: spec.sources,
          found: r.found,
          written: opts.write === true && r.found.length > 0,
          commit,
          notes: r.notes,
          civitai: r.civitai,
        });
        return;
      }
      println(`Configured: ${spec.sources.map(describeSource).join(", ") || "none"}`);
      const v = r.civitai;
      if (v) {
        println(
          `Civitai: ${v.model?.name ?? "?"} ${v.name ?? ""} (version ${v.id}${
            v.modelId ? `, model ${v.modelId}` : ""
          })`,
        );
      } else println("Civitai does not know this file.");
      for (const n of r.notes) info(`${paint("yellow", "note:")} ${n}`);
      if (!r.found.length) {
        println("No new sources found.");
        return;
      }
      println(`New: ${r.found.map(describeSource).join(", ")}`);
      println(
        opts.write
          ? `Added ${r.found.length} source(s) to [tool.comfydock.models.${key}] (committed .cec).`
          : "Run again with --write to add them to pyproject.toml.",
      );
    });

  model.command("index").description("the model index database").command("rebuild")
    .description("drop the index and rebuild it by rescanning the model folders")
    .action(async (_opts, cmd) => {
      globals(cmd);
      const ws = await requireWorkspace();
      const { rebuildModelIndex } = await import("../providers/models/store.ts");
      const out = await scanTask(
        "rebuilding the model index",
        (onProgress) => rebuildModelIndex(ws, { onProgress }),
      );
      using index = out.index;
      warnAll(out.warnings);
      if (ui.json) printJson({ results: out.results, index: index.stats() });
      else {
        for (const r of out.results) println(describeScan(r));
        const s = index.stats();
        println(`Model index rebuilt: ${s.models} model(s) in ${s.files} file(s).`);
      }
    });
}
