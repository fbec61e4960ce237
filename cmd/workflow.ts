/** Workflows: status, track, untrack, sync, analyze, import, export. */
import { Option } from "@commander-js/extra-typings";
import type { Command } from "@commander-js/extra-typings";
import { CdError, errorMessage } from "../lib/errors.ts";
import { info, paint, printJson, println, progress, step, ui } from "../lib/ui.ts";
import type { EnvPaths } from "../reconcile/paths.ts";
import {
  changeData,
  changeOutcome,
  type GlobalFlags,
  globals,
  resolveEnv,
  runChange,
  settings,
  withEnv,
  workspace,
} from "./context.ts";

const NODE_MAP_HELP = "ComfyUI-Manager's extension-node-map.json (default: $COMFYDOCK_NODE_MAP)";

/** The node type resolver of an environment (its node index, --node-map, its ComfyUI checkout's core types). */
async function resolverFor(paths: EnvPaths, nodeMap?: string) {
  const { envResolver } = await import("../providers/workflows/files.ts");
  return (await envResolver(paths, nodeMap, (await settings()).nodeMapFile ?? undefined)).resolver;
}

async function status(paths: EnvPaths): Promise<void> {
  const { readDesired } = await import("../reconcile/desired.ts");
  const { workflowStatus, STATE_TEXT } = await import("../providers/workflows/status.ts");
  const rows = await workflowStatus(paths, await readDesired(paths));
  if (ui.json) {
    printJson({ environment: paths.name, workflows: rows });
    return;
  }
  if (rows.length === 0) {
    println(`No workflows in ${paths.userWorkflows} and none tracked.`);
    return;
  }
  println(`Workflows of '${paths.name}':`);
  for (const r of rows) {
    const mark = r.state === "in-sync"
      ? paint("green", "✓")
      : !r.tracked
      ? paint("gray", r.state === "ignored" ? "-" : "?")
      : paint("yellow", "✗");
    println(`  ${mark} ${r.name.padEnd(40)} ${STATE_TEXT[r.state]}`);
  }
  const states = new Set(rows.map((r) => r.state));
  if (states.has("untracked")) println("\n'comfydock workflow track NAME' (or --all) tracks a workflow.");
  if (states.has("changed-in-comfyui") || states.has("changed-in-both") || states.has("missing-in-cec")) {
    println("'comfydock workflow sync' takes UI changes into .cec (a conflict keeps both versions).");
  }
  if (states.has("changed-in-cec") || states.has("missing-in-comfyui")) {
    println("'comfydock apply' (or 'workflow sync') restores the .cec versions into ComfyUI.");
  }
}

/** The environment `analyze` runs in: -e NAME (must exist), else the active one if there is one. */
async function optionalEnv(name?: string): Promise<EnvPaths | null> {
  if (name) return await resolveEnv(name);
  try {
    return await resolveEnv();
  } catch (e) {
    if (e instanceof CdError && ["NO_WORKSPACE", "NO_ENVIRONMENT", "UNKNOWN_ENVIRONMENT"].includes(e.code)) {
      return null;
    }
    throw e;
  }
}

