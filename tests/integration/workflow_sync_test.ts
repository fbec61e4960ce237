/**
 * Tracking and syncing on real files and a real `.cec` git repo: track writes the pyproject entry with its
 * requires sub-table, the three-way status, capture, restore through plan/apply with the replaced file in
 * the trash, conflicts that keep both versions, strategies, untrack, and untracked files left alone.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse } from "smol-toml";
import { makeEnvSkeleton } from "../../fixtures/env_skeleton.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { listFiles } from "../../lib/fsx.ts";
import { commit, log } from "../../providers/git/git.ts";
import { readDesired } from "../../reconcile/desired.ts";
import { applyPlan, type EngineOptions, makePlan } from "../../reconcile/engine.ts";
import type { EnvPaths } from "../../reconcile/paths.ts";
import { type NodePackEntry, NodePackResolver } from "../../providers/workflows/node_map.ts";
import { workflowProvider } from "../../providers/workflows/provider.ts";
import { workflowStatus } from "../../providers/workflows/status.ts";
import { type SyncStrategy, syncWorkflows, track, untrack } from "../../workspace/workflow_sync.ts";
import { captureEnvironment } from "../../workspace/capture.ts";
import { type Session, withSession } from "../../workspace/session.ts";
import { trackWorkflows, untrackWorkflow } from "../../providers/workflows/track.ts";
import { testApp, testSettings } from "../../fixtures/app.ts";

const engine: EngineOptions = { providers: [workflowProvider], settings: testSettings() };

/** A write session on the environment with the workflow provider only (what the commands hold). */
function session<T>(paths: EnvPaths, fn: (s: Session) => Promise<T>): Promise<T> {
  return withSession(testApp(paths.workspace, { providers: engine.providers }), paths, "test", "write", fn);
}
const resolver = new NodePackResolver(
  [{
    classType: "ImpactWildcardProcessor",
    pack: "comfyui-impact-pack",
    source: "registry",
  } as NodePackEntry],
  new Set(),
);

function workflow(ckpt: string, extra: object[] = []): string {
  return JSON.stringify({
    nodes: [
      { id: 1, type: "CheckpointLoaderSimple", mode: 0, widgets_values: [ckpt], properties: {} },
      { id: 2, type: "ImpactWildcardProcessor", mode: 0, widgets_values: [], properties: {} },
      ...extra,
    ],
    links: [],
  });
}

async function setup(root: string): Promise<EnvPaths> {
  const paths = await makeEnvSkeleton(root, "wf");
  await Deno.mkdir(join(paths.userWorkflows, "sub"), { recursive: true });
  await Deno.mkdir(join(paths.userWorkflows, "scratch"), { recursive: true });
  await Deno.writeTextFile(join(paths.userWorkflows, "portrait.json"), workflow("sd15.safetensors"));
  await Deno.writeTextFile(join(paths.userWorkflows, "sub", "flux.json"), workflow("flux.safetensors"));
  await Deno.writeTextFile(join(paths.userWorkflows, "scratch", "tmp.json"), workflow("x.safetensors"));
  await Deno.writeTextFile(join(paths.userWorkflows, "loose.json"), workflow("y.safetensors"));
  await Deno.writeTextFile(paths.ignoreFile, "scratch/\n");
  return paths;
}

async function states(paths: EnvPaths): Promise<Record<string, string>> {
  const s = await workflowStatus(paths, await readDesired(paths));
  return Object.fromEntries(s.map((e) => [e.name, e.state]));
}

async function trackNames(paths: EnvPaths, names: string[]): Promise<void> {
  const { result } = await session(paths, (s) => track(s, { names, resolver, apply: false }));
  assert.ok(result.commit, "the track is committed");
}

function sync(paths: EnvPaths, opts: { strategy?: SyncStrategy; now?: Date } = {}) {
  return session(paths, (s) => syncWorkflows(s, { resolver, ...opts }));
}

const ui = (paths: EnvPaths, rel: string) => Deno.readTextFile(join(paths.userWorkflows, rel));
const cec = (paths: EnvPaths, rel: string) => Deno.readTextFile(join(paths.cecWorkflows, rel));

/** Files under the environment's engine state that hold `text` (the apply trash keeps replaced files). */
async function trashHolding(paths: EnvPaths, text: string): Promise<string[]> {
  const found: string[] = [];
  for (const rel of await listFiles(paths.state)) {
    if (rel.endsWith(".json") && await Deno.readTextFile(join(paths.state, rel)) === text) found.push(rel);
  }
  return found;
}

