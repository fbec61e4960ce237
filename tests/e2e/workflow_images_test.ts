/**
 * Workflows as people share them (#20, #19): embedded in PNG/WebP images ComfyUI saved, naming models with
 * Windows paths; what they need that `.cec` lacks is warned about; a model found here by name keeps the
 * workflow's download URL; export says what would not rebuild elsewhere. The CLI as a process.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, jsonData } from "../../fixtures/cli.ts";
import { makeNodeRepo } from "../../fixtures/node_git.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { useLocalUv } from "../../fixtures/tools.ts";
import { pngWithText, webpWithExif } from "../../fixtures/workflow_images.ts";
import { tempRoot } from "../../fixtures/tmp.ts";

await useLocalUv();
Deno.env.set("GIT_CONFIG_GLOBAL", "/dev/null");

const root = await tempRoot("comfydock-e2e-wfimg-");
const { paths, env: realEnv } = await createRealEnv(join(root, "ws"), "env");
const env = { ...realEnv, GIT_CONFIG_GLOBAL: "/dev/null" };
const run = (...args: string[]) => cli(args, { env });

const URL_ = "https://example.com/models/hunyuan.safetensors";
/** A UI workflow as the frontend saves it: a custom node with its pack hint, a loader saved on Windows. */
const WORKFLOW = {
  nodes: [
    {
      id: 1,
      type: "UNETLoader",
      mode: 0,
      widgets_values: ["hyvideo\\hunyuan.safetensors", "default"],
      properties: {
        cnr_id: "comfy-core",
        models: [{ name: "hyvideo\\hunyuan.safetensors", directory: "diffusion_models", url: URL_ }],
      },
    },
    { id: 2, type: "FancySampler", mode: 0, properties: { cnr_id: "fancy-pack", ver: "1.0.0" } },
    { id: 3, type: "KSampler", mode: 0, properties: { cnr_id: "comfy-core" } },
  ],
  links: [],
  version: 0.4,
};
const PROMPT = { "3": { class_type: "KSampler", inputs: {} } };

async function write(name: string, bytes: Uint8Array): Promise<string> {
  const p = join(root, name);
  await Deno.writeFile(p, bytes);
  return p;
}

Deno.test("workflow analyze reads PNG text chunks and WebP EXIF; Windows model paths become /", async () => {
  const png = await write(
    "shared.png",
    pngWithText([{ keyword: "prompt", text: JSON.stringify(PROMPT) }, {
      keyword: "workflow",
      text: JSON.stringify(WORKFLOW),
    }]),
  );
  // Non-Latin-1 text makes Pillow write iTXt; zTXt is what other tools write.
  const itxt = await write(
    "itxt.png",
    pngWithText([{ keyword: "workflow", text: JSON.stringify({ ...WORKFLOW, extra: { title: "日本" } }) }]),
  );
  const ztxt = await write(
    "ztxt.png",
    pngWithText([{ keyword: "workflow", text: JSON.stringify(WORKFLOW), chunk: "zTXt" }]),
  );
  const webp = await write("anim.webp", webpWithExif({ prompt: PROMPT, workflow: WORKFLOW }));
  const oldWebp = await write(
    "old.webp",
    webpWithExif({ workflow: WORKFLOW }, { littleEndian: true, prefix: true }),
  );
  for (const file of [png, itxt, ztxt, webp, oldWebp]) {
    const r = await run("workflow", "analyze", file, "--json");
    assert.equal(r.code, 0, `${file}: ${r.stderr}`);
    const a = jsonData(r);
    assert.equal(a.format, "ui", file);
    assert.deepEqual(a.nodes.map((n: { type: string }) => n.type), [
      "UNETLoader",
      "FancySampler",
      "KSampler",
    ]);
    assert.deepEqual(
      a.models.map((m: { category: string; name: string }) => `${m.category}/${m.name}`),
      ["diffusion_models/hyvideo/hunyuan.safetensors"],
    );
  }
  // Only the API prompt (no UI workflow): that is what is read.
  const apiOnly = await write("api.png", pngWithText([{ keyword: "prompt", text: JSON.stringify(PROMPT) }]));
  const r = await run("workflow", "analyze", apiOnly, "--json");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(jsonData(r).format, "api");
});

Deno.test("anything that is not a workflow: a clear error naming the file and what was expected, no raw bytes", async () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ["plain.png", pngWithText([]), /plain\.png: a PNG image without ComfyUI workflow metadata/],
    ["photo.webp", webpWithExif({}), /photo\.webp: a WebP image without ComfyUI workflow metadata/],
    [
      "photo.jpg",
      new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1, 2, 3]),
      /photo\.jpg: expected a ComfyUI workflow: JSON \(UI or API format\), or a PNG\/WebP image saved by ComfyUI; found a JPEG image/,
    ],
    [
      "blob.json",
      new Uint8Array([0x00, 0x01, 0x89, 0x50, 0xfe, 0x10, 0x11]),
      /blob\.json: expected a ComfyUI workflow.*; found binary data/,
    ],
    [
      "notes.txt",
      new TextEncoder().encode("my workflow is great\n"),
      /notes\.txt: expected .*; found text that is not JSON/,
    ],
    [
      "bad.png",
      pngWithText([{ keyword: "workflow", text: "{nodes: \u0001" }]),
      /bad\.png \(PNG text chunk 'workflow'\): not valid JSON/,
    ],
  ];
  for (const [name, bytes, message] of cases) {
    const file = await write(name, bytes);
    const r = await run("workflow", "analyze", file);
    assert.equal(r.code, 1, name);
    assert.match(r.stderr, message, name);
    assert.match(r.stderr, /hint: /);
    // Nothing of the file's bytes is echoed: only printable text on the terminal.
    // deno-lint-ignore no-control-regex -- control characters are exactly what must not appear
    assert.doesNotMatch(r.stderr, /[\x00-\x08\x0e-\x1f\x7f-\x9f\ufffd]/, name);
  }
});

