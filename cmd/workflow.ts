/** Workflows: status, track, untrack, sync, analyze, import, export. */
import { Option } from "@commander-js/extra-typings";
import type { Command } from "@commander-js/extra-typings";
import { CdError } from "../lib/errors.ts";
import { info, paint, printJson, println, ui } from "../lib/ui.ts";
import type { EnvPaths } from "../workspace/paths.ts";
import { confirm, globals, resolveEnv } from "./context.ts";

const NODE_MAP_HELP = "ComfyUI-Manager's extension-node-map.json (default: $COMFYDOCK_NODE_MAP)";

async function resolverFor(nodeMap?: string) {
  const { loadResolver } = await import("../providers/workflows/files.ts");
  return (await loadResolver(nodeMap)).resolver;
}

/** After a `.cec` change: show the plan it leads to and apply it (asking first), unless --no-apply. */
async function reconcile(paths: EnvPaths, apply: boolean): Promise<void> {
  if (!apply) return;
  const { planAndApply } = await import("./reconcile.ts");
  await planAndApply(paths);
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

async function analyze(file: string, nodeMap?: string): Promise<void> {
  const { readWorkflowFile, loadResolver } = await import("../providers/workflows/files.ts");
  const { analyzeWorkflow, requirements } = await import("../providers/workflows/analyze.ts");
  const { resolver, source } = await loadResolver(nodeMap);
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
        (source.startsWith("built-in")
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
  const { buildExport } = await import("../providers/workflows/bundle.ts");
  const { writeFileAtomic, exists } = await import("../lib/fsx.ts");
  const desired = await readDesired(paths);
  const spec = desired.workflows[name];
  // A tracked workflow is exported as committed in .cec; an untracked one as saved in ComfyUI.
  const path = spec
    ? join(paths.cecWorkflows, relOfFile(spec.file))
    : join(paths.userWorkflows, relOfName(name));
  const workflow = await readWorkflowFile(path);
  const analysis = analyzeWorkflow(workflow, await resolverFor(), path);
  const bundle = buildExport(name, workflow, analysis, desired);
  const target = out ?? `${name.replaceAll("/", "_")}.comfydock-workflow.json`;
  if (!out && await exists(target)) {
    throw new CdError("EXPORT_EXISTS", `${target} already exists`, {
      hint: "choose the file with --out FILE",
    });
  }
  await writeFileAtomic(target, JSON.stringify(bundle, null, 2) + "\n");
  if (ui.json) printJson({ file: target, nodes: bundle.nodes, models: bundle.models });
  else {
    println(
      `Exported '${name}' to ${target}: ${bundle.nodes.length} custom pack(s), ${bundle.models.length} model(s).`,
    );
    if (bundle.unknown_node_types.length) {
      println(`Unknown node types (not in the manifest): ${bundle.unknown_node_types.join(", ")}`);
    }
  }
}

async function importWorkflow(
  paths: EnvPaths,
  source: string,
  opts: { name?: string; nodeMap?: string; apply: boolean },
): Promise<void> {
  const { basename } = await import("node:path");
  const { readDesired } = await import("../reconcile/desired.ts");
  const { analyzeWorkflow } = await import("../providers/workflows/analyze.ts");
  const { importNeeds, unwrapImport } = await import("../providers/workflows/bundle.ts");
  const { readImportSource, placeAndTrack } = await import("../providers/workflows/import.ts");
  const { ModelIndex } = await import("../providers/models/index_db.ts");
  const { exists } = await import("../lib/fsx.ts");
  const resolver = await resolverFor(opts.nodeMap);
  const unwrapped = unwrapImport(await readImportSource(source));
  const analysis = analyzeWorkflow(unwrapped.workflow, resolver, source);
  const desired = await readDesired(paths);
  const index = await exists(paths.workspace.modelIndexDb)
    ? ModelIndex.open(paths.workspace.modelIndexDb)
    : null;
  let needs;
  try {
    needs = importNeeds(analysis, desired, index, unwrapped.manifestModels);
  } finally {
    index?.close();
  }
  const name = opts.name ?? unwrapped.name ?? basename(source).replace(/(\.comfydock-workflow)?\.json$/i, "");
  const addNodes = needs.nodes.filter((n) => n.status === "to-add");
  const downloads = needs.models.filter((m) => m.status === "download");
  const unresolved = needs.models.filter((m) => m.status === "unresolved");
  if (ui.json) {
    printJson({ name, needs });
  } else {
    println(`Workflow '${name}' needs:`);
    for (const n of needs.nodes) {
      println(
        `  node pack ${n.package}: ${
          n.status === "to-add" ? paint("yellow", "to add") : "in the environment"
        }`,
      );
    }
    for (const t of needs.unknownTypes) println(`  node type ${t}: ${paint("red", "no pack found")}`);
    for (const a of needs.ambiguous) println(`  node type ${a.type}: one of ${a.candidates.join(", ")}`);
    for (const m of needs.models) {
      const where = m.status === "in-environment"
        ? `in the environment (model.${m.key})`
        : m.status === "on-disk"
        ? `on disk (${m.path}, found by ${m.by})`
        : m.status === "download"
        ? paint("yellow", `download from ${m.url}`)
        : paint("red", "not found and no download URL");
      println(`  model ${m.category}/${m.name}${m.optional ? " (optional)" : ""}: ${where}`);
    }
  }
  if (!await confirm(`Save '${name}' into ComfyUI's workflows and track it?`)) {
    info("Import cancelled; nothing was changed.");
    return;
  }
  const { rel } = await placeAndTrack(paths, { name, workflow: unwrapped.workflow, resolver });
  if (!ui.json) println(`Saved ComfyUI/user/default/workflows/${rel} and tracked it as '${name}'.`);
  // Adding packs and models goes through their own commands, each of which plans and applies its change.
  const todo = [
    ...addNodes.map((n) => `comfydock node add ${n.package}`),
    ...downloads.map((m) => `comfydock model add ${m.url} --category ${m.category}`),
  ];
  if (todo.length && !ui.json) println(`To add what it needs:\n${todo.map((t) => `  ${t}`).join("\n")}`);
  if (unresolved.length || needs.unknownTypes.length) {
    info(
      `${
        paint("yellow", "warning:")
      } ${unresolved.length} model(s) and ${needs.unknownTypes.length} node type(s) ` +
        "could not be resolved; they were skipped",
    );
  }
  await reconcile(paths, opts.apply);
}

export function registerWorkflowCommands(program: Command): void {
  const wf = program.command("workflow").description("tracked ComfyUI workflows");
  wf.command("status").description("tracked / untracked / ignored, and sync state of each workflow")
    .action(async (_opts, cmd) => await status(await resolveEnv(globals(cmd).env)));

  wf.command("track").description("track workflows in .cec (with their node and model requirements)")
    .argument("[name]", "workflow path under ComfyUI/user/default/workflows, without .json")
    .option("--all", "every untracked (and not ignored) workflow")
    .option("--pattern <glob>", "with --all: only paths matching this glob")
    .option("--node-map <file>", NODE_MAP_HELP)
    .option("--no-apply", "only edit and commit .cec")
    .action(async (name, opts, cmd) => {
      const paths = await resolveEnv(globals(cmd).env);
      if (!name && !opts.all) {
        throw new CdError("WORKFLOW_NAME_MISSING", "name a workflow to track, or pass --all", {
          hint: "'comfydock workflow status' lists the workflows in ComfyUI",
        });
      }
      const { readDesired } = await import("../reconcile/desired.ts");
      const { trackWorkflows } = await import("../providers/workflows/track.ts");
      const { commitWorkflowChange } = await import("../providers/workflows/sync.ts");
      const change = await trackWorkflows(paths, await readDesired(paths), {
        names: name ? [name] : undefined,
        all: opts.all,
        pattern: opts.pattern,
        resolver: await resolverFor(opts.nodeMap),
      });
      if (change.names.length === 0) {
        if (ui.json) printJson({ tracked: [] });
        else println("No untracked workflows to track.");
        return;
      }
      await commitWorkflowChange(paths, change, `workflow track: ${change.names.join(", ")}`);
      if (ui.json) printJson({ tracked: change.names });
      else println(`Tracked ${change.names.map((n) => `'${n}'`).join(", ")} in .cec.`);
      await reconcile(paths, opts.apply);
    });

  wf.command("untrack").description("stop tracking a workflow (its file in ComfyUI stays)").argument("<name>")
    .option("--no-apply", "only edit and commit .cec")
    .action(async (name, opts, cmd) => {
      const paths = await resolveEnv(globals(cmd).env);
      const { readDesired } = await import("../reconcile/desired.ts");
      const { untrackWorkflow } = await import("../providers/workflows/track.ts");
      const { commitWorkflowChange } = await import("../providers/workflows/sync.ts");
      const change = untrackWorkflow(await readDesired(paths), name);
      await commitWorkflowChange(paths, change, `workflow untrack: ${change.names[0]}`);
      if (ui.json) printJson({ untracked: change.names });
      else println(`Untracked '${change.names[0]}'; its file in ComfyUI was kept.`);
      await reconcile(paths, opts.apply);
    });

  wf.command("sync").description("capture UI edits into .cec and restore .cec versions into ComfyUI")
    .addOption(
      new Option("--strategy <s>", "who wins a conflict: ours = .cec, theirs = ComfyUI").choices([
        "ours",
        "theirs",
      ]),
    )
    .option("--node-map <file>", NODE_MAP_HELP)
    .action(async (opts, cmd) => {
      const paths = await resolveEnv(globals(cmd).env);
      const { syncWorkflows } = await import("../providers/workflows/sync.ts");
      const r = await syncWorkflows(paths, {
        strategy: opts.strategy as "ours" | "theirs" | undefined,
        resolver: await resolverFor(opts.nodeMap),
      });
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
    });

  wf.command("analyze").description("node packs and models a workflow file needs (no environment needed)")
    .argument("<file>")
    .option("--node-map <file>", NODE_MAP_HELP)
    .action(async (file, opts) => await analyze(file, opts.nodeMap));

  wf.command("import").description("save a workflow into ComfyUI, track it, and show what it needs")
    .argument("<fileOrUrl>", "a workflow JSON, or a file made by 'workflow export'")
    .option("--name <name>", "name to save it under (default: from the file)")
    .option("--node-map <file>", NODE_MAP_HELP)
    .option("--no-apply", "only edit and commit .cec")
    .action(async (source, opts, cmd) => {
      const paths = await resolveEnv(globals(cmd).env);
      await importWorkflow(paths, source, { name: opts.name, nodeMap: opts.nodeMap, apply: opts.apply });
    });

  wf.command("export").description("write a workflow with its dependency manifest (packs, models, sources)")
    .argument("<name>")
    .option("--out <file>", "where to write (default: <name>.comfydock-workflow.json)")
    .action(async (name, opts, cmd) => {
      await exportWorkflow(await resolveEnv(globals(cmd).env), name, opts.out);
    });
}
