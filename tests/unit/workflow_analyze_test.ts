/** Hand-made edge cases of the workflow analysis and the node-pack resolver. */
import assert from "node:assert/strict";
import { CdError } from "../../lib/errors.ts";
import {
  analyzeWorkflow,
  MAX_WORKFLOW_BYTES,
  parseWorkflowText,
  requirements,
} from "../../providers/workflows/analyze.ts";
import { type NodePackEntry, NodePackResolver } from "../../providers/workflows/node_map.ts";

const entries: NodePackEntry[] = [
  {
    classType: "ImpactWildcardProcessor",
    pack: "https://github.com/ltdrdata/ComfyUI-Impact-Pack",
    source: "manager-map",
  },
  { classType: "SAMLoader", pack: "https://github.com/ltdrdata/ComfyUI-Impact-Pack", source: "manager-map" },
  { classType: "SAMLoader", pack: "https://github.com/other/ComfyUI-SAM", source: "manager-map" },
  { classType: "Upscale", pack: "https://github.com/a/pack-a", source: "registry", popularity: 10 },
  { classType: "Upscale", pack: "https://github.com/b/pack-b", source: "registry", popularity: 500 },
  { classType: "Tie", pack: "https://github.com/a/pack-a", source: "registry", popularity: 5 },
  { classType: "Tie", pack: "https://github.com/b/pack-b", source: "registry", popularity: 5 },
  { classType: "", pack: "https://github.com/df/Derfuu", source: "manager-map", namePattern: "^DF_" },
  { classType: "", pack: "https://github.com/evil/pack", source: "manager-map", namePattern: "([" },
];
const resolver = new NodePackResolver(entries, new Set(["MyCoreNode"]));

function uiNode(id: number, type: string, widgets: unknown[] = [], extra: Record<string, unknown> = {}) {
  return { id, type, mode: 0, inputs: [], outputs: [], properties: {}, widgets_values: widgets, ...extra };
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CdError, `expected CdError, got ${e}`);
    return e.code;
  }
  assert.fail("expected an error");
}

Deno.test("resolver: frontend, cnr_id, aux_id, core, map, pattern, unknown", () => {
  assert.equal(resolver.resolve("Note").kind, "frontend");
  assert.deepEqual(resolver.resolve("KSampler"), {
    kind: "core",
    package: "comfy-core",
    candidates: ["comfy-core"],
    ambiguous: false,
  });
  assert.equal(resolver.resolve("MyCoreNode").kind, "core");
  const cnr = resolver.resolve("Whatever", { cnrId: "comfyui-kjnodes" });
  assert.deepEqual([cnr.kind, cnr.package], ["custom", "comfyui-kjnodes"]);
  assert.equal(resolver.resolve("KSampler", { cnrId: "comfy-core" }).kind, "core");
  assert.equal(
    resolver.resolve("X", { auxId: "kijai/ComfyUI-KJNodes" }).package,
    "https://github.com/kijai/ComfyUI-KJNodes",
  );
  assert.equal(
    resolver.resolve("ImpactWildcardProcessor").package,
    "https://github.com/ltdrdata/ComfyUI-Impact-Pack",
  );
  assert.equal(resolver.resolve("DF_Integer").package, "https://github.com/df/Derfuu");
  assert.deepEqual(resolver.resolve("NoSuchNode"), {
    kind: "unknown",
    package: null,
    candidates: [],
    ambiguous: false,
  });
});

Deno.test("resolver: ambiguous types settle by the workflow's other packs, then popularity, else ambiguous", () => {
  const amb = resolver.resolve("SAMLoader");
  assert.equal(amb.ambiguous, true);
  assert.equal(amb.package, null);
  assert.equal(amb.candidates.length, 2);
  const byOther = resolver.resolve("SAMLoader", { otherPacks: new Set(["comfyui-impact-pack"]) });
  assert.deepEqual([byOther.package, byOther.ambiguous], [
    "https://github.com/ltdrdata/ComfyUI-Impact-Pack",
    false,
  ]);
  assert.equal(resolver.resolve("Upscale").package, "https://github.com/b/pack-b");
  assert.equal(resolver.resolve("Tie").ambiguous, true);
});

Deno.test("resolver: fromExtensionNodeMap reads the manager format and takes core types from ComfyUI's entry", () => {
  const r = NodePackResolver.fromExtensionNodeMap({
    "https://github.com/comfyanonymous/ComfyUI": [["BrandNewCoreNode"], { title_aux: "ComfyUI" }],
    "https://github.com/x/pack": [["XNode"], { title_aux: "X", nodename_pattern: "^X_" }],
    "https://github.com/broken/entry": "not a tuple",
  });
  assert.equal(r.resolve("BrandNewCoreNode").kind, "core");
  assert.equal(r.resolve("XNode").package, "https://github.com/x/pack");
  assert.equal(r.resolve("X_Other").package, "https://github.com/x/pack");
  assert.equal(code(() => NodePackResolver.fromExtensionNodeMap([1, 2])), "NODE_MAP_INVALID");
});