Deno.test("workflow track IMAGE.png: the embedded workflow is tracked; missing packs and models are warned", async () => {
  const png = await write(
    "portrait.png",
    pngWithText([{ keyword: "workflow", text: JSON.stringify(WORKFLOW) }]),
  );
  const r = await run("workflow", "track", png, "--no-apply");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Wrote the workflow embedded in .*portrait\.png to ComfyUI as 'portrait'/);
  assert.match(r.stdout, /Tracked 'portrait' in \.cec\./);
  assert.match(r.stderr, /warning: 'portrait' needs node pack\(s\) not in \.cec: fancy-pack/);
  assert.match(
    r.stderr,
    /warning: 'portrait' needs model\(s\) not in \.cec: diffusion_models\/hyvideo\/hunyuan\.safetensors/,
  );
  const saved = JSON.parse(await Deno.readTextFile(join(paths.userWorkflows, "portrait.json")));
  assert.deepEqual(saved, WORKFLOW);
  const pyproject = await Deno.readTextFile(paths.pyproject);
  assert.match(pyproject, /"diffusion_models\/hyvideo\/hunyuan\.safetensors"/);
  // The same image again: ComfyUI's file is never overwritten.
  const again = await run("workflow", "track", png, "--no-apply");
  assert.equal(again.code, 1);
  assert.match(again.stderr, /portrait\.json already exists/);
  // A track that does not happen (here: .cec has an edit of the user's it would have to commit) leaves no
  // workflow file behind in ComfyUI either.
  const before = await Deno.readTextFile(paths.pyproject);
  await Deno.writeTextFile(paths.pyproject, before + "# my own edit\n");
  try {
    const other = await write(
      "landscape.png",
      pngWithText([{ keyword: "workflow", text: JSON.stringify(WORKFLOW) }]),
    );
    const refused = await run("workflow", "track", other, "--no-apply");
    assert.equal(refused.code, 1, refused.stdout);
    assert.match(refused.stderr, /uncommitted edits in pyproject\.toml/);
    assert.equal(
      await Deno.stat(join(paths.userWorkflows, "landscape.json")).then(() => true, () => false),
      false,
    );
  } finally {
    await Deno.writeTextFile(paths.pyproject, before);
  }
});

Deno.test("workflow import IMAGE.webp: a model found here by name keeps the workflow's URL and its hash", async () => {
  // The model is on this machine, in a subfolder, indexed by a scan.
  const models = join(root, "my-models", "diffusion_models", "hyvideo");
  await Deno.mkdir(models, { recursive: true });
  await Deno.writeFile(join(models, "hunyuan.safetensors"), new Uint8Array(4096).map((_, i) => i % 251));
  let r = await run("model", "scan", join(root, "my-models"));
  assert.equal(r.code, 0, r.stderr);
  // The author's credentials in the model's URL are never kept.
  const withToken = "https://me:s3cret@example.com/models/hunyuan.safetensors?token=abc123";
  const wf = {
    ...WORKFLOW,
    nodes: WORKFLOW.nodes.filter((n) => n.type !== "FancySampler").map((n) =>
      n.type === "UNETLoader"
        ? { ...n, properties: { ...n.properties, models: [{ ...n.properties.models![0], url: withToken }] } }
        : n
    ),
  };
  const webp = await write("clip.webp", webpWithExif({ prompt: PROMPT, workflow: wf }));
  r = await run("workflow", "import", webp, "--no-apply", "--yes", "--json");
  assert.equal(r.code, 0, r.stderr);
  const out = jsonData(r);
  assert.equal(out.name, "clip");
  assert.equal(out.format, "webp");
  assert.equal(out.models.length, 1);
  const spec = out.models[0].spec;
  assert.equal(spec.filename, "hyvideo/hunyuan.safetensors");
  assert.match(spec.sha256, /^[0-9a-f]{64}$/);
  assert.deepEqual(spec.sources, [{ type: "url", url: URL_ }]); // was [] (#20)
  const pyproject = await Deno.readTextFile(paths.pyproject);
  assert.match(pyproject, new RegExp(`url = "${URL_.replaceAll(".", "\\.")}"`));
  assert.doesNotMatch(pyproject, /s3cret|abc123/);
  // The .cec copy is the workflow's JSON, not the image.
  const copy = JSON.parse(await Deno.readTextFile(join(paths.cecWorkflows, "clip.json")));
  assert.equal(copy.nodes.length, 2);
});

Deno.test("export warns about models without a source and nodes only reachable by file://", async () => {
  const local = await makeNodeRepo(join(root, "repos"), "local-only", [{ tag: "v1" }]);
  let r = await run("node", "add", `${local.url}@v1`, "--no-apply", "--yes");
  assert.equal(r.code, 0, r.stderr);
  const mine = join(root, "mine.safetensors");
  await Deno.writeFile(mine, new Uint8Array(2048).map((_, i) => (i * 7) % 256));
  r = await run("model", "add", mine, "--category", "loras", "--no-apply", "--yes");
  assert.equal(r.code, 0, r.stderr);
  r = await run("export", "--out", join(root, "env.tar.gz"));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warning: model\.mine \(loras\/mine\.safetensors\) has no download source/);
  assert.match(
    r.stderr,
    /warning: node\.local-only is only reachable at file:\/\/.*local-only \(on this machine\)/,
  );
  assert.doesNotMatch(r.stderr, /model\.hunyuan.*no download source/); // it kept its URL
  r = await run("export", "--out", join(root, "env2.tar.gz"), "--json");
  assert.equal(jsonData(r).warnings.length, 2);
});
