/** Node type -> pack resolution order: hints, core, the environment's packs, the index (preemptions). */
import assert from "node:assert/strict";
import { NodePackResolver } from "../../providers/workflows/node_map.ts";
import { entriesFromManagerMap } from "../../providers/nodes/node_index.ts";

// The shape of ComfyUI-Manager's extension-node-map.json, with its real controlnet preemption.
const MAP = {
  "https://github.com/Fannovel16/comfyui_controlnet_aux": [
    ["CannyEdgePreprocessor", "AIO_Preprocessor"],
    {
      title_aux: "ControlNet Auxiliary Preprocessors",
      preemptions: ["CannyEdgePreprocessor", "AIO_Preprocessor"],
    },
  ],
  "https://github.com/someone/controlnet-fork": [["CannyEdgePreprocessor"], { title_aux: "a fork" }],
  "https://github.com/a/one": [["Shared"], { title_aux: "one" }],
  "https://github.com/b/two": [["Shared"], { title_aux: "two" }],
  "https://github.com/Derfuu/Derfuu_ComfyUI_ModdedNodes": [[], { nodename_pattern: "^DF_" }],
  "https://github.com/comfyanonymous/ComfyUI": [["KSampler"], { title_aux: "ComfyUI" }],
};

Deno.test("preemptions: a class several packs offer goes to the pack that preempts it (was: none)", () => {
  const r = NodePackResolver.fromExtensionNodeMap(MAP);
  const canny = r.resolve("CannyEdgePreprocessor");
  assert.equal(canny.package, "https://github.com/Fannovel16/comfyui_controlnet_aux");
  assert.equal(canny.ambiguous, false);
  assert.equal(canny.candidates.length, 2);
  // Without a preemption it stays ambiguous (nothing to choose by), with its candidates.
  assert.deepEqual(r.resolve("Shared"), {
    kind: "custom",
    package: null,
    candidates: ["https://github.com/a/one", "https://github.com/b/two"],
    ambiguous: true,
  });
  assert.equal(r.resolve("DF_Integer").package, "https://github.com/Derfuu/Derfuu_ComfyUI_ModdedNodes");
});

Deno.test("preemptions survive the node index (entriesFromManagerMap)", () => {
  const { entries, core } = entriesFromManagerMap(
    MAP,
    new Map([["https://github.com/fannovel16/comfyui_controlnet_aux", "comfyui_controlnet_aux"]]),
  );
  assert.ok(core.has("KSampler"));
  const r = new NodePackResolver(entries, core);
  assert.equal(r.resolve("CannyEdgePreprocessor").package, "comfyui_controlnet_aux");
  assert.equal(r.resolve("AIO_Preprocessor").package, "comfyui_controlnet_aux");
});

Deno.test("order: hints, then core, then the environment's installed packs, then the index", () => {
  const r = NodePackResolver.fromExtensionNodeMap(MAP).withEnvironment(
    new Map([["Shared", "two-installed"], ["CannyEdgePreprocessor", "my-fork"], ["KSampler", "shadow"]]),
  );
  assert.equal(r.resolve("Shared").package, "two-installed"); // the installed pack settles it
  assert.equal(r.resolve("CannyEdgePreprocessor").package, "my-fork"); // what is installed wins over the map
  assert.deepEqual([r.resolve("KSampler").kind, r.resolve("KSampler").package], ["core", "comfy-core"]);
  assert.equal(r.resolve("Shared", { cnrId: "one" }).package, "one"); // the workflow's own hint first
  assert.equal(r.withCoreTypes(["Extra"]).resolve("Shared").package, "two-installed");
});