Deno.test("analyze: API format with loaders, embeddings and a primitive feeding a loader", () => {
  const api = {
    "1": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "sd15.safetensors" } },
    "2": {
      class_type: "LoraLoader",
      inputs: { lora_name: "style.safetensors", model: ["1", 0], clip: ["1", 1] },
    },
    "3": {
      class_type: "CLIPTextEncode",
      inputs: { text: "a cat, embedding:EasyNegative, (embedding:bad.pt:0.8)" },
    },
    "4": { class_type: "PrimitiveString", inputs: { value: "4x_ultra.pth" } },
    "5": { class_type: "UpscaleModelLoader", inputs: { model_name: ["4", 0] } },
    "6": { class_type: "ImpactWildcardProcessor", inputs: {}, _meta: { title: "Wildcards" } },
    "7": { class_type: "VAELoader", inputs: { vae_name: "pixel_space" } },
  };
  const a = analyzeWorkflow(api, resolver);
  assert.equal(a.format, "api");
  assert.deepEqual(
    a.models.map((m) => [m.node_id, m.category, m.name]),
    [
      ["1", "checkpoints", "sd15.safetensors"],
      ["2", "loras", "style.safetensors"],
      ["3", "embeddings", "EasyNegative"],
      ["3", "embeddings", "bad.pt"],
      ["5", "upscale_models", "4x_ultra.pth"],
    ],
  );
  const wild = a.nodes.find((n) => n.id === "6")!;
  assert.deepEqual([wild.kind, wild.package, wild.title], [
    "custom",
    "https://github.com/ltdrdata/ComfyUI-Impact-Pack",
    "Wildcards",
  ]);
  assert.deepEqual(requirements(a).packages, ["https://github.com/ltdrdata/ComfyUI-Impact-Pack"]);
});

Deno.test("analyze: UI format with nested subgraphs, proxied widgets, bypassed and muted nodes", () => {
  const SG1 = "11111111-1111-4111-8111-111111111111";
  const SG2 = "22222222-2222-4222-8222-222222222222";
  const wf = {
    nodes: [
      uiNode(1, SG1, ["override.safetensors"], { properties: { proxyWidgets: [["5", "unet_name"]] } }),
      uiNode(2, "LoraLoaderModelOnly", ["off.safetensors", 1], { mode: 4 }),
      uiNode(3, "DualCLIPLoader", ["t5.safetensors", "clip_l.safetensors", "flux"], { mode: 2 }),
      uiNode(4, "Reroute"),
      uiNode(6, "PrimitiveNode", ["x"]),
      uiNode(7, "MarkdownNote", ["# hi"]),
    ],
    links: [[1, 4, 0, 2, 0, "MODEL"]],
    definitions: {
      subgraphs: [{
        id: SG1,
        name: "Loader block",
        nodes: [
          uiNode(5, "UNETLoader", ["flux1-dev.safetensors", "default"], {
            properties: {
              cnr_id: "comfy-core",
              models: [{
                name: "flux1-dev.safetensors",
                directory: "diffusion_models",
                url: "https://hf/x",
                hash: "AB",
                hash_type: "SHA256",
              }],
            },
          }),
          uiNode(8, SG2),
        ],
        definitions: {
          subgraphs: [{ id: SG2, nodes: [uiNode(9, "VAELoader", ["ae.safetensors"])] }, {
            id: SG1,
            nodes: [],
          }],
        },
      }],
    },
  };
  const a = analyzeWorkflow(wf, resolver);
  const byId = new Map(a.nodes.map((n) => [n.id, n]));
  assert.deepEqual([byId.get("1")!.kind, byId.get("1")!.title], ["frontend", "Loader block"]);
  assert.equal(byId.get(`${SG1}:5`)!.kind, "core");
  assert.equal(byId.get(`${SG1}:8`)!.kind, "frontend");
  assert.equal(byId.get(`${SG2}:9`)!.type, "VAELoader");
  assert.equal(byId.get("2")!.mode, "bypassed");
  assert.equal(byId.get("3")!.mode, "muted");
  for (const id of ["4", "6", "7"]) assert.equal(byId.get(id)!.kind, "frontend");
  const models = new Map(a.models.map((m) => [`${m.node_id}|${m.name}`, m]));
  assert.deepEqual(models.get(`${SG1}:5|flux1-dev.safetensors`), {
    name: "flux1-dev.safetensors",
    category: "diffusion_models",
    node_id: `${SG1}:5`,
    node_type: "UNETLoader",
    optional: false,
    url: "https://hf/x",
    hash: "sha256:ab",
  });
  assert.equal(models.get("1>5|override.safetensors")!.category, "diffusion_models");
  assert.equal(models.get(`${SG2}:9|ae.safetensors`)!.category, "vae");
  assert.equal(models.get("2|off.safetensors")!.optional, true);
  assert.deepEqual(
    a.models.filter((m) => m.node_id === "3").map((m) => [m.name, m.category, m.optional]),
    [["t5.safetensors", "text_encoders", true], ["clip_l.safetensors", "text_encoders", true]],
  );
  assert.ok(requirements(a).models.find((m) => m.name === "off.safetensors")!.optional);
});