async function analyze(file: string, nodeMap: string | undefined, envName?: string): Promise<void> {
  const { readWorkflowFile, loadAnalysisResolver, envResolver } = await import(
    "../providers/workflows/files.ts"
  );
  const { analyzeWorkflow, requirements } = await import("../providers/workflows/analyze.ts");
  // No environment needed; in one, its installed packs and ComfyUI's core types are known too.
  const fallbackMap = (await settings()).nodeMapFile ?? undefined;
  const env = await optionalEnv(envName);
  const { resolver, source } = env
    ? await envResolver(env, nodeMap, fallbackMap)
    : await loadAnalysisResolver({ nodeMap, fallbackMap, nodeIndexDb: workspace().nodeIndexDb });
  const json = await readWorkflowFile(file);
  const a = analyzeWorkflow(json, resolver, file);
  const req = requirements(a);
  if (ui.json) {
    printJson({
      file,
      format: a.format,
      node_index: source,
      nodes: a.nodes,
      models: a.models,
      warnings: a.warnings,
    });
    return;
  }
  const count = (k: string) => a.nodes.filter((n) => n.kind === k).length;
  println(`${file} (${a.format} format): ${a.nodes.length} nodes`);
  println(
    `  ${count("core")} core, ${count("custom")} custom, ${count("frontend")} frontend-only, ${
      count("unknown")
    } unknown` +
      `  (node index: ${source})`,
  );
  if (req.packages.length) {
    println("Custom node packs:");
    for (const p of req.packages) {
      const types = [...new Set(a.nodes.filter((n) => n.package === p).map((n) => n.type))];
      println(`  ${p}  (${types.join(", ")})`);
    }
  }
  for (const amb of req.ambiguous) println(`  ? ${amb.type}: one of ${amb.candidates.join(", ")}`);
  if (req.unknownTypes.length) {
    println(`Unknown node types: ${req.unknownTypes.join(", ")}`);
    println(
      paint("yellow", "hint: ") +
        (source.includes("built-in")
          ? "pass --node-map extension-node-map.json (or set COMFYDOCK_NODE_MAP) to look custom types up"
          : "not in the node index; 'comfydock node find TYPE' searches the registry"),
    );
  }
  if (req.models.length) {
    println("Models:");
    for (const m of req.models) {
      const extra = [m.optional ? "only used by a bypassed/muted node" : "", m.url ?? "", m.hash ?? ""]
        .filter(Boolean).join("  ");
      println(`  ${m.category}/${m.name}${extra ? `  ${extra}` : ""}`);
    }
  }
  for (const w of a.warnings) info(`${paint("yellow", "warning:")} ${w}`);
}

async function exportWorkflow(paths: EnvPaths, name: string, out?: string): Promise<void> {
  const { join } = await import("node:path");
  const { readDesired } = await import("../reconcile/desired.ts");
  const { readWorkflowFile, relOfFile } = await import("../providers/workflows/files.ts");
  const { relOfName } = await import("../providers/workflows/track.ts");
  const { analyzeWorkflow } = await import("../providers/workflows/analyze.ts");
  const { workflowDependencies } = await import("../providers/workflows/bundle.ts");
  const { BundleManager } = await import("../providers/bundles/bundle.ts");
  const { exists } = await import("../lib/fsx.ts");
  const desired = await readDesired(paths);
  const spec = desired.workflows[name];
  // A tracked workflow is exported as committed in .cec; an untracked one as saved in ComfyUI.
  const path = spec
    ? join(paths.cecWorkflows, relOfFile(spec.file))
    : join(paths.userWorkflows, relOfName(name));
  const analysis = analyzeWorkflow(await readWorkflowFile(path), await resolverFor(paths), path);
  const deps = workflowDependencies(analysis, desired);
  const target = out ?? `${name.replaceAll("/", "_")}.comfydock-workflow.tar.gz`;
  if (!out && await exists(target)) {
    throw new CdError("EXPORT_EXISTS", `${target} already exists`, {
      hint: "choose the file with --out FILE",
    });
  }
  const result = await new BundleManager().createWorkflowBundle(
    path,
    { name, nodes: deps.nodes, models: deps.models },
    { out: target, sourceEnvironment: paths.name },
  );
  if (ui.json) {
    printJson({
      file: target,
      bytes: result.bytes,
      nodes: deps.nodes,
      models: deps.models,
      unpinned_packs: deps.unpinnedPacks,
      unknown_node_types: deps.unknownTypes,
      unrecorded_models: deps.unrecorded.map((m) => `${m.category}/${m.name}`),
    });
    return;
  }
  println(
    `Exported '${name}' to ${target}: ${Object.keys(deps.nodes).length} node pack(s) and ` +
      `${Object.keys(deps.models).length} model(s) with their pins from .cec.`,
  );
  if (deps.unpinnedPacks.length) {
    println(`Packs not in .cec (the importer resolves them again): ${deps.unpinnedPacks.join(", ")}`);
  }
  if (deps.unknownTypes.length) println(`Unknown node types: ${deps.unknownTypes.join(", ")}`);
  if (deps.unrecorded.length) {
    println(
      `Models not in .cec (only the workflow's own name/URL travels): ${
        deps.unrecorded.map((m) => `${m.category}/${m.name}`).join(", ")
      }`,
    );
  }
}

