import assert from "node:assert/strict";
import type { Action, Plan } from "../../reconcile/types.ts";
import { renderDriftReport, renderDriftText, summarizeDrift } from "../../views/drift.ts";
import { code, fence, planDiffBlock, truncateMarkdown } from "../../views/markdown.ts";

function action(address: string, kind: Action["kind"], reason: string, details?: string[]): Action {
  return {
    address,
    type: address.split(".")[0] as Action["type"],
    kind,
    reason,
    before: null,
    after: null,
    details,
  };
}

const plan = (actions: Action[], notes: string[] = []): Plan => ({
  format_version: 1,
  environment: "prod",
  created_at: "2026-11-25T04:00:00.000Z",
  fingerprints: { desired: "d", observed: "o" },
  actions,
  notes,
});

Deno.test("drift groups: unmanaged/missing/changed nodes, packages, missing models, edited workflows", () => {
  const s = summarizeDrift(plan([
    action("comfyui", "update", "HEAD is v0.3.59, .cec pins v0.3.60"),
    action("node.manager-extra", "delete", "installed by hand"),
    action("node.impact", "create", "not installed"),
    action("node.kjnodes", "update", "2 files changed by hand"),
    action("packages", "update", "venv differs from uv.lock", ["+ opencv-python 4.10.0", "- numpy 2.1.0"]),
    action("model.sdxl", "create", "not on disk"),
    action("model.vae", "replace", "hash differs"),
    action("workflow.portrait", "update", "changed in the ComfyUI editor"),
    action("workflow.upscale", "create", "missing from ComfyUI"),
  ], ["untracked workflow: scratch.json"]));
  assert.equal(s.drifted, true);
  assert.deepEqual(
    s.groups.map((g) => [g.key, g.items.map((i) => i.address)]),
    [
      ["comfyui", ["comfyui"]],
      ["unmanaged-nodes", ["node.manager-extra"]],
      ["missing-nodes", ["node.impact"]],
      ["changed-nodes", ["node.kjnodes"]],
      ["packages", ["packages"]],
      ["missing-models", ["model.sdxl"]],
      ["changed-models", ["model.vae"]],
      ["edited-workflows", ["workflow.portrait"]],
      ["missing-workflows", ["workflow.upscale"]],
    ],
  );
  assert.deepEqual(s.notes, ["untracked workflow: scratch.json"]);
});

Deno.test("drift markdown: headings with counts, escaped reasons, details capped, fix instructions", () => {
  const details = Array.from({ length: 25 }, (_, i) => `+ pkg${i} <1.0>`);
  const md = renderDriftReport(
    plan([
      action("packages", "update", "venv has *extra* <packages>", details),
      action("node.x", "delete", "by hand"),
    ]),
    { runUrl: "https://github.com/acme/studio/actions/runs/7" },
  );
  assert.match(md, /^### Drift: environment `prod` differs from its \.cec$/m);
  assert.match(
    md,
    /2 differences found on 2026-11-25T04:00:00\.000Z by \[this run\]\(https:\/\/github\.com\/acme\/studio\/actions\/runs\/7\)\./,
  );
  assert.match(md, /^#### Unmanaged custom nodes \(1\)\n\n_on disk, not in \.cec_$/m);
  assert.match(md, /^- `packages`: venv has \\\*extra\\\* &lt;packages&gt;$/m);
  assert.match(md, /^ {2}- \+ pkg19 &lt;1\.0&gt;$/m);
  assert.ok(!md.includes("pkg20 "), "details beyond 20 are summarized");
  assert.match(md, /^ {2}- \.\.\. and 5 more$/m);
  assert.match(md, /comfydock apply[\s\S]*comfydock capture/);
});

Deno.test("drift for a terminal: the same groups as plain text, nothing escaped for Markdown", () => {
  const p = plan([
    action("node.x", "delete", "not in .cec; run 'comfydock capture' to keep it", [
      "move custom_nodes/x to the trash",
    ]),
    action("comfyui", "update", "HEAD is v0.3.59 -> .cec pins v0.3.60"),
  ], ["workflow.a: changed in ComfyUI"]);
  const text = renderDriftText(p);
  assert.equal(
    text,
    [
      "Drift: environment 'prod' differs from its .cec (2 differences).",
      "",
      "ComfyUI core (1): the checkout differs from the pinned version",
      "  ~ comfyui: HEAD is v0.3.59 -> .cec pins v0.3.60",
      "",
      "Unmanaged custom nodes (1): on disk, not in .cec",
      "  - node.x: not in .cec; run 'comfydock capture' to keep it",
      "      move custom_nodes/x to the trash",
      "",
      "Other findings (1): shown, never acted on",
      "  ! workflow.a: changed in ComfyUI",
      "",
      "To fix: run 'comfydock apply' to make the machine match .cec again, or 'comfydock capture' to record " +
      "the changes made on the machine into .cec and commit them.",
      "",
    ].join("\n"),
  );
  assert.ok(!/\\_|&gt;|&lt;|`/.test(text), "no Markdown escapes or code spans");
  assert.equal(renderDriftText(plan([])), "No drift: environment 'prod' matches its .cec.\n");
  // The Markdown of the same plan names the machine when given.
  assert.match(
    renderDriftReport(p, { machine: "gpu-1" }),
    /^### Drift: environment `prod` on `gpu-1` differs/m,
  );
});

Deno.test("a clean plan renders as no drift, still listing notes", () => {
  const md = renderDriftReport(plan([], ["dev node 'mine' has uncommitted changes"]));
  assert.match(md, /^### No drift: environment `prod` matches its \.cec$/m);
  assert.match(
    md,
    /Other findings \(1\)\n\n_shown, never acted on_[\s\S]*dev node 'mine' has uncommitted changes/,
  );
  assert.ok(!md.includes("To fix"));
});

Deno.test("markdown helpers: code spans and fences survive backticks; plan symbols move to column 0", () => {
  assert.equal(code("a`b"), "``a`b``");
  assert.equal(fence("x\n```\ny"), "````\nx\n```\ny\n````");
  const block = planDiffBlock(plan([
    action("node.a", "create", "not installed", ["registry 1.0"]),
    action("node.b", "update", "edited"),
    action("model.c", "replace", "hash differs"),
    action("node.d", "delete", "not in .cec"),
  ], ["untracked workflow"]));
  assert.equal(
    block,
    [
      "```diff",
      "+ + node.a: not installed",
      "      registry 1.0",
      "! ~ node.b: edited",
      "! -/+ model.c: hash differs",
      "- - node.d: not in .cec",
      "",
      "  Notes (not acted on):",
      "! untracked workflow",
      "",
      "  Plan: 2 to add, 1 to change, 2 to remove.",
      "```",
    ].join("\n"),
  );
});

Deno.test("truncation stays under the limit and closes an open fence", () => {
  const long = "intro\n```diff\n" + "+ line\n".repeat(20_000) + "```\n";
  const cut = truncateMarkdown(long, 65_000, "_truncated_");
  assert.ok(cut.length <= 65_000);
  assert.match(cut, /\+ line\n```\n\n_truncated_\n$/);
  assert.equal(truncateMarkdown("short", 100, "x"), "short");
});
