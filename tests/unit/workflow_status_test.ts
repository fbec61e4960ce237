/** The three-way comparison of tracked workflows and the provider's pure diff/notes. */
import assert from "node:assert/strict";
import type { DesiredState } from "../../reconcile/desired.ts";
import { workflowProvider } from "../../providers/workflows/provider.ts";
import {
  classifyWorkflows,
  trackedState,
  type WorkflowObservation,
} from "../../providers/workflows/status.ts";

Deno.test("trackedState: every combination of ComfyUI, .cec and last-sync hashes", () => {
  const table: [string | null, string | null, string | null, string][] = [
    ["a", "a", "a", "in-sync"],
    ["a", "a", null, "in-sync"],
    ["a", "a", "z", "in-sync"],
    ["b", "a", "a", "changed-in-comfyui"],
    ["a", "b", "a", "changed-in-cec"],
    ["b", "c", "a", "changed-in-both"],
    ["b", "c", null, "changed-in-both"],
    [null, "a", "a", "missing-in-comfyui"],
    [null, "a", null, "missing-in-comfyui"],
    ["a", null, "a", "missing-in-cec"],
  ];
  for (const [ui, cec, synced, want] of table) {
    assert.equal(trackedState(ui, cec, synced), want, `ui=${ui} cec=${cec} synced=${synced}`);
  }
});

const observation: WorkflowObservation = {
  tracked: { same: "same.json", ui: "sub/ui.json", cec: "cec.json", both: "both.json", gone: "gone.json" },
  cec: { "same.json": "1", "sub/ui.json": "2", "cec.json": "3new", "both.json": "4cec", "gone.json": "5" },
  comfyui: {
    "same.json": "1",
    "sub/ui.json": "2ui",
    "cec.json": "3",
    "both.json": "4ui",
    "new.json": "6",
    "tmp/scratch.json": "7",
  },
  synced: { "same.json": "1", "sub/ui.json": "2", "cec.json": "3", "both.json": "4", "gone.json": "5" },
  ignored: ["tmp/scratch.json"],
};

Deno.test("classifyWorkflows: tracked states, untracked and ignored files", () => {
  const rows = classifyWorkflows(observation).map((e) => [e.name, e.tracked, e.state]);
  assert.deepEqual(rows, [
    ["both", true, "changed-in-both"],
    ["cec", true, "changed-in-cec"],
    ["gone", true, "missing-in-comfyui"],
    ["new", false, "untracked"],
    ["same", true, "in-sync"],
    ["tmp/scratch", false, "ignored"],
    ["ui", true, "changed-in-comfyui"],
  ]);
});

Deno.test("provider diff: restores missing and .cec-changed workflows only; notes the rest", () => {
  const desired = {} as DesiredState; // the diff reads only the observation
  const { actions, notes } = workflowProvider.diff(desired, observation);
  assert.deepEqual(actions.map((a) => [a.address, a.kind, a.before, a.after]), [
    ["workflow.cec", "update", { file: "cec.json", hash: "3" }, { file: "cec.json", hash: "3new" }],
    ["workflow.gone", "create", null, { file: "gone.json", hash: "5" }],
  ]);
  assert.ok(
    notes.some((n) => /^workflow\.ui: changed in ComfyUI; run 'comfydock capture'/.test(n)),
    notes.join("\n"),
  );
  assert.ok(notes.some((n) => /^workflow\.both: changed in ComfyUI and in \.cec \(conflict\)/.test(n)));
  assert.ok(notes.some((n) => /^1 untracked workflow/.test(n)));
});
