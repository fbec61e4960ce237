/** Custom nodes: add, remove, update, list, find, show, index update. One named handler per subcommand. */
import type { Command } from "@commander-js/extra-typings";
import {
  changeData,
  changeOutcome,
  confirm,
  type GlobalFlags,
  globals,
  resolveEnv,
  runChange,
  settings,
  withEnv,
  workspace,
} from "./context.ts";
import { info, paint, printJson, println, step, ui } from "../lib/ui.ts";
import type { WorkspacePaths } from "../reconcile/paths.ts";
import type { ResolvedNode } from "../providers/nodes/add.ts";
import type { ChangeResult } from "../workspace/session.ts";
import { withTask } from "../lib/progress.ts";

/** The workspace's registry client with this machine's settings (workspace/providers.ts openRegistry). */
async function openRegistryFor(ws: WorkspacePaths, refresh = false) {
  const { openRegistry } = await import("../workspace/providers.ts");
  return openRegistry(ws, await settings(), refresh);
}

/** JSON data of node add/remove/update: the nodes the change is about, then the change (see changeData). */
function nodesData(
  nodes: { id: string; spec?: unknown; requirements?: string[]; warnings?: string[] }[],
  r: ChangeResult | null,
) {
  return {
    nodes: nodes.map((n) => ({
      id: n.id,
      spec: n.spec ?? null,
      requirements: n.requirements ?? [],
      warnings: n.warnings ?? [],
    })),
    ...changeData(r),
  };
}

function report(verb: string, nodes: ResolvedNode[], r: ChangeResult, apply: boolean) {
  if (ui.json) return printJson(nodesData(nodes, r));
  if (r.accepted) {
    for (const n of nodes) {
      println(`${paint("green", verb)} ${n.summary}`);
      if (n.requirements.length) {
        println(`  requirements -> [dependency-groups].${n.id}: ${n.requirements.join(", ")}`);
      }
    }
  }
  println(changeOutcome(r, apply));
}

const TORCH_CHANGE_HELP =
  "let the node move the pinned torch/torchvision/torchaudio (the new versions are pinned)";

function warn(lines: string[]) {
  for (const w of lines) info(`${paint("yellow", "warning:")} ${w}`);
}

async function nodeAdd(
  specs: string[],
  opts: { dev?: boolean; apply: boolean; refresh?: boolean; allowTorchChange?: boolean },
  g: GlobalFlags,
): Promise<void> {
  const add = await import("../providers/nodes/add.ts");
  const { CdError } = await import("../lib/errors.ts");
  const { prepared: resolved, result } = await runChange(g, "node add", async (paths, app) => {
    const { registry, close } = await openRegistryFor(paths.workspace, opts.refresh);
    try {
      const resolved: ResolvedNode[] = [];
      for (const s of specs) {
        const spec = add.parseNodeSpec(s, { dev: opts.dev });
        const r = await withTask(
          app.progress,
          `resolving ${s}`,
          () =>
            add.resolveNodeSpec(spec, {
              paths,
              registry,
              net: app.settings,
              log: app.log,
              progress: app.progress,
            }),
        );
        if (resolved.some((x) => x.id === r.id)) {
          throw new CdError("NODE_SPEC_DUPLICATE", `node '${r.id}' is given twice`, {
            hint: "give each node once",
          });
        }
        resolved.push(r);
      }
      warn(resolved.flatMap((r) => r.warnings));
      return resolved;
    } finally {
      close();
    }
  }, (resolved, s) => ({
    message: `node add ${resolved.map((r) => r.id).join(" ")}`,
    apply: opts.apply,
    allowTorchChange: opts.allowTorchChange,
    edit: (desired) => {
      for (const r of resolved) add.assertNotPresent(desired.pyproject, r, s.paths);
      return { edits: add.addEdits(desired.pyproject, resolved) };
    },
  }));
  report("added", resolved, result, opts.apply);
}

