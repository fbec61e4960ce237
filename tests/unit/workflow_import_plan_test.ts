/** Pure pieces of import and tracking: download URLs -> model sources, core types from Python source, batched tracked edits. */
import assert from "node:assert/strict";
import { nodeClassesFromSource } from "../../providers/workflows/core_from_checkout.ts";
import { sourceForUrl } from "../../providers/workflows/import_plan.ts";
import { BATCH_MIN_EDITS, batchTrackedEdits, TRACKED } from "../../providers/workflows/track.ts";

const BASES = { hfEndpoint: "http://127.0.0.1:8123", civitaiApi: "https://civitai.com/api/v1" };

Deno.test("sourceForUrl: Hub and Civitai URLs become hf:/civitai: sources; others stay URLs", () => {
  const cases: [string, string][] = [
    [
      "https://huggingface.co/Comfy-Org/Qwen-Image_ComfyUI/resolve/main/split_files/vae/qwen_image_vae.safetensors?download=true",
      "hf:Comfy-Org/Qwen-Image_ComfyUI/split_files/vae/qwen_image_vae.safetensors",
    ],
    ["https://huggingface.co/o/r/blob/v1.0/a%20b.safetensors", "hf:o/r/a b.safetensors@v1.0"],
    ["http://127.0.0.1:8123/o/r/resolve/main/x.pth", "hf:o/r/x.pth"],
    ["https://civitai.com/api/download/models/12345?type=Model", "civitai:12345"],
    ["https://civitai.com/models/111/some-name?modelVersionId=222", "civitai:222"],
    ["https://civitai.com/models/111/some-name", "https://civitai.com/models/111/some-name"],
    ["https://example.com/o/r/resolve/main/x.pth", "https://example.com/o/r/resolve/main/x.pth"],
    ["not a url", "not a url"],
  ];
  for (const [url, want] of cases) assert.equal(sourceForUrl(url, BASES), want, url);
});

Deno.test("nodeClassesFromSource: NODE_CLASS_MAPPINGS keys (also .update and annotated), v3 node_id's", () => {
  const src = `
class KSampler: pass
NODE_CLASS_MAPPINGS = {
    "KSampler": KSampler,  # the sampler {not a brace}
    'CheckpointLoaderSimple': CheckpointLoaderSimple,
    "Weird \\"quoted\\"": X, "Inline": Y,
}
NODE_DISPLAY_NAME_MAPPINGS = {"KSampler": "Display only"}
NODE_CLASS_MAPPINGS.update({
    "LateAdded": LateAdded,
})
EXTRA: dict = {"NotANode": 1}
`;
  assert.deepEqual(nodeClassesFromSource(src).sort(), [
    "CheckpointLoaderSimple",
    "Inline",
    "KSampler",
    "LateAdded",
  ]);
  const v3 = `
from comfy_api.latest import io
class ImageStitch(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ImageStitch",
            display_name="Image Stitch",
        )
`;
  assert.deepEqual(nodeClassesFromSource(v3), ["ImageStitch"]);
  assert.deepEqual(nodeClassesFromSource('node_id = "NotInAComfyNodeFile"'), []);
  assert.deepEqual(nodeClassesFromSource("NODE_CLASS_MAPPINGS = {\n  'Unclosed': X,\n"), []);
});

Deno.test("batchTrackedEdits: many entry edits become one table edit over the raw table; few stay as they are", () => {
  const text = `[tool.comfydock.workflows.tracked.old]
file = "workflows/old.json"

[tool.comfydock.workflows.tracked.gone]
file = "workflows/gone.json"
`;
  const few = [{ path: [...TRACKED, "a"], value: { file: "workflows/a.json" } }];
  assert.deepEqual(batchTrackedEdits(text, few), few);
  const many = Array.from({ length: BATCH_MIN_EDITS }, (_, i) => ({
    path: [...TRACKED, `w${i}`],
    value: { file: `workflows/w${i}.json`, requires: { nodes: [], models: [], python: [] } },
  }));
  const other = { path: ["tool", "comfydock", "models", "m"], value: undefined };
  const out = batchTrackedEdits(text, [other, ...many, { path: [...TRACKED, "gone"], value: undefined }]);
  assert.equal(out.length, 2);
  assert.deepEqual(out[0], other);
  assert.deepEqual(out[1].path, TRACKED);
  const table = out[1].value as Record<string, unknown>;
  // The untouched entry keeps exactly its keys (no schema defaults added); the removed one is gone.
  assert.deepEqual({ ...table.old as object }, { file: "workflows/old.json" });
  assert.equal("gone" in table, false);
  assert.deepEqual(Object.keys(table).length, BATCH_MIN_EDITS + 1);
});

Deno.test("nodeClassesFromSource: merged *_CLASS_MAPPINGS dicts, item assignment, comfy_entrypoint packs", () => {
  const src = `
IMPACT_CLASS_MAPPINGS = {"SAMLoader": SAMLoader}
NODE_CLASS_MAPPINGS = {**IMPACT_CLASS_MAPPINGS}
NODE_CLASS_MAPPINGS["ImpactWildcardProcessor"] = ImpactWildcardProcessor
NODE_CLASS_MAPPINGS [ 'Spaced' ] = X
NODE_DISPLAY_NAME_MAPPINGS["NotAClass"] = "x"
`;
  assert.deepEqual(nodeClassesFromSource(src).sort(), ["ImpactWildcardProcessor", "SAMLoader", "Spaced"]);
  const v3 = `
async def comfy_entrypoint():
    return Ext()
class Thing(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="V3Thing")
`;
  assert.deepEqual(nodeClassesFromSource(v3), ["V3Thing"]);
});
