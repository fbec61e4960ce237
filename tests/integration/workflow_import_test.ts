/**
 * Import planning against a real model index (sqlite, real files hashed), reading every import format
 * (bare workflow, the earlier JSON export, a tar.gz bundle over HTTP on 127.0.0.1), the size limit, and the
 * name check that keeps the user's files.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { makeEnvSkeleton } from "../../fixtures/env_skeleton.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { sha256Hex } from "../../lib/fsx.ts";
import { BundleManager } from "../../providers/bundles/bundle.ts";
import { ModelIndex } from "../../providers/models/index_db.ts";
import { readDesired } from "../../reconcile/desired.ts";
import { editPyprojectText } from "../../reconcile/pyproject_edit.ts";
import { analyzeWorkflow, MAX_WORKFLOW_BYTES } from "../../providers/workflows/analyze.ts";
import { EXPORT_FORMAT } from "../../providers/workflows/bundle.ts";
import { assertNameFree, readImportSource } from "../../providers/workflows/import.ts";
import { type ModelItem, type NodeItem, planImport } from "../../providers/workflows/import_plan.ts";
import { NodePackResolver } from "../../providers/workflows/node_map.ts";

const resolver = new NodePackResolver([
  { classType: "ImpactWildcardProcessor", pack: "comfyui-impact-pack", source: "registry" },
  { classType: "KJNodeThing", pack: "https://github.com/kijai/ComfyUI-KJNodes", source: "manager-map" },
  { classType: "GitOnly", pack: "https://github.com/someone/git-only-pack", source: "manager-map" },
  { classType: "Twice", pack: "pack-one", source: "manager-map" },
  { classType: "Twice", pack: "pack-two", source: "manager-map" },
], new Set());

const BASES = { hfEndpoint: "https://huggingface.co", civitaiApi: "https://civitai.com/api/v1" };

const WORKFLOW = {
  nodes: [
    { id: 1, type: "CheckpointLoaderSimple", widgets_values: ["in_cec.safetensors"] },
    { id: 2, type: "LoraLoader", widgets_values: ["on_disk.safetensors", 1, 1] },
    {
      id: 3,
      type: "VAELoader",
      widgets_values: ["remote.safetensors"],
      properties: {
        models: [{
          name: "remote.safetensors",
          directory: "vae",
          url: "https://huggingface.co/org/repo/resolve/main/split/remote.safetensors?download=true",
        }],
      },
    },
    { id: 4, type: "UpscaleModelLoader", widgets_values: ["nowhere.pth"] },
    { id: 5, type: "ImpactWildcardProcessor", widgets_values: [] },
    { id: 6, type: "KJNodeThing", widgets_values: [] },
    { id: 7, type: "MysteryNode", widgets_values: [] },
    { id: 8, type: "GitOnly", widgets_values: [] },
    { id: 9, type: "Twice", widgets_values: [] },
    { id: 10, type: "ControlNetLoader", widgets_values: ["twin.safetensors"] },
    { id: 11, type: "CLIPVisionLoader", mode: 4, widgets_values: ["bypassed.safetensors"] },
  ],
};

const byName = (items: ModelItem[]) => Object.fromEntries(items.map((m) => [m.name, m]));

Deno.test("import plan: packs against .cec and the bundle's pins; models by .cec, hash, name, URL, else skipped with why", async () => {
  await withTempDir(async (root) => {
    const paths = await makeEnvSkeleton(root, "imp");
    const { text } = await editPyprojectText(await Deno.readTextFile(paths.pyproject), [
      {
        path: ["tool", "comfydock", "models", "base"],
        value: {
          filename: "in_cec.safetensors",
          category: "checkpoints",
          sha256: "a".repeat(64),
          sources: [],
        },
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
    const put = async (cat: string, name: string, bytes: string, sub = "") => {
      const dir = join(paths.models, cat, sub);
      await Deno.mkdir(dir, { recursive: true });
      await Deno.writeTextFile(join(dir, name), bytes);
      return join(dir, name);
    };
    const lora = await put("loras", "on_disk.safetensors", "lora bytes");
    await put("controlnet", "twin.safetensors", "first twin", "a");
    await put("controlnet", "twin.safetensors", "second twin", "b");
    using index = ModelIndex.open(join(root, "index.db"));
    await index.scanDirectory(paths.models, { full: true });
    const desired = await readDesired(paths);
    const analysis = analyzeWorkflow(WORKFLOW, resolver);

    const plan = planImport(analysis, desired, index, BASES);
    const nodes = plan.nodes.map((
      n: NodeItem,
    ) => [n.status, n.status === "present" || n.status === "add" ? n.pack : n.types[0]]);
    assert.deepEqual(nodes, [
      ["add", "comfyui-impact-pack"],
      ["present", "https://github.com/kijai/ComfyUI-KJNodes"],
      ["add", "https://github.com/someone/git-only-pack"],
      ["choose", "Twice"],
      ["unresolved", "MysteryNode"],
    ]);
    const m = byName(plan.models);
    assert.deepEqual([m["in_cec.safetensors"].status, (m["in_cec.safetensors"] as { key: string }).key], [
      "present",
      "base",
    ]);
    assert.equal(m["on_disk.safetensors"].status, "local");
    assert.deepEqual(
      [
        (m["on_disk.safetensors"] as { path: string }).path,
        (m["on_disk.safetensors"] as { via: string }).via,
      ],
      [lora, "name-in-category"],
    );
    // A Hub URL becomes an hf: source (the Hub publishes the sha256: nothing is downloaded to add it).
    assert.deepEqual(
      [m["remote.safetensors"].status, (m["remote.safetensors"] as { source: string }).source],
      [
        "download",
        "hf:org/repo/split/remote.safetensors",
      ],
    );
    assert.equal(m["twin.safetensors"].status, "choose");
    assert.equal((m["twin.safetensors"] as { candidates: unknown[] }).candidates.length, 2);
    assert.equal(m["nowhere.pth"].status, "unresolved");
    assert.match((m["nowhere.pth"] as { reason: string }).reason, /no download URL/);
    assert.match((m["bypassed.safetensors"] as { reason: string }).reason, /bypassed or muted/);

    // With a bundle's manifest: its pins win, its model entries are used (found here by hash under
    // another name), and its packs count even when no index names them.
    const loraSha = sha256Hex("lora bytes");
    const renamed = analyzeWorkflow({
      nodes: [
        { id: 1, type: "LoraLoader", widgets_values: ["renamed.safetensors", 1, 1] },
        { id: 2, type: "ImpactWildcardProcessor" },
      ],
    }, resolver);
    const withManifest = planImport(renamed, desired, index, BASES, {
      nodes: {
        "comfyui-impact-pack": { source: "registry", version: "8.1.0" },
        "extra-pack": {
          source: "git",
          repository: "https://github.com/o/extra-pack",
          commit: "f".repeat(40),
        },
      },
      models: {
        my_lora: {
          hash: `sha256:${loraSha}`,
          sha256: loraSha,
          category: "loras",
          filename: "renamed.safetensors",
          sources: [],
        },
      },
    });
    assert.deepEqual(
      withManifest.nodes.map((n) => n.status === "add" ? [n.spec, n.pinned] : n.status),
      [["comfyui-impact-pack@8.1.0", true], [`https://github.com/o/extra-pack@${"f".repeat(40)}`, true]],
    );
    assert.deepEqual(
      withManifest.models.map((x) => [x.status, x.status === "manifest" ? x.local : null]),
      [["manifest", lora]],
    );

    // Without a model index: the workflow's URL, else unresolved.
    const noIndex = byName(planImport(analysis, desired, null, BASES).models);
    assert.equal(noIndex["remote.safetensors"].status, "download");
    assert.equal(noIndex["on_disk.safetensors"].status, "unresolved");
  });
});

Deno.test("import sources: bare workflow kept byte for byte, the earlier JSON export, a tar.gz bundle over HTTP; limits and failures", async () => {
  await withTempDir(async (root) => {
    const paths = await makeEnvSkeleton(root, "imp");
    const bare = join(root, "My Flow.json");
    const bareText = JSON.stringify(WORKFLOW, null, 1);
    await Deno.writeTextFile(bare, bareText);
    const a = await readImportSource(bare);
    assert.deepEqual([a.format, a.name, a.text], ["workflow", "My Flow", bareText]);

    const legacy = join(root, "old.comfydock-workflow.json");
    const sha = "b".repeat(64);
    await Deno.writeTextFile(
      legacy,
      JSON.stringify({
        format: EXPORT_FORMAT,
        format_version: 1,
        name: "shared",
        exported_at: "2025-01-01T00:00:00Z",
        nodes: [{ package: "comfyui-impact-pack", spec: { source: "registry", version: "8.1.0" } }],
        unknown_node_types: [],
        models: [
          {
            name: "remote.safetensors",
            category: "vae",
            optional: false,
            sha256: sha,
            url: "https://x.test/r",
          },
          { name: "nohash.safetensors", category: "vae", optional: false },
        ],
        workflow: WORKFLOW,
      }),
    );
    const b = await readImportSource(legacy);
    assert.equal(b.format, "export-json");
    assert.equal(b.name, "shared");
    assert.deepEqual(b.workflow, WORKFLOW);
    assert.deepEqual(b.manifest?.nodes, { "comfyui-impact-pack": { source: "registry", version: "8.1.0" } });
    assert.deepEqual(Object.values(b.manifest?.models ?? {}).map((x) => [x.sha256, x.sources]), [[sha, [{
      type: "url",
      url: "https://x.test/r",
    }]]]);

    const bundle = join(root, "flow.tar.gz");
    await new BundleManager().createWorkflowBundle(bare, {
      name: "bundled",
      nodes: { "comfyui-impact-pack": { source: "registry", version: "8.1.0" } },
    }, { out: bundle, sourceEnvironment: "imp" });
    const envBundle = join(root, "env.tar.gz");
    await new BundleManager().createEnvBundle(paths, { out: envBundle });
    const bundleBytes = await Deno.readFile(bundle);
    const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/flow.tar.gz") return new Response(bundleBytes);
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
      const c = await readImportSource(`${base}/flow.tar.gz`);
      assert.deepEqual([c.format, c.name, c.text], ["bundle", "bundled", bareText]);
      assert.deepEqual(Object.keys(c.manifest?.nodes ?? {}), ["comfyui-impact-pack"]);
      await assert.rejects(readImportSource(`${base}/missing.json`), /HTTP 404/);
      await assert.rejects(readImportSource(`${base}/huge.json`), /more than/);
      await assert.rejects(readImportSource(envBundle), /is an environment bundle/);
      await assert.rejects(readImportSource(join(root, "nope.json")), /does not exist/);
    } finally {
      await server.shutdown();
    }
  });
});

Deno.test("import name check: a tracked name, a .cec file or a ComfyUI file is refused with the place named", async () => {
  await withTempDir(async (root) => {
    const paths = await makeEnvSkeleton(
      root,
      "imp",
      '\n[tool.comfydock.workflows.tracked.kept]\nfile = "workflows/kept.json"\n',
    );
    await Deno.mkdir(paths.userWorkflows, { recursive: true });
    await Deno.writeTextFile(join(paths.userWorkflows, "mine.json"), "{}");
    await Deno.mkdir(join(paths.cecWorkflows, "sub"), { recursive: true });
    await Deno.writeTextFile(join(paths.cecWorkflows, "sub", "stray.json"), "{}");
    const desired = await readDesired(paths);
    await assert.rejects(assertNameFree(paths, desired, "kept"), /'kept' already exists \(tracked in/);
    await assert.rejects(assertNameFree(paths, desired, "mine"), /'mine' already exists \(in ComfyUI at /);
    await assert.rejects(assertNameFree(paths, desired, "sub/stray"), /'sub\/stray' already exists \(at /);
    await assert.rejects(assertNameFree(paths, desired, "../escape"), /not a workflow file inside/);
    assert.deepEqual(await assertNameFree(paths, desired, "sub/new one"), {
      rel: "sub/new one.json",
      name: "sub/new one",
    });
    assert.deepEqual(await assertNameFree(paths, desired, "typed.json"), {
      rel: "typed.json",
      name: "typed",
    });
    await assert.rejects(assertNameFree(paths, desired, "kept.json"), /'kept' already exists/);
  });
});