Deno.test("analyze: group nodes, named widgets, dict widgets, top-level models, and propagated cnr_id", () => {
  const wf = {
    nodes: [
      uiNode(1, "workflow>MyGroup", ["a.safetensors"]),
      uiNode(2, "CheckpointLoaderSimple", [], { widgets_values_named: { ckpt_name: "named.ckpt" } }),
      {
        id: 3,
        type: "VHS_LoadVideo",
        widgets_values: { video: "x.mp4" },
        properties: { cnr_id: "comfyui-videohelpersuite" },
      },
      { id: 4, type: "VHS_LoadVideo", widgets_values: { video: "y.mp4" } },
      uiNode(5, "CLIPTextEncode", ["portrait, embedding:negs/bad_hands"]),
    ],
    models: [{ name: "top.safetensors", directory: "loras", url: "https://example/top" }, { name: 5 }],
    extra: {
      groupNodes: {
        MyGroup: {
          nodes: [{ type: "CheckpointLoaderSimple", index: 0, widgets_values: ["grouped.safetensors"] }],
        },
      },
    },
  };
  const a = analyzeWorkflow(wf, resolver, "g.json");
  const types = Object.fromEntries(a.nodes.map((n) => [n.id, [n.kind, n.package]]));
  assert.deepEqual(types["1"], ["frontend", null]);
  assert.deepEqual(types["MyGroup:0"], ["core", "comfy-core"]);
  assert.deepEqual(types["4"], ["custom", "comfyui-videohelpersuite"], "cnr_id of node 3 applies to node 4");
  const names = a.models.map((m) => `${m.node_id}:${m.category}/${m.name}`);
  assert.deepEqual(names.sort(), [
    "2:checkpoints/named.ckpt",
    "5:embeddings/negs/bad_hands",
    "MyGroup:0:checkpoints/grouped.safetensors",
    "null:loras/top.safetensors",
  ]);
  assert.equal(a.warnings.length, 1);
  assert.match(a.warnings[0], /g\.json: models\[1\] skipped/);
});

Deno.test("analyze: hostile inputs give a CdError naming the problem", () => {
  assert.equal(code(() => parseWorkflowText("[".repeat(100_000))), "WORKFLOW_TOO_DEEP");
  assert.equal(
    code(() => parseWorkflowText('{"a":' + "[".repeat(5000) + "]".repeat(5000) + "}")),
    "WORKFLOW_TOO_DEEP",
  );
  assert.equal(code(() => parseWorkflowText(" ".repeat(MAX_WORKFLOW_BYTES + 1))), "WORKFLOW_TOO_LARGE");
  assert.equal(code(() => parseWorkflowText("{nodes: [}")), "WORKFLOW_NOT_JSON");
  // Brackets inside strings do not count as nesting.
  assert.deepEqual(parseWorkflowText(JSON.stringify({ s: "[".repeat(1000) + '\\"{' })), {
    s: "[".repeat(1000) + '\\"{',
  });
  for (const bad of [null, 42, "text", [], [{ nodes: [] }], {}, { foo: { bar: 1 } }]) {
    assert.equal(code(() => analyzeWorkflow(bad, resolver)), "WORKFLOW_INVALID", JSON.stringify(bad));
  }
  assert.equal(code(() => analyzeWorkflow({ nodes: "abc" }, resolver)), "WORKFLOW_INVALID");
  const e = (() => {
    try {
      analyzeWorkflow({ nodes: [{ id: 1, type: 7 }] }, resolver, "w.json");
    } catch (err) {
      return err as CdError;
    }
  })();
  assert.match(e!.message, /^w\.json: nodes\.0\.type: /);
  assert.equal(
    code(() => analyzeWorkflow({ "1": { class_type: "X", inputs: 5 } }, resolver)),
    "WORKFLOW_INVALID",
  );
  assert.equal(
    code(() => analyzeWorkflow({ nodes: [], definitions: { subgraphs: [{ id: 3 }] } }, resolver)),
    "WORKFLOW_INVALID",
  );
});

Deno.test("analyze: odd but valid values are ignored, not fatal", () => {
  const wf = {
    nodes: [
      uiNode(1, "CheckpointLoaderSimple", [null]),
      uiNode(2, "LoraLoader", [{ nested: true }, 1, 1]),
      uiNode(3, "VAELoader"),
      { id: 4, type: "UNETLoader", widgets_values: null, properties: { models: [null, "x", { name: "" }] } },
      uiNode(5, "CLIPTextEncode", [42]),
    ],
    extra: null,
  };
  const a = analyzeWorkflow(wf, resolver);
  assert.deepEqual(a.models, []);
  assert.equal(a.warnings.length, 3);
  assert.equal(a.nodes.length, 5);
});
