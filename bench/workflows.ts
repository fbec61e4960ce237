/**
 * `workflow status` and `workflow sync` over 200 generated workflows (seed target: sync under 1 s).
 * Each workflow is a ~40-node UI graph with loaders and custom nodes, about the size of a real template.
 */
import { join } from "node:path";
import { makeEnvSkeleton } from "../fixtures/env_skeleton.ts";
import { withTempDir } from "../fixtures/tmp.ts";
import { testApp } from "../fixtures/app.ts";
import { readDesired } from "../reconcile/desired.ts";
import { recordSynced } from "../providers/workflows/files.ts";
import { NodePackResolver } from "../providers/workflows/node_map.ts";
import { workflowProvider } from "../providers/workflows/provider.ts";
import { workflowStatus } from "../providers/workflows/status.ts";
import { syncWorkflows } from "../workspace/workflow_sync.ts";
import { record } from "./stats.ts";
import { withSession } from "../workspace/session.ts";
import { TRACKED, trackWorkflows } from "../providers/workflows/track.ts";
import { editPyprojectText } from "../reconcile/pyproject_edit.ts";

const COUNT = 200;
const CHANGED = 20;

function generated(i: number, variant = 0): string {
  const nodes = [
    { id: 1, type: "CheckpointLoaderSimple", mode: 0, widgets_values: [`model_${i % 17}.safetensors`] },
    { id: 2, type: "LoraLoader", mode: 0, widgets_values: [`lora_${i % 23}_${variant}.safetensors`, 1, 1] },
    { id: 3, type: "VAELoader", mode: 0, widgets_values: ["vae.safetensors"] },
  ];
  for (let n = 4; n < 40; n++) {
    const type = ["KSampler", "CLIPTextEncode", "VAEDecode", "ImpactWildcardProcessor", "Note"][n % 5];
    nodes.push({ id: n, type, mode: 0, widgets_values: [`prompt ${i} ${n} ${"lorem ipsum ".repeat(8)}`] });
  }
  return JSON.stringify({ nodes, links: [], groups: [], extra: {}, version: 0.4 });
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const out = await fn();
  return [out, performance.now() - t0];
}

export async function benchWorkflows(): Promise<string[]> {
  const resolver = new NodePackResolver(
    [{ classType: "ImpactWildcardProcessor", pack: "comfyui-impact-pack", source: "registry" }],
    new Set(),
  );
  return await withTempDir(async (root) => {
    const paths = await makeEnvSkeleton(root, "bench");
    const app = testApp(paths.workspace, { providers: [workflowProvider] });
    await Deno.mkdir(join(paths.userWorkflows, "batch"), { recursive: true });
    for (let i = 0; i < COUNT; i++) {
      await Deno.writeTextFile(join(paths.userWorkflows, i % 2 ? "batch" : "", `wf_${i}.json`), generated(i));
    }
    const [change, trackMs] = await timed(async () =>
      await trackWorkflows(paths, await readDesired(paths), { all: true, resolver })
    );
    // The same change as one edit per entry (how round 1 committed it) against one tracked-table edit.
    const text = await Deno.readTextFile(paths.pyproject);
    const table = change.edits.find((e) => e.path.join(".") === TRACKED.join("."))?.value as Record<
      string,
      unknown
    >;
    const perEntry = Object.entries(table).map(([name, value]) => ({ path: [...TRACKED, name], value }));
    const [, perEntryMs] = await timed(() => editPyprojectText(text, perEntry));
    const [, batchedMs] = await timed(() => editPyprojectText(text, change.edits));
    // What `workflow track` does after the analysis: one change through the session, then the sync base moves.
    const [, commitMs] = await timed(() =>
      withSession(app, paths, "bench", "write", async (s) => {
        const r = await s.change({ message: "bench: track all", apply: false, edit: () => change });
        if (r.commit) await recordSynced(paths, change.synced);
      })
    );

    const [rows, statusMs] = await timed(async () => await workflowStatus(paths, await readDesired(paths)));
    const inSync = rows.filter((r) => r.state === "in-sync").length;
    const [, idleSyncMs] = await timed(() =>
      withSession(app, paths, "bench", "write", (s) => syncWorkflows(s, { resolver }))
    );

    for (let i = 0; i < CHANGED; i++) {
      await Deno.writeTextFile(
        join(paths.userWorkflows, i % 2 ? "batch" : "", `wf_${i}.json`),
        generated(i, 1),
      );
      const j = COUNT - 1 - i;
      await Deno.writeTextFile(
        join(paths.cecWorkflows, j % 2 ? "batch" : "", `wf_${j}.json`),
        generated(j, 2),
      );
    }
    const [r, busySyncMs] = await timed(() =>
      withSession(app, paths, "bench", "write", (s) => syncWorkflows(s, { resolver }))
    );
    const after = await workflowStatus(paths, await readDesired(paths));
    const stillOff = after.filter((e) => e.tracked && e.state !== "in-sync").length;

    const ms = (x: number) => `${x.toFixed(0)} ms`;
    record("workflows.status_ms", statusMs);
    record("workflows.idle_sync_ms", idleSyncMs);
    record("workflows.busy_sync_ms", busySyncMs);
    return [
      `workflows: ${COUNT} generated workflows (~${(generated(0).length / 1024).toFixed(0)} KiB each)`,
      `  track --all (read + analyse ${change.names.length}): ${ms(trackMs)}; commit to .cec: ${
        ms(commitMs)
      }`,
      `  pyproject edit of ${perEntry.length} tracked entries: ${ms(batchedMs)} as one table edit, ` +
      `${ms(perEntryMs)} as one edit per entry`,
      `  workflow status: ${ms(statusMs)} (${inSync}/${COUNT} in sync)  [seed target < 1000 ms]`,
      `  workflow sync, nothing to do: ${ms(idleSyncMs)}  [seed target < 1000 ms]`,
      `  workflow sync, ${r.captured.length} captured + ${r.restored.length} restored: ${ms(busySyncMs)} ` +
      `(${stillOff} left out of sync)  [seed target < 1000 ms]`,
    ];
  }, "comfydock-bench-");
}

if (import.meta.main) {
  for (const line of await benchWorkflows()) console.log(line);
}
