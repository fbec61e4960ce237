/** ComfyGit / ComfyDock 1.x pyproject conversion (pure): every key gets a line, the result validates. */
import assert from "node:assert/strict";
import { parse, stringify } from "smol-toml";
import { comfydock1Pyproject, comfygitPyproject } from "../../fixtures/legacy_cec.ts";
import { convertLegacyPyproject, legacyKind } from "../../providers/formats/legacy_cec.ts";
import { parsePyproject } from "../../reconcile/desired.ts";
import { basePyproject } from "../../fixtures/env_skeleton.ts";

const SHA = "c".repeat(40);
const opts = {
  comfyuiVersion: "v0.2.0",
  comfyuiCommit: "b".repeat(40),
  registryDownloadUrl: "https://cdn.example/alpha-1.1.0.zip",
  gitRepository: "https://github.com/someone/Gamma-Nodes",
  gitCommit: SHA,
};
const ctx = (found: Record<string, string> = {}) => ({
  name: "studio",
  hfEndpoint: "https://huggingface.co",
  findModel: (filename: string) => found[filename] ?? null,
});

/** What the caller adds before writing: the resolved ComfyUI pin and the Python version. */
function finish(doc: Record<string, unknown>): string {
  // deno-lint-ignore no-explicit-any -- a test completes the table the caller completes
  const tool = (doc as any).tool;
  tool.comfydock = {
    ...tool.comfydock,
    comfyui_version: "v0.2.0",
    comfyui_commit: "b".repeat(40),
    python_version: "3.11",
  };
  return stringify(doc);
}

Deno.test("which layout a pyproject has", () => {
  assert.equal(legacyKind(parse(comfygitPyproject(opts))), "comfygit");
  assert.equal(legacyKind(parse(comfydock1Pyproject(opts))), "comfydock1");
  assert.equal(legacyKind(parse(basePyproject("x"))), null, "ours is not legacy");
  assert.equal(legacyKind({ project: {} }), null);
});

Deno.test("ComfyGit: nodes, models, workflows, groups mapped; everything else reported with why", () => {
  const raw = parse(comfygitPyproject(opts)) as Record<string, unknown>;
  const c = convertLegacyPyproject(raw, ctx({ "sd15.safetensors": "d".repeat(64) }));
  assert.deepEqual(c.comfyui, { version: "v0.2.0", versionType: "release", commit: "b".repeat(40) });
  assert.equal(c.pythonVersion, "3.11");
  assert.equal(c.needsTorchIndex, true);
  const py = parsePyproject(finish(c.doc), "converted.toml");
  assert.equal(py.project.name, "studio");
  const nodes = py.tool.comfydock.nodes;
  assert.deepEqual(nodes["alpha-nodes"], {
    source: "registry",
    version: "1.1.0",
    download_url: "https://cdn.example/alpha-1.1.0.zip",
  });
  assert.deepEqual(nodes["gamma-nodes"], {
    source: "git",
    repository: "https://github.com/someone/Gamma-Nodes",
    commit: SHA,
    directory: "Gamma-Nodes",
  });
  assert.deepEqual(nodes["my-dev-node"], { source: "dev", path: "ComfyUI/custom_nodes/my-dev-node" });
  assert.equal(nodes["bundled-thing"], undefined);
  assert.deepEqual(py.tool.comfydock.models.sd15, {
    sha256: "d".repeat(64),
    size: 4096,
    category: "checkpoints",
    filename: "sd15.safetensors",
    sources: [{ type: "huggingface", repo: "org/sd", file: "sd15.safetensors" }],
  });
  assert.deepEqual(py.tool.comfydock.workflows.tracked.portrait, {
    file: "workflows/portrait.json",
    requires: { nodes: ["alpha-nodes"], models: ["loras/lost.safetensors", "sd15"], python: [] },
  });
  assert.deepEqual({ ...py["dependency-groups"] }, { "alpha-nodes": ["libx"] });

  const line = (item: string) => c.report.lines.find((l) => l.item.startsWith(item));
  assert.equal(line("tool.comfygit.nodes.bundled-thing")?.outcome, "not mapped");
  assert.match(line("tool.comfygit.nodes.bundled-thing")!.detail, /bundled node/);
  assert.match(
    line("tool.comfygit.models.9e8d7c6b")!.detail,
    /sampled short hash.*model add https:\/\/civitai/,
  );
  assert.match(line("tool.comfygit.nodes.gamma-nodes.criticality")!.detail, /installs every node/);
  assert.match(line("tool.comfygit.workflows.portrait.custom_node_map")!.detail, /1 entries/);
  assert.match(line("tool.comfygit.schema_version")!.detail, /not needed/);
  assert.match(line("tool.comfygit.manifest_state")!.detail, /local\/exportable/);
  // Nothing silently lost: every key of the tool table, every node/model/workflow, has at least one line.
  const tool = (raw.tool as Record<string, Record<string, unknown>>).comfygit;
  for (const k of Object.keys(tool)) {
    const sub = tool[k] && typeof tool[k] === "object" && !Array.isArray(tool[k]) &&
        ["nodes", "models", "workflows"].includes(k)
      ? Object.keys(tool[k] as object).map((x) => `tool.comfygit.${k}.${x}`)
      : [`tool.comfygit.${k}`];
    for (const item of sub) {
      assert.ok(c.report.lines.some((l) => l.item.startsWith(item)), `no line for ${item}`);
    }
  }
});