Deno.test("track: entry with requires sub-table, .cec copy, commit; untracked and ignored files listed", async () => {
  await withTempDir(async (root) => {
    const paths = await setup(root);
    assert.deepEqual(await states(paths), {
      "loose": "untracked",
      "portrait": "untracked",
      "scratch/tmp": "ignored",
      "sub/flux": "untracked",
    });
    await trackNames(paths, ["portrait", "sub/flux"]);
    const text = await Deno.readTextFile(paths.pyproject);
    assert.match(text, /^\[tool\.comfydock\.workflows\.tracked\.portrait\]$/m);
    assert.match(text, /^\[tool\.comfydock\.workflows\.tracked\.portrait\.requires\]$/m);
    const data = parse(text) as { tool: { comfydock: { workflows: { tracked: Record<string, unknown> } } } };
    assert.deepEqual(JSON.parse(JSON.stringify(data.tool.comfydock.workflows.tracked["sub/flux"])), {
      file: "workflows/sub/flux.json",
      requires: { nodes: ["comfyui-impact-pack"], models: ["checkpoints/flux.safetensors"], python: [] },
    });
    assert.equal(await cec(paths, "sub/flux.json"), await ui(paths, "sub/flux.json"));
    assert.deepEqual(await states(paths), {
      "loose": "untracked",
      "portrait": "in-sync",
      "scratch/tmp": "ignored",
      "sub/flux": "in-sync",
    });
    assert.match((await log(paths.cec))[0].message, /^workflow track: portrait, sub\/flux/);
    const { plan } = await makePlan(paths, engine);
    assert.equal(plan.actions.length, 0);
  });
});

Deno.test("track --all with a pattern; unknown names and escaping paths are refused", async () => {
  await withTempDir(async (root) => {
    const paths = await setup(root);
    const desired = await readDesired(paths);
    const change = await trackWorkflows(paths, desired, { all: true, pattern: "sub/**", resolver });
    assert.deepEqual(change.names, ["sub/flux"]);
    const all = await trackWorkflows(paths, desired, { all: true, resolver });
    assert.deepEqual(
      all.names.sort(),
      ["loose", "portrait", "sub/flux"],
      "ignored files are not tracked by --all",
    );
    await assert.rejects(trackWorkflows(paths, desired, { names: ["nope"], resolver }), /no workflow 'nope'/);
    await assert.rejects(
      trackWorkflows(paths, desired, { names: ["../etc/x"], resolver }),
      /not a workflow file/,
    );
  });
});

Deno.test("UI edit: plan leaves it alone with a note; capture takes it into .cec and refreshes requires", async () => {
  await withTempDir(async (root) => {
    const paths = await setup(root);
    await trackNames(paths, ["portrait"]);
    const edited = workflow("sdxl.safetensors");
    await Deno.writeTextFile(join(paths.userWorkflows, "portrait.json"), edited);
    assert.equal((await states(paths)).portrait, "changed-in-comfyui");
    const { plan } = await makePlan(paths, engine);
    assert.equal(plan.actions.length, 0);
    assert.ok(
      plan.notes.some((n) => n.startsWith("workflow.portrait: changed in ComfyUI")),
      plan.notes.join("\n"),
    );

    const capture = await session(paths, (s) => captureEnvironment(s));
    assert.deepEqual(capture.workflows, ["portrait"]);
    assert.ok(capture.commit);
    assert.equal(await cec(paths, "portrait.json"), edited);
    const after = await readDesired(paths);
    assert.deepEqual(after.workflows.portrait.requires?.models, ["checkpoints/sdxl.safetensors"]);
    assert.equal((await states(paths)).portrait, "in-sync");
  });
});

