/**
 * Import resolution against a real model index (sqlite, real files hashed) and a workflow served over
 * HTTP on 127.0.0.1; export -> import round trip keeps the manifest's hashes and sources.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { makeEnvSkeleton } from "../../fixtures/env_skeleton.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { sha256Hex } from "../../lib/fsx.ts";
import { ModelIndex } from "../../providers/models/index_db.ts";
import { readDesired } from "../../reconcile/desired.ts";
import { editPyprojectText } from "../../reconcile/pyproject_edit.ts";
import { analyzeWorkflow, MAX_WORKFLOW_BYTES } from "../../providers/workflows/analyze.ts";
import { buildExport, importNeeds, unwrapImport } from "../../providers/workflows/bundle.ts";
import { placeAndTrack, readImportSource } from "../../providers/workflows/import.ts";
import { NodePackResolver } from "../../providers/workflows/node_map.ts";
import { workflowProvider } from "../../providers/workflows/provider.ts";

const resolver = new NodePackResolver([
  { classType: "ImpactWildcardProcessor", pack: "comfyui-impact-pack", source: "registry" },
  { classType: "KJNodeThing", pack: "https://github.com/kijai/ComfyUI-KJNodes", source: "manager-map" },
], new Set());

const WORKFLOW = {
  nodes: [
    { id: 1, type: "CheckpointLoaderSimple", widgets_values: ["in_cec.safetensors"] },
    { id: 2, type: "LoraLoader", widgets_values: ["on_disk.safetensors", 1, 1] },
    {
      id: 3,
      type: "VAELoader",
      widgets_values: ["remote.safetensors"],
      properties: {
        models: [{ name: "remote.safetensors", directory: "vae", url: "https://example.invalid/vae" }],
      },
    },
    { id: 4, type: "UpscaleModelLoader", widgets_values: ["nowhere.pth"] },
    { id: 5, type: "ImpactWildcardProcessor", widgets_values: [] },
    { id: 6, type: "KJNodeThing", widgets_values: [] },
    { id: 7, type: "MysteryNode", widgets_values: [] },
  ],
};

Deno.test("import needs: models by .cec entry, by the model index, by URL; packs against the environment", async () => {
  await withTempDir(async (root) => {
    const paths = await makeEnvSkeleton(root, "imp");
    const sha = "a".repeat(64);
    const { text } = await editPyprojectText(await Deno.readTextFile(paths.pyproject), [
      {
        path: ["tool", "comfydock", "models", "base"],
        value: { filename: "in_cec.safetensors", category: "checkpoints", sha256: sha, sources: [] },
      },
      {
        path: ["tool", "comfydock", "nodes", "comfyui-kjnodes"],
        value: {
          source: "registry",
          version: "1.0.0",
          repository: "https://github.com/kijai/ComfyUI-KJNodes",
        },
      },
    ]);
    await Deno.writeTextFile(paths.pyproject, text);
    const loras = join(paths.models, "loras");
    await Deno.mkdir(loras, { recursive: true });
    await Deno.writeTextFile(join(loras, "on_disk.safetensors"), "lora bytes");
    const index = ModelIndex.open(join(root, "index.db"));
    try {
      await index.registerModel(join(loras, "on_disk.safetensors"), { category: "loras" });
      const desired = await readDesired(paths);
      const needs = importNeeds(analyzeWorkflow(WORKFLOW, resolver), desired, index);
      assert.deepEqual(needs.nodes.map((n) => [n.package, n.status]), [
        ["comfyui-impact-pack", "to-add"],
        ["https://github.com/kijai/ComfyUI-KJNodes", "in-environment"],
      ]);
      assert.deepEqual(needs.unknownTypes, ["MysteryNode"]);
      const byName = Object.fromEntries(needs.models.map((m) => [m.name, m]));
      assert.deepEqual([
        byName["in_cec.safetensors"].status,
        (byName["in_cec.safetensors"] as { key: string }).key,
      ], [
        "in-environment",
        "base",
      ]);
      assert.equal(byName["on_disk.safetensors"].status, "on-disk");
      assert.equal(
        (byName["on_disk.safetensors"] as { path: string }).path,
        join(loras, "on_disk.safetensors"),
      );
      assert.equal(byName["remote.safetensors"].status, "download");
      assert.equal(byName["nowhere.pth"].status, "unresolved");

      // Found by hash even under another file name: the manifest of an export carries the sha256.
      const lorasha = await sha256Hex("lora bytes");
      const renamed = {
        nodes: [{ id: 1, type: "LoraLoader", widgets_values: ["renamed.safetensors", 1, 1] }],
      };
      const byHash = importNeeds(analyzeWorkflow(renamed, resolver), desired, index, [
        { name: "renamed.safetensors", category: "loras", sha256: lorasha },
      ]);
      assert.deepEqual([byHash.models[0].status, (byHash.models[0] as { by: string }).by], [
        "on-disk",
        "hash",
      ]);
    } finally {
      index.close();
    }
  });
});

Deno.test("export -> import round trip over HTTP on 127.0.0.1; oversized and failing downloads are refused", async () => {
  await withTempDir(async (root) => {
    const paths = await makeEnvSkeleton(root, "imp");
    const desired = await readDesired(paths);
    const exported = buildExport("shared", WORKFLOW, analyzeWorkflow(WORKFLOW, resolver), desired);
    const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/wf.json") return Response.json(exported);
      if (path === "/huge.json") {
        const chunk = new Uint8Array(1024 * 1024).fill(32);
        let sent = 0;
        return new Response(
          new ReadableStream({
            pull(c) {
              if (sent > MAX_WORKFLOW_BYTES) c.close();
              else {
                c.enqueue(chunk);
                sent += chunk.length;
              }
            },
          }),
        );
      }
      return new Response("no", { status: 404 });
    });
    try {
      const base = `http://127.0.0.1:${server.addr.port}`;
      const unwrapped = unwrapImport(await readImportSource(`${base}/wf.json`));
      assert.equal(unwrapped.name, "shared");
      assert.deepEqual(unwrapped.workflow, WORKFLOW);
      assert.ok(unwrapped.manifestModels.some((m) => m.url === "https://example.invalid/vae"));
      await assert.rejects(readImportSource(`${base}/missing.json`), /HTTP 404/);
      await assert.rejects(readImportSource(`${base}/huge.json`), /more than/);

      const placed = await placeAndTrack(paths, {
        name: "shared",
        workflow: unwrapped.workflow,
        resolver,
        engine: { providers: [workflowProvider] },
      });
      assert.equal(placed.rel, "shared.json");
      const after = await readDesired(paths);
      assert.deepEqual(after.workflows.shared.requires?.nodes, [
        "comfyui-impact-pack",
        "https://github.com/kijai/ComfyUI-KJNodes",
      ]);
      // A different workflow under the same name is refused; nothing is overwritten.
      await assert.rejects(
        placeAndTrack(paths, { name: "shared", workflow: { nodes: [] }, resolver }),
        /already exists with other content/,
      );
      assert.deepEqual(
        JSON.parse(await Deno.readTextFile(join(paths.userWorkflows, "shared.json"))),
        WORKFLOW,
      );
    } finally {
      await server.shutdown();
    }
  });
});