type ImportPlan = import("../providers/workflows/import_plan.ts").ImportPlan;

/** Lets the person at the terminal settle ambiguous and unresolved items (pick a candidate, give a source, or skip). */
async function askChoices(plan: ImportPlan): Promise<ImportPlan> {
  const { select, text, isCancel } = await import("@clack/prompts");
  const { parseAddSource } = await import("../providers/models/add.ts");
  const { parseNodeSpec } = await import("../providers/nodes/add.ts");
  const SKIP = "\u0000skip";
  const nodes: ImportPlan["nodes"] = [];
  for (const item of plan.nodes) {
    if (item.status === "choose") {
      const pick = await select({
        message: `${item.types.join(", ")}: ${item.reason}. Which pack?`,
        options: [...item.candidates.map((c) => ({ value: c, label: c })), { value: SKIP, label: "skip" }],
      });
      if (!isCancel(pick) && pick !== SKIP) {
        nodes.push({ status: "add", pack: pick, spec: pick, pinned: false, types: item.types });
        continue;
      }
    } else if (item.status === "unresolved") {
      const answer = await text({
        message: `${item.types.join(", ")}: ${item.reason}. Registry id or git URL of its pack (empty: skip)`,
        validate: (v) => {
          if (!v?.trim()) return undefined;
          try {
            parseNodeSpec(v);
            return undefined;
          } catch (e) {
            return errorMessage(e);
          }
        },
      });
      if (!isCancel(answer) && answer.trim()) {
        const spec = answer.trim();
        nodes.push({ status: "add", pack: spec, spec, pinned: false, types: item.types });
        continue;
      }
    }
    nodes.push(item);
  }
  const models: ImportPlan["models"] = [];
  for (const item of plan.models) {
    const base = {
      name: item.name,
      category: item.category,
      optional: item.optional,
      url: item.url,
      hash: item.hash,
    };
    if (item.status === "choose") {
      const pick = await select({
        message: `${item.category}/${item.name}: ${item.reason}. Which file?`,
        options: [
          ...item.candidates.map((c, i) => ({ value: String(i), label: c.path })),
          { value: SKIP, label: "skip" },
        ],
      });
      if (!isCancel(pick) && pick !== SKIP) {
        const c = item.candidates[Number(pick)];
        models.push({ ...base, status: "local", via: "name", path: c.path, sha256: c.sha256, size: c.size });
        continue;
      }
    } else if (item.status === "unresolved") {
      const answer = await text({
        message:
          `${item.category}/${item.name}: ${item.reason}. URL, hf:REPO/FILE, civitai:ID or a file (empty: skip)`,
        validate: (v) => {
          if (!v?.trim()) return undefined;
          try {
            parseAddSource(v.trim());
            return undefined;
          } catch (e) {
            return errorMessage(e);
          }
        },
      });
      if (!isCancel(answer) && answer.trim()) {
        const source = answer.trim();
        const input = parseAddSource(source);
        models.push(
          input.kind === "path"
            ? { ...base, status: "local", via: "name", path: input.path, sha256: null, size: 0 }
            : { ...base, status: "download", source },
        );
        continue;
      }
    }
    models.push(item);
  }
  return { nodes, models };
}

