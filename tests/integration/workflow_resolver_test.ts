/**
 * Which node index analysis uses (the workspace's node_index.db, else --node-map / COMFYDOCK_NODE_MAP, else
 * the built-in core list) and the core types of the environment's own ComfyUI checkout (a fake checkout
 * written here); `track --all` of many workflows as one tracked-table edit that keeps comments elsewhere.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { makeEnvSkeleton } from "../../fixtures/env_skeleton.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { NodeIndex } from "../../providers/nodes/node_index.ts";
import { coreTypesFromCheckout } from "../../providers/workflows/core_from_checkout.ts";
import { envResolver, loadAnalysisResolver } from "../../providers/workflows/files.ts";
import { analyzeWorkflow } from "../../providers/workflows/analyze.ts";
import { NodePackResolver } from "../../providers/workflows/node_map.ts";
import { track } from "../../workspace/workflow_sync.ts";
import { withSession } from "../../workspace/session.ts";
import { TRACKED } from "../../providers/workflows/track.ts";
import { testApp } from "../../fixtures/app.ts";
import { readDesired } from "../../reconcile/desired.ts";

async function fakeCheckout(dir: string): Promise<void> {
  await Deno.mkdir(join(dir, "comfy_extras"), { recursive: true });
  await Deno.mkdir(join(dir, "comfy_api_nodes"), { recursive: true });
  await Deno.writeTextFile(
    join(dir, "nodes.py"),
    'class KSampler:\n    pass\n\nNODE_CLASS_MAPPINGS = {\n    "KSampler": KSampler,\n    "BrandNewCoreNode": X,\n}\n',
  );
  await Deno.writeTextFile(
    join(dir, "comfy_extras", "nodes_new.py"),
    "NODE_CLASS_MAPPINGS = {\n    'ExtraCoreNode': ExtraCoreNode,  # added in this version\n}\n",
  );
  await Deno.writeTextFile(
    join(dir, "comfy_api_nodes", "nodes_api.py"),
    'class ApiNode(io.ComfyNode):\n    @classmethod\n    def define_schema(cls):\n        return io.Schema(node_id="ApiV3Node")\n',
  );
  await Deno.writeTextFile(join(dir, "comfy_extras", "README.md"), 'NODE_CLASS_MAPPINGS = {"NotPython": 1}');
}

const WF = {
  nodes: [
    { id: 1, type: "KSampler" },
    { id: 2, type: "BrandNewCoreNode" },
    { id: 3, type: "ExtraCoreNode" },
    { id: 4, type: "ApiV3Node" },
    { id: 5, type: "IndexedNode" },
    { id: 6, type: "MappedNode" },
  ],
};

const kinds = (r: NodePackResolver) =>
  Object.fromEntries(analyzeWorkflow(WF, r).nodes.map((n) => [n.type, `${n.kind}:${n.package}`]));

Deno.test("analysis resolver: node index DB first, then the node map, else core only; checkout core types added", async () => {
  await withTempDir(async (root) => {
    const paths = await makeEnvSkeleton(root, "res");
    await fakeCheckout(paths.comfyui);
    assert.deepEqual(
      [...await coreTypesFromCheckout(paths.comfyui)].sort(),
      ["ApiV3Node", "BrandNewCoreNode", "ExtraCoreNode", "KSampler"],
    );
    assert.equal((await coreTypesFromCheckout(join(root, "no-checkout"))).size, 0);

    const map = join(root, "map.json");
    await Deno.writeTextFile(map, JSON.stringify({ "https://github.com/o/mapped": [["MappedNode"], {}] }));
    {
      // No index, no map: only core types (the checkout's too).
      let r = await envResolver(paths);
      assert.match(r.source, /built-in core node list \+ 4 core types from /);
      assert.deepEqual(kinds(r.resolver), {
        KSampler: "core:comfy-core",
        BrandNewCoreNode: "core:comfy-core",
        ExtraCoreNode: "core:comfy-core",
        ApiV3Node: "core:comfy-core",
        IndexedNode: "unknown:null",
        MappedNode: "unknown:null",
      });

      // The workspace's node index is used once it exists.
      const index = NodeIndex.open(paths.workspace.nodeIndexDb);
      try {
        index.replaceManagerMap(
          [{ classType: "IndexedNode", pack: "indexed-pack", source: "manager-map" }],
          new Set(),
        );
      } finally {
        index.close();
      }
      r = await envResolver(paths);
      assert.match(r.source, /^node index .*node_index\.db \+ 4 core types/);
      assert.equal(kinds(r.resolver).IndexedNode, "custom:indexed-pack");
      assert.equal(kinds(r.resolver).BrandNewCoreNode, "core:comfy-core");

      // An explicit --node-map wins over the index; COMFYDOCK_NODE_MAP (the fallback map) only stands in for
      // a missing index.
      r = await envResolver(paths, map);
      assert.deepEqual([kinds(r.resolver).MappedNode, kinds(r.resolver).IndexedNode], [
        "custom:https://github.com/o/mapped",
        "unknown:null",
      ]);
      assert.equal(
        kinds((await envResolver(paths, undefined, map)).resolver).IndexedNode,
        "custom:indexed-pack",
      );
      const noIndex = await loadAnalysisResolver({ fallbackMap: map, nodeIndexDb: join(root, "none.db") });
      assert.equal(kinds(noIndex.resolver).MappedNode, "custom:https://github.com/o/mapped");
      // Without a checkout the built-in list alone decides.
      assert.equal(kinds(noIndex.resolver).BrandNewCoreNode, "unknown:null");
    }
  });
});

Deno.test("track --all of many workflows: one tracked-table edit, comments outside it kept, same data as entry edits", async () => {
  await withTempDir(async (root) => {
    const paths = await makeEnvSkeleton(
      root,
      "batch",
      '# models I use\n[tool.comfydock.models]\n\n[tool.comfydock.workflows.tracked.existing]\nfile = "workflows/existing.json"\n',
    );
    await Deno.mkdir(join(paths.userWorkflows, "sub"), { recursive: true });
    for (let i = 0; i < 12; i++) {
      await Deno.writeTextFile(
        join(paths.userWorkflows, i % 2 ? "sub" : "", `w${i}.json`),
        JSON.stringify({
          nodes: [{ id: 1, type: "CheckpointLoaderSimple", widgets_values: [`m${i}.safetensors`] }],
        }),
      );
    }
    const resolver = new NodePackResolver([], new Set());
    const { change, result } = await withSession(
      testApp(paths.workspace, { providers: [] }),
      paths,
      "workflow track",
      "write",
      (s) => track(s, { all: true, resolver, apply: false }),
    );
    assert.equal(change.names.length, 12);
    assert.deepEqual(change.edits.map((e) => e.path), [TRACKED]);
    assert.ok(result.commit, "committed to .cec");
    const text = await Deno.readTextFile(paths.pyproject);
    assert.match(text, /^# models I use$/m);
    assert.match(text, /^# models I use\n\[tool\.comfydock\.models\]/m);
    const after = await readDesired(paths);
    assert.deepEqual(after.workflows.existing, { file: "workflows/existing.json" });
    assert.deepEqual(after.workflows["sub/w3"], {
      file: "workflows/sub/w3.json",
      requires: { nodes: [], models: ["checkpoints/m3.safetensors"], python: [] },
    });
    assert.equal(Object.keys(after.workflows).length, 13);
  });
});