async function nodeRemove(
  id: string,
  opts: { apply: boolean; force?: boolean },
  g: GlobalFlags,
): Promise<void> {
  const add = await import("../providers/nodes/add.ts");
  const { readDesired } = await import("../reconcile/desired.ts");
  // Asked before the change: a tracked workflow that needs the node would no longer load.
  const needing = add.workflowsNeeding(await readDesired(await resolveEnv(g.env)), id);
  if (needing.length) {
    const need = `tracked workflows need node '${id}': ${needing.join(", ")}`;
    warn([`${need} (they will not load without it)`]);
    if (!await confirm(`${need}. Remove it anyway?`, { destructive: true })) {
      if (ui.json) return printJson({ ...nodesData([{ id }], null), accepted: false });
      return info(`Node '${id}' was not removed; .cec is unchanged.`);
    }
  }
  let removed: unknown = null;
  const { result: r } = await runChange(g, "node remove", () => Promise.resolve(null), (_p, s) => ({
    message: `node remove ${id}`,
    apply: opts.apply,
    edit: async (desired) => {
      const spec = add.requireNode(desired.pyproject, id);
      removed = spec;
      await add.assertRemovable(s.paths, id, spec, opts.force ?? false);
      return { edits: add.removeEdits(desired.pyproject, id), files: add.removedFiles(spec) };
    },
  }), { force: opts.force ?? false });
  if (ui.json) return printJson(nodesData([{ id, spec: removed }], r));
  println(
    r.accepted
      ? `${paint("green", "removed")} ${id}. ${changeOutcome(r, opts.apply)}`
      : changeOutcome(r, opts.apply),
  );
}

/** `node enable` / `node disable`: one edit of `enabled`, through the same change path as add/remove. */
async function nodeToggle(id: string, enabled: boolean, opts: { apply: boolean }, g: GlobalFlags) {
  const add = await import("../providers/nodes/add.ts");
  const verb = enabled ? "enable" : "disable";
  let already = false;
  let spec: unknown = null;
  const { result: r } = await runChange(g, `node ${verb}`, () => Promise.resolve(null), (_p, s) => ({
    message: `node ${verb} ${id}`,
    apply: opts.apply,
    edit: (desired) => {
      spec = add.requireNode(desired.pyproject, id);
      const edits = add.enableEdits(s.paths, id, add.requireNode(desired.pyproject, id), enabled);
      already = edits === null;
      return { edits: edits ?? [] };
    },
  }));
  if (ui.json) return printJson(nodesData([{ id, spec }], r));
  if (already) return println(`${id} is already ${verb}d.`);
  println(
    r.accepted
      ? `${paint("green", `${verb}d`)} ${id}. ${changeOutcome(r, opts.apply)}`
      : changeOutcome(r, opts.apply),
  );
}

async function nodeUpdate(
  id: string | undefined,
  opts: {
    version?: string;
    ref?: string;
    repository?: string;
    apply: boolean;
    refresh?: boolean;
    allowTorchChange?: boolean;
  },
  g: GlobalFlags,
): Promise<void> {
  const add = await import("../providers/nodes/add.ts");
  const { CdError } = await import("../lib/errors.ts");
  const { readDesired } = await import("../reconcile/desired.ts");
  if (!id && (opts.version || opts.ref || opts.repository)) {
    throw new CdError("NODE_UPDATE_INVALID", "--version, --ref and --repository need a node id", {
      hint: "comfydock node update ID --version V (registry) or --ref REF (git)",
    });
  }
  const { prepared: changed, result } = await runChange(g, "node update", async (paths, app) => {
    const desired = await readDesired(paths);
    const ids = id ? [id] : Object.keys(desired.nodes);
    // Refresh by default: 'update' is the moment to see new versions.
    const { registry, close } = await openRegistryFor(paths.workspace, opts.refresh ?? true);
    try {
      const specs = Object.fromEntries(ids.map((nid) => [nid, add.requireNode(desired.pyproject, nid)]));
      warn(await add.pinnedVersionWarnings(specs, registry));
      const changed: ResolvedNode[] = [];
      for (const [nid, spec] of Object.entries(specs)) {
        const r = await withTask(
          app.progress,
          `looking for a newer ${nid}`,
          () => add.resolveUpdate(nid, spec, opts, { paths, registry, net: app.settings, log: app.log }),
        );
        if (r) changed.push(r);
      }
      warn(changed.flatMap((r) => r.warnings));
      return changed;
    } finally {
      close();
    }
  }, (changed) => ({
    message: `node update ${changed.map((r) => r.id).join(" ")}`,
    apply: opts.apply,
    allowTorchChange: opts.allowTorchChange,
    edit: (desired) => {
      for (const r of changed) add.requireNode(desired.pyproject, r.id);
      return { edits: changed.length ? add.addEdits(desired.pyproject, changed) : [] };
    },
  }));
  if (!changed.length) {
    if (ui.json) return printJson(nodesData([], null));
    return println(id ? `${id} is already up to date.` : "All nodes are up to date.");
  }
  report("updated", changed, result, opts.apply);
}

