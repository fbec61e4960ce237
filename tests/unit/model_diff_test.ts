import assert from "node:assert/strict";
import { envPaths, workspacePaths } from "../../reconcile/paths.ts";
import { diffModels, type ModelsObserved } from "../../providers/models/provider.ts";
import { ModelSpec } from "../../reconcile/schema.ts";
import { keyFromFilename, parseAddSource } from "../../providers/models/add.ts";
import { categoryOf } from "../../providers/models/walk.ts";

const paths = envPaths(workspacePaths("/ws"), "e");
const SHA = "a".repeat(64);

function spec(extra: Partial<ModelSpec> = {}): ModelSpec {
  return ModelSpec.parse({
    sha256: SHA,
    hash: `sha256:${SHA}`,
    size: 2 * 1024 ** 3,
    category: "checkpoints",
    filename: "m.safetensors",
    sources: [{ type: "huggingface", repo: "o/r", file: "m.safetensors" }],
    ...extra,
  });
}

const at = "/ws/environments/e/ComfyUI/models/checkpoints/m.safetensors";
const base = { path: at, broken_link: false, found: null, found_verified: false, actual: null };

Deno.test("diff: ok is no action; indexed elsewhere is a link; missing everywhere is a download with its size", () => {
  const models = {
    a: spec(),
    b: spec({ filename: "b.safetensors" }),
    c: spec({ filename: "c.safetensors" }),
  };
  const observed: ModelsObserved = {
    models: {
      a: { ...base, state: "ok" },
      b: {
        ...base,
        state: "missing",
        found: "/ws/comfydock_cache/models/checkpoints/b.safetensors",
        found_verified: true,
      },
      c: { ...base, state: "missing" },
    },
    stray: [],
  };
  const actions = diffModels({ models, paths }, observed);
  assert.deepEqual(actions.map((a) => [a.address, a.kind]), [["model.b", "create"], ["model.c", "create"]]);
  assert.match(
    actions[0].reason,
    /in the model index at comfydock_cache\/models\/checkpoints\/b\.safetensors/,
  );
  assert.deepEqual(actions[0].details, [
    "link models/checkpoints/b.safetensors -> /ws/comfydock_cache/models/checkpoints/b.safetensors",
  ]);
  assert.equal(actions[1].details![0], "download from huggingface o/r/m.safetensors (2.0 GiB)");
});

Deno.test("diff: wrong content is a replace that trashes the old file; no source says apply will fail; strays delete", () => {
  const observed: ModelsObserved = {
    models: {
      w: { ...base, state: "wrong", actual: { size: 10, sha256: "b".repeat(64) } },
      n: { ...base, state: "missing" },
    },
    stray: ["/ws/environments/e/ComfyUI/models/loras/old.safetensors"],
  };
  const actions = diffModels({ models: { w: spec(), n: spec({ sources: [] }) }, paths }, observed);
  assert.deepEqual(actions.map((a) => [a.address, a.kind]), [
    ["model.n", "create"],
    ["model.w", "replace"],
    ["model.loras/old.safetensors", "delete"],
  ]);
  assert.match(actions[0].reason, /no source to download from/);
  assert.match(
    actions[1].reason,
    /wrong content at models\/checkpoints\/m\.safetensors \(sha256 bbbbbbbbbbbb…, expected sha256 aaaaaaaaaaaa…\)/,
  );
  assert.equal(actions[1].details![0], "move the current models/checkpoints/m.safetensors to the trash");
});

Deno.test("model add arguments, keys and categories", () => {
  assert.deepEqual(parseAddSource("hf:org/repo/sub/f.safetensors@v2"), {
    kind: "huggingface",
    repo: "org/repo",
    file: "sub/f.safetensors",
    revision: "v2",
  });
  assert.deepEqual(parseAddSource("civitai:123"), { kind: "civitai", versionId: "123" });
  assert.deepEqual(parseAddSource("SHA256:" + "A".repeat(64)), {
    kind: "path",
    path: "SHA256:" + "A".repeat(64),
  });
  assert.deepEqual(parseAddSource("sha256:" + "A".repeat(64)), { kind: "hash", sha256: "a".repeat(64) });
  assert.equal(parseAddSource("https://x/y.bin").kind, "url");
  assert.throws(() => parseAddSource("hf:org/repo"), /hf:OWNER\/REPO\/FILE/);
  assert.equal(keyFromFilename("SD XL (base) v1.0.safetensors"), "sd_xl_base_v1_0");
  assert.equal(categoryOf("/data", "/data/ComfyUI/models/loras/sub/x.safetensors"), "loras");
  assert.equal(categoryOf("/data/sd-models", "/data/sd-models/vae/x.safetensors"), "vae");
  assert.equal(categoryOf("/data/sd-models", "/data/sd-models/x.safetensors"), null);
});