Deno.test(".cec edit and deleted UI file: apply restores from .cec, the replaced file goes to the trash", async () => {
  await withTempDir(async (root) => {
    const paths = await setup(root);
    await trackNames(paths, ["portrait", "sub/flux"]);
    const oldUi = await ui(paths, "portrait.json");
    const newCec = workflow("from-git.safetensors");
    await Deno.writeTextFile(join(paths.cecWorkflows, "portrait.json"), newCec);
    await Deno.remove(join(paths.userWorkflows, "sub", "flux.json"));
    const looseBefore = await ui(paths, "loose.json");
    assert.deepEqual(
      [(await states(paths)).portrait, (await states(paths))["sub/flux"]],
      ["changed-in-cec", "missing-in-comfyui"],
    );

    const { plan } = await makePlan(paths, engine);
    assert.deepEqual(plan.actions.map((a) => [a.address, a.kind]), [
      ["workflow.portrait", "update"],
      ["workflow.sub/flux", "create"],
    ]);
    await applyPlan(paths, plan, engine);
    assert.equal(await ui(paths, "portrait.json"), newCec);
    assert.equal(await ui(paths, "sub/flux.json"), await cec(paths, "sub/flux.json"));
    assert.equal((await trashHolding(paths, oldUi)).length, 1, "the replaced workflow is kept in the trash");
    assert.equal(await ui(paths, "loose.json"), looseBefore, "untracked workflows are never touched");
    assert.deepEqual(await states(paths), {
      "loose": "untracked",
      "portrait": "in-sync",
      "scratch/tmp": "ignored",
      "sub/flux": "in-sync",
    });
    assert.equal((await makePlan(paths, engine)).plan.actions.length, 0, "a second plan is empty");
  });
});

Deno.test("sync: captures UI edits, restores .cec edits, keeps both versions of a conflict", async () => {
  await withTempDir(async (root) => {
    const paths = await setup(root);
    await trackNames(paths, ["portrait", "sub/flux", "loose"]);
    const uiEdit = workflow("ui-edit.safetensors");
    const cecEdit = workflow("cec-edit.safetensors");
    await Deno.writeTextFile(join(paths.userWorkflows, "portrait.json"), uiEdit); // UI only
    await Deno.writeTextFile(join(paths.cecWorkflows, "sub", "flux.json"), cecEdit); // .cec only
    const bothUi = workflow("both-ui.safetensors");
    const bothCec = workflow("both-cec.safetensors");
    await Deno.writeTextFile(join(paths.userWorkflows, "loose.json"), bothUi);
    await Deno.writeTextFile(join(paths.cecWorkflows, "loose.json"), bothCec);

    const now = new Date("2026-01-02T03:04:05.678Z");
    const r = await sync(paths, { now });
    assert.deepEqual(r.captured, ["portrait"]);
    assert.deepEqual(r.restored, ["sub/flux"]);
    assert.deepEqual(r.conflicts, [{
      name: "loose",
      file: "loose.json",
      conflictFile: "loose.conflict-20260102T030405Z.json",
    }]);
    assert.equal(await cec(paths, "portrait.json"), uiEdit);
    assert.equal(await ui(paths, "sub/flux.json"), cecEdit);
    assert.equal(await ui(paths, "loose.json"), bothUi, "a conflict leaves ComfyUI's file as it is");
    assert.equal(await ui(paths, "loose.conflict-20260102T030405Z.json"), bothCec);
    assert.equal(await cec(paths, "loose.json"), bothCec);
    assert.equal((await states(paths)).loose, "changed-in-both");

    const ours = await sync(paths, { strategy: "ours" });
    assert.deepEqual([ours.restored, ours.conflicts], [["loose"], []]);
    assert.equal(await ui(paths, "loose.json"), bothCec);
    assert.equal((await trashHolding(paths, bothUi)).length, 1, "ComfyUI's version is in the trash");
    assert.equal((await states(paths)).loose, "in-sync");
  });
});

Deno.test("sync --strategy theirs takes ComfyUI's version; untrack keeps ComfyUI's file", async () => {
  await withTempDir(async (root) => {
    const paths = await setup(root);
    await trackNames(paths, ["loose"]);
    const bothUi = workflow("both-ui.safetensors");
    await Deno.writeTextFile(join(paths.userWorkflows, "loose.json"), bothUi);
    await Deno.writeTextFile(join(paths.cecWorkflows, "loose.json"), workflow("both-cec.safetensors"));
    // The .cec side changed through git (a change never sweeps uncommitted .cec edits into its commit).
    await commit(paths.cec, "loose edited in git");
    const r = await sync(paths, { strategy: "theirs" });
    assert.deepEqual([r.captured, r.restored, r.conflicts], [["loose"], [], []]);
    assert.equal(await cec(paths, "loose.json"), bothUi);

    const { result } = await session(paths, (s) => untrack(s, "loose", false));
    assert.ok(result.commit);
    const desired = await readDesired(paths);
    assert.equal(desired.workflows.loose, undefined);
    assert.deepEqual(desired.workflowFiles, {});
    assert.equal(await ui(paths, "loose.json"), bothUi);
    assert.equal((await states(paths)).loose, "untracked");
    assert.throws(() => untrackWorkflow(desired, "loose"), /not tracked/);
  });
});