async function nodeList(g: GlobalFlags): Promise<void> {
  const { nodeStatus } = await import("../providers/nodes/status.ts");
  const rows = await withEnv(g, "node list", "read", async (s) => {
    const { readDesired } = await import("../reconcile/desired.ts");
    const { nodeProvider } = await import("../providers/nodes/provider.ts");
    const desired = await readDesired(s.paths);
    const observed = await nodeProvider.observe(desired, {
      paths: s.paths,
      settings: s.app.settings,
      readOnly: true,
    });
    return nodeStatus(desired, observed);
  });
  if (ui.json) return printJson({ nodes: rows });
  if (!rows.length) return println("No custom nodes.");
  const marks = { ok: " ", missing: "+", drift: "~", unmanaged: "-", kept: "!" } as const;
  const colors = {
    ok: "green",
    missing: "green",
    drift: "yellow",
    unmanaged: "red",
    kept: "yellow",
  } as const;
  for (const r of rows) {
    println(
      `${paint(colors[r.state], marks[r.state])} ${r.id.padEnd(32)} ${r.pin.padEnd(28)} ${
        paint(colors[r.state], r.state)
      }${r.detail ? `: ${r.detail}` : ""}`,
    );
  }
}

export function registerNodeCommands(program: Command): void {
  const node = program.command("node").description("custom nodes (registry, git, local)");

  node.command("add").description("pin nodes in .cec (with their requirements) and install them")
    .argument("<spec...>", "registry-id[@version] | git-url[@ref] | path (with --dev)")
    .option("--dev", "a local node you develop (linked; never deleted or overwritten)")
    .option("--no-apply", "only edit and commit .cec")
    .option("--refresh", "ignore cached registry replies")
    .option("--allow-torch-change", TORCH_CHANGE_HELP)
    .action((specs, opts, cmd) => nodeAdd(specs, opts, globals(cmd)));

  node.command("remove").description("remove a node from .cec (its folder goes to the trash on apply)")
    .argument("<id>")
    .option("--no-apply", "only edit and commit .cec")
    .option("--force", "remove a git node even with uncommitted changes (its checkout goes to the trash)")
    .action((id, opts, cmd) => nodeRemove(id, opts, globals(cmd)));

  for (const enabled of [false, true]) {
    node.command(enabled ? "enable" : "disable").description(
      enabled
        ? "enable a disabled node (it moves back to custom_nodes/)"
        : "disable a node the way ComfyUI-Manager does (custom_nodes/.disabled/, x.py.disabled)",
    )
      .argument("<id>")
      .option("--no-apply", "only edit and commit .cec")
      .action((id, opts, cmd) => nodeToggle(id, enabled, opts, globals(cmd)));
  }

  node.command("update").description("move nodes to the latest (or a given) version or commit")
    .argument("[id]")
    .option("--version <v>", "registry version to pin (default: the latest)")
    .option("--ref <ref>", "git nodes: branch, tag or commit to pin (default: the head of its ref)")
    .option("--repository <url>", "git nodes: take --ref from this repository (a fork)")
    .option("--no-apply", "only edit and commit .cec")
    .option("--refresh", "ignore cached registry replies")
    .option("--allow-torch-change", TORCH_CHANGE_HELP)
    .action((id, opts, cmd) => nodeUpdate(id, opts, globals(cmd)));

  node.command("list").description("nodes in .cec and on disk, with drift marks")
    .action((_o, cmd) => nodeList(globals(cmd)));

  node.command("find").description("search the registry (the local node index when offline)")
    .argument("<query>")
    .option("--limit <n>", "results to show", "20")
    .option("--refresh", "ignore cached registry replies")
    .action(async (query, opts) => {
      const ws = workspace();
      const { CdError } = await import("../lib/errors.ts");
      const { registry, close } = await openRegistryFor(ws, opts.refresh);
      const limit = Math.max(1, Number(opts.limit) || 20);
      let rows: {
        id: string;
        name: string | null;
        version: string | null;
        downloads: number;
        description: string | null;
      }[];
      let source = "registry";
      try {
        const page = await registry.search(query, { limit });
        rows = page.nodes.map((n) => ({
          id: n.id,
          name: n.name ?? null,
          version: n.latest_version?.version ?? null,
          downloads: n.downloads ?? 0,
          description: n.description ?? null,
        }));
      } catch (e) {
        if (!(e instanceof CdError) || !/^HTTP_/.test(e.code)) throw e;
        const { exists } = await import("../lib/fsx.ts");
        if (!await exists(ws.nodeIndexDb)) {
          throw new CdError(e.code, e.message, {
            hint: "no local node index to search offline; build one with 'comfydock node index update' " +
              "when the registry is reachable (or --from a copy of extension-node-map.json)",
          });
        }
        const { NodeIndex } = await import("../providers/nodes/node_index.ts");
        const index = NodeIndex.open(ws.nodeIndexDb);
        try {
          rows = index.search(query, limit).map((h) => ({
            id: h.id,
            name: h.name,
            version: h.latest_version,
            downloads: h.downloads,
            description: h.description,
          }));
        } finally {
          index.close();
        }
        source = "node index (offline)";
        info(
          `${
            paint("yellow", "warning:")
          } the registry is unreachable; results come from the local node index`,
        );
      } finally {
        close();
      }
      if (ui.json) return printJson({ source, results: rows });
      if (!rows.length) return println(`No nodes match '${query}'.`);
      for (const r of rows) {
        println(
          `${paint("bold", r.id)}${r.name && r.name !== r.id ? ` (${r.name})` : ""}${
            r.version ? ` ${r.version}` : ""
          }${r.downloads ? `  (${r.downloads} downloads)` : ""}`,
        );
        if (r.description) println(`    ${r.description.split("\n")[0].slice(0, 100)}`);
      }
    });

  node.command("show").description("a registry node: description, repository, versions")
    .argument("<id>")
    .option("--refresh", "ignore cached registry replies")
    .action(async (id, opts) => {
      const { registry, close } = await openRegistryFor(workspace(), opts.refresh);
      try {
        const n = await registry.getNode(id);
        const versions = await registry.listVersions(n.id);
        if (ui.json) return printJson({ node: n, versions });
        println(`${paint("bold", n.id)}${n.name && n.name !== n.id ? ` (${n.name})` : ""}`);
        if (n.description) println(`  ${n.description.split("\n")[0]}`);
        if (n.repository) println(`  repository: ${n.repository}`);
        if (n.publisher?.id) println(`  publisher:  ${n.publisher.id}`);
        println(`  downloads:  ${n.downloads ?? 0}`);
        println(`  latest:     ${n.latest_version?.version ?? "none"}`);
        println(`  versions:`);
        for (const v of versions.slice(0, 15)) {
          const status = (v.status ?? "").replace(/^NodeVersionStatus/, "");
          println(
            `    ${v.version.padEnd(12)} ${v.createdAt?.slice(0, 10) ?? ""}${
              status && status !== "Active" ? `  [${status.toLowerCase()}]` : ""
            }${v.deprecated ? "  [deprecated]" : ""}`,
          );
        }
        if (versions.length > 15) println(`    ... ${versions.length - 15} more`);
      } finally {
        close();
      }
    });

  node.command("index").description("the local node index (offline search, workflow analysis)")
    .command("update").description("fill it from the registry and ComfyUI-Manager's extension-node-map.json")
    .option(
      "--from <fileOrUrl>",
      "extension-node-map.json to read (default: COMFYDOCK_NODE_MAP_URL or GitHub)",
    )
    .option("--no-registry", "only read the node map")
    .action(async (opts) => {
      const { requireWorkspace } = await import("./context.ts");
      const ws = await requireWorkspace();
      const { updateNodeIndex } = await import("../providers/nodes/node_index.ts");
      const { registry, close } = await openRegistryFor(ws, true);
      try {
        const r = await updateNodeIndex(ws.nodeIndexDb, {
          registry: opts.registry ? registry : null,
          from: opts.from,
          defaultMapUrl: (await settings()).nodeMapUrl,
          net: await settings(),
          log: step,
        });
        warn(r.warnings);
        if (ui.json) return printJson(r);
        if (r.registryNodes !== null) {
          println(`registry: ${r.registryNodes} nodes, ${r.registryClasses} node classes`);
        }
        if (r.mapClasses !== null) {
          println(`node map: ${r.mapClasses} node classes, ${r.coreTypes} core types`);
        }
        println(`Node index: ${ws.nodeIndexDb}`);
      } finally {
        close();
      }
    });
}