Deno.test("ComfyDock 1.x: the hash-named groups become the node ids, an unknown key is reported", () => {
  const text = comfydock1Pyproject(opts).replace(
    "[tool.comfydock]\n",
    "[tool.comfydock]\nfancy_flag = true\n",
  );
  const c = convertLegacyPyproject(parse(text) as Record<string, unknown>, ctx());
  assert.equal(c.kind, "comfydock1");
  assert.deepEqual(c.comfyui, { version: "v0.2.0" });
  const py = parsePyproject(finish(c.doc), "converted.toml");
  assert.deepEqual(Object.keys(py["dependency-groups"]).sort(), ["alpha-nodes", "gamma-nodes"]);
  assert.deepEqual(py["dependency-groups"]["alpha-nodes"], ["libx"]);
  const unknown = c.report.lines.find((l) => l.item === "tool.comfydock.fancy_flag");
  assert.equal(unknown?.outcome, "not mapped");
  assert.match(
    c.report.lines.find((l) => l.item.includes("dependency_sources"))!.detail,
    /\[tool\.uv\.sources\]/,
  );
});

Deno.test("a git node pinned to a branch name, not a commit, is not mapped and says how to add it", () => {
  const text = comfygitPyproject({ ...opts, gitCommit: "main" });
  const c = convertLegacyPyproject(parse(text) as Record<string, unknown>, ctx());
  const l = c.report.lines.find((x) => x.item === "tool.comfygit.nodes.gamma-nodes")!;
  assert.equal(l.outcome, "not mapped");
  assert.match(
    l.detail,
    /not a full commit: add it with 'comfydock node add https:\/\/github.com\/someone\/Gamma-Nodes@REF'/,
  );
});

Deno.test("a development node shared by repository and pinned commit becomes a git node", () => {
  const text = comfygitPyproject(opts).replace(
    '[tool.comfygit.nodes.my-dev-node]\nname = "my-dev-node"\nversion = "dev"\nsource = "development"\n',
    `[tool.comfygit.nodes.my-dev-node]\nname = "my-dev-node"\nversion = "dev"\nsource = "development"\n` +
      `repository = "https://github.com/me/my-dev-node"\nbranch = "dev"\npinned_commit = "${SHA}"\n`,
  );
  const c = convertLegacyPyproject(parse(text) as Record<string, unknown>, ctx());
  const py = parsePyproject(finish(c.doc), "converted.toml");
  assert.deepEqual(py.tool.comfydock.nodes["my-dev-node"], {
    source: "git",
    repository: "https://github.com/me/my-dev-node",
    commit: SHA,
    ref: "dev",
  });
});