function describePlan(name: string, rel: string, plan: ImportPlan): void {
  println(`Importing '${name}' (.cec/workflows/${rel}):`);
  for (const n of plan.nodes) {
    const types = n.types.length ? `  (${n.types.join(", ")})` : "";
    if (n.status === "present") println(`  node pack ${n.pack}: in the environment as '${n.id}'${types}`);
    else if (n.status === "add") {
      println(
        `  node pack ${paint("green", `+ add ${n.spec}`)}${
          n.pinned ? " (pinned by the bundle)" : ""
        }${types}`,
      );
    } else println(`  node type ${n.types.join(", ")}: ${paint("yellow", `skipped: ${n.reason}`)}`);
  }
  for (const m of plan.models) {
    const what = `  model ${m.category}/${m.name}${m.optional ? " (optional)" : ""}: `;
    if (m.status === "present") println(what + `in the environment (model.${m.key})`);
    else if (m.status === "manifest") {
      println(
        what +
          paint(
            "green",
            m.local ? `+ add, on this machine (${m.local})` : "+ add, download from the bundle's sources",
          ),
      );
    } else if (m.status === "local") {
      println(what + paint("green", `+ add, on this machine (${m.path}, by ${m.via})`));
    } else if (m.status === "download") println(what + paint("green", `+ add, download from ${m.source}`));
    else println(what + paint("yellow", `skipped: ${m.reason}`));
  }
}

async function importWorkflow(
  source: string,
  opts: { name?: string; nodeMap?: string; apply: boolean; nonInteractive?: boolean },
  g: GlobalFlags,
): Promise<void> {
  if (opts.nonInteractive) ui.yes = true;
  const { readDesired } = await import("../reconcile/desired.ts");
  const { analyzeWorkflow } = await import("../providers/workflows/analyze.ts");
  const { readImportSource, assertNameFree, buildImportChange } = await import(
    "../providers/workflows/import.ts"
  );
  const { planImport } = await import("../providers/workflows/import_plan.ts");
  const { openModelIndex } = await import("../providers/models/store.ts");
  const { sourceConfig } = await import("../providers/models/sources.ts");
  const { RegistryClient } = await import("../providers/nodes/registry.ts");

  if (opts.apply && !ui.yes && !Deno.stdin.isTerminal()) {
    // Asked now, not after the packs and models are fetched.
    throw new CdError(
      "NEEDS_CONFIRMATION",
      `importing '${source}' changes the environment (no terminal to ask on)`,
      {
        hint:
          "pass --yes (or --non-interactive) to proceed without asking, or --no-apply to only commit .cec",
      },
    );
  }
  const { prepared, result } = await runChange(g, "workflow import", async (paths, app) => {
    const desired = await readDesired(paths);
    const src = await readImportSource(source, app.settings);
    const { rel, name } = await assertNameFree(paths, desired, opts.name ?? src.name);
    const analysis = analyzeWorkflow(src.workflow, await resolverFor(paths, opts.nodeMap), source);
    using index = openModelIndex(paths.workspace);
    let plan = planImport(analysis, desired, index, sourceConfig(app.settings), src.manifest);
    const open = (i: { status: string }) => i.status === "choose" || i.status === "unresolved";
    if (!ui.yes && !ui.json && Deno.stdin.isTerminal() && [...plan.nodes, ...plan.models].some(open)) {
      plan = await askChoices(plan);
    }
    if (!ui.json) describePlan(name, rel, plan);
    const change = await buildImportChange(plan, { name, rel, text: src.text, analysis }, {
      paths,
      settings: app.settings,
      desired,
      registry: RegistryClient.fromSettings(app.settings),
      index,
      download: { log: step, progress },
      log: step,
    });
    for (const w of change.warnings) info(`${paint("yellow", "warning:")} ${w}`);
    if (!ui.json) {
      for (const m of change.models) step(`model.${m.key}: ${m.note}`);
      if (change.skipped.length) {
        println(paint("yellow", `Skipped ${change.skipped.length} item(s) that could not be resolved:`));
        for (const s of change.skipped) println(`  ${s.what}: ${s.known}\n    -> ${s.todo}`);
      }
    }
    return { change, name, rel, format: src.format };
  }, ({ change, name }, s) => {
    const added = [
      ...change.nodes.map((n) => `node ${n.id}`),
      ...change.models.map((m) => `model ${m.key}`),
    ];
    return {
      message: `workflow import ${name}${added.length ? `: ${added.join(", ")}` : ""}`,
      apply: opts.apply,
      // Checked again under the lock: another command may have taken the name meanwhile.
      edit: async (desired) => {
        await assertNameFree(s.paths, desired, name);
        return { edits: change.edits, files: change.files };
      },
    };
  });
  const { change, name, rel, format } = prepared;
  if (ui.json) {
    printJson({
      name,
      file: `workflows/${rel}`,
      format,
      nodes: change.nodes.map((n) => ({ id: n.id, spec: n.spec })),
      models: change.models,
      skipped: change.skipped,
      ...changeData(result),
    });
    return;
  }
  if (result.accepted) {
    println(
      `Committed .cec: workflow '${name}'` +
        (change.nodes.length ? `, ${change.nodes.length} node pack(s)` : "") +
        (change.models.length ? `, ${change.models.length} model(s)` : "") + ".",
    );
  }
  println(changeOutcome(result, opts.apply));
}

async function trackCommand(
  name: string | undefined,
  opts: { all?: boolean; pattern?: string; nodeMap?: string; apply: boolean },
  g: GlobalFlags,
): Promise<void> {
  if (!name && !opts.all) {
    throw new CdError("WORKFLOW_NAME_MISSING", "name a workflow to track, or pass --all", {
      hint: "'comfydock workflow status' lists the workflows in ComfyUI",
    });
  }
  const { track } = await import("../workspace/workflow_sync.ts");
  const { change, result, fromImage } = await withEnv(g, "workflow track", "write", async (s) =>
    track(s, {
      names: name ? [name] : undefined,
      all: opts.all,
      pattern: opts.pattern,
      resolver: await resolverFor(s.paths, opts.nodeMap),
      apply: opts.apply,
    }));
  const warnings = change.warnings ?? [];
  if (ui.json) {
    return printJson({ workflows: result.accepted ? change.names : [], warnings, ...changeData(result) });
  }
  if (change.names.length === 0) return println("No untracked workflows to track.");
  if (fromImage && result.accepted) {
    println(`Wrote the workflow embedded in ${name} to ComfyUI as '${fromImage}'.`);
  }
  if (result.accepted) println(`Tracked ${change.names.map((n) => `'${n}'`).join(", ")} in .cec.`);
  for (const w of warnings) info(`${paint("yellow", "warning:")} ${w}`);
  println(changeOutcome(result, opts.apply));
}

async function untrackCommand(name: string, opts: { apply: boolean }, g: GlobalFlags): Promise<void> {
  const { untrack } = await import("../workspace/workflow_sync.ts");
  const { change, result } = await withEnv(
    g,
    "workflow untrack",
    "write",
    (s) => untrack(s, name, opts.apply),
  );
  if (ui.json) {
    return printJson({ workflows: result.accepted ? change.names : [], ...changeData(result) });
  }
  if (result.accepted) println(`Untracked '${change.names[0]}'; its file in ComfyUI was kept.`);
  println(changeOutcome(result, opts.apply));
}

async function syncCommand(opts: { strategy?: string; nodeMap?: string }, g: GlobalFlags): Promise<void> {
  const { syncWorkflows } = await import("../workspace/workflow_sync.ts");
  const r = await withEnv(g, "workflow sync", "write", async (s) =>
    syncWorkflows(s, {
      strategy: opts.strategy as "ours" | "theirs" | undefined,
      resolver: await resolverFor(s.paths, opts.nodeMap),
    }));
  if (ui.json) {
    printJson(r);
  } else {
    for (const n of r.captured) println(`  captured ${n} (ComfyUI -> .cec)`);
    for (const n of r.restored) {
      println(`  restored ${n} (.cec -> ComfyUI; the old file is in the trash)`);
    }
    for (const c of r.conflicts) {
      println(
        paint("yellow", `  conflict ${c.name}: `) +
          `ComfyUI's ${c.file} is kept as it is; .cec's version was written beside it as ${c.conflictFile}`,
      );
    }
    if (r.conflicts.length) {
      println(
        "Merge the two in ComfyUI and save as the original name, then run 'comfydock workflow sync " +
          "--strategy theirs' (keep ComfyUI's) or '--strategy ours' (keep .cec's); delete the conflict file after.",
      );
    }
    if (!r.captured.length && !r.restored.length && !r.conflicts.length) {
      println("Workflows are in sync.");
    }
  }
  if (r.conflicts.length) Deno.exitCode = 2;
}

export function registerWorkflowCommands(program: Command): void {
  const wf = program.command("workflow").description("tracked ComfyUI workflows");
  wf.command("status").description("tracked / untracked / ignored, and sync state of each workflow")
    .action(async (_opts, cmd) => await status(await resolveEnv(globals(cmd).env)));

  wf.command("track").description("track workflows in .cec (with their node and model requirements)")
    .argument(
      "[name]",
      "workflow path under ComfyUI/user/default/workflows (no .json), or a PNG/WebP ComfyUI saved",
    )
    .option("--all", "every untracked (and not ignored) workflow")
    .option("--pattern <glob>", "with --all: only paths matching this glob")
    .option("--node-map <file>", NODE_MAP_HELP)
    .option("--no-apply", "only edit and commit .cec")
    .action((name, opts, cmd) => trackCommand(name, opts, globals(cmd)));

  wf.command("untrack").description("stop tracking a workflow (its file in ComfyUI stays)").argument("<name>")
    .option("--no-apply", "only edit and commit .cec")
    .action((name, opts, cmd) => untrackCommand(name, opts, globals(cmd)));

  wf.command("sync").description("capture UI edits into .cec and restore .cec versions into ComfyUI")
    .addOption(
      new Option("--strategy <s>", "who wins a conflict: ours = .cec, theirs = ComfyUI").choices([
        "ours",
        "theirs",
      ]),
    )
    .option("--node-map <file>", NODE_MAP_HELP)
    .action((opts, cmd) => syncCommand(opts, globals(cmd)));

  wf.command("analyze").description("node packs and models a workflow file needs (no environment needed)")
    .argument("<file>")
    .option("--node-map <file>", NODE_MAP_HELP)
    .action(async (file, opts, cmd) => await analyze(file, opts.nodeMap, globals(cmd).env));

  wf.command("import").description(
    "track a workflow and add the node packs and models it needs, in one change (shown before it is applied)",
  )
    .argument(
      "<fileOrUrl>",
      "a workflow JSON, a PNG/WebP ComfyUI saved, a bundle made by 'workflow export', or an http(s) URL",
    )
    .option("--name <name>", "name to save it under (default: from the file)")
    .option("--node-map <file>", NODE_MAP_HELP)
    .option("--non-interactive", "ask nothing: skip what cannot be resolved and report it (implies --yes)")
    .option("--no-apply", "only edit and commit .cec")
    .action((source, opts, cmd) => importWorkflow(source, opts, globals(cmd)));

  wf.command("export").description("write a workflow bundle (.tar.gz) with its dependency manifest")
    .argument("<name>")
    .option("--out <file>", "where to write (default: <name>.comfydock-workflow.tar.gz)")
    .action(async (name, opts, cmd) => {
      await exportWorkflow(await resolveEnv(globals(cmd).env), name, opts.out);
    });
}
