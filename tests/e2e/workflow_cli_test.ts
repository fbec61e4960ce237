/** The workflow commands as a user types them: analyze without an environment, then track/status/export/import/untrack. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, envelopeOf, jsonData } from "../../fixtures/cli.ts";
import { makeEnvSkeleton } from "../../fixtures/env_skeleton.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { realData } from "../../fixtures/real_data.ts";

const TEMPLATE = join(await realData("workflowTemplates"), "image_qwen_image.json");
const NODE_MAP = await realData("extensionNodeMap");

Deno.test(
  "workflow analyze --json: nodes with kind/package and models with folders, no environment needed",
  async () => {
    await withTempDir(async (home) => {
      const r = await cli(["workflow", "analyze", TEMPLATE, "--json", "--node-map", NODE_MAP], {
        env: { COMFYDOCK_HOME: home },
      });
      assert.equal(r.code, 0, r.stderr);
      const out = jsonData(r);
      assert.ok(out.nodes.length > 5);
      for (const n of out.nodes) {
        assert.ok(["core", "custom", "frontend", "unknown"].includes(n.kind), JSON.stringify(n));
        assert.equal(typeof n.id, "string");
        assert.ok("package" in n && "type" in n);
      }
      assert.ok(
        out.nodes.some((n: { kind: string; package: string }) =>
          n.kind === "core" && n.package === "comfy-core"
        ),
      );
      const diffusion = out.models.find((m: { category: string }) => m.category === "diffusion_models");
      assert.ok(diffusion?.url?.startsWith("https://"), JSON.stringify(out.models));
      assert.ok(diffusion.node_id && diffusion.node_type === "UNETLoader");
    });
  },
);

Deno.test("workflow analyze: hostile and missing files fail with a clear error and exit 1", async () => {
  await withTempDir(async (dir) => {
    const deep = join(dir, "deep.json");
    await Deno.writeTextFile(deep, "[".repeat(50_000));
    const r = await cli(["workflow", "analyze", deep], { env: { COMFYDOCK_HOME: dir } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: .*deep\.json: JSON nested deeper than/);
    const wrong = join(dir, "wrong.json");
    await Deno.writeTextFile(wrong, JSON.stringify({ nodes: [{ id: 1, type: ["x"] }] }));
    const w = await cli(["workflow", "analyze", wrong, "--json"], { env: { COMFYDOCK_HOME: dir } });
    assert.equal(w.code, 1);
    const doc = envelopeOf(w);
    assert.equal(!doc.ok && doc.error.code, "WORKFLOW_INVALID");
    const missing = await cli(["workflow", "analyze", join(dir, "nope.json")], {
      env: { COMFYDOCK_HOME: dir },
    });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope\.json does not exist/);
  });
});

Deno.test("workflow track / status / export / import / untrack through the CLI", async () => {
  await withTempDir(async (home) => {
    const paths = await makeEnvSkeleton(home, "wf");
    await Deno.mkdir(paths.userWorkflows, { recursive: true });
    await Deno.copyFile(TEMPLATE, join(paths.userWorkflows, "qwen.json"));
    // HF_ENDPOINT: a closed local port, so the template's Hub models fail fast instead of going online.
    const env = {
      COMFYDOCK_HOME: home,
      COMFYDOCK_NODE_MAP: NODE_MAP,
      HF_ENDPOINT: "http://127.0.0.1:9",
      COMFYDOCK_DOWNLOAD_RETRY_MS: "1",
    };

    let r = await cli(["workflow", "status", "--json"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      jsonData(r).workflows.map((w: { name: string; state: string }) => [w.name, w.state]),
      [
        ["qwen", "untracked"],
      ],
    );

    r = await cli(["workflow", "track", "qwen", "--no-apply"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Tracked 'qwen'/);
    assert.match(
      await Deno.readTextFile(paths.pyproject),
      /\[tool\.comfydock\.workflows\.tracked\.qwen\.requires\]/,
    );
    r = await cli(["workflow", "status"], { env });
    assert.match(r.stdout, /qwen\s+in sync/);

    const out = join(home, "qwen.tar.gz");
    r = await cli(["workflow", "export", "qwen", "--out", out], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Exported 'qwen' to .*qwen\.tar\.gz: 0 node pack\(s\) and 0 model\(s\)/);
    assert.match(r.stdout, /Models not in \.cec .*vae\//);

    const head = await Deno.readTextFile(paths.pyproject);
    r = await cli(["workflow", "import", out, "--name", "copy"], { env });
    assert.equal(r.code, 1, "without --yes and without a terminal the import asks and is refused");
    assert.equal(await Deno.readTextFile(paths.pyproject), head);
    assert.match(r.stderr, /pass --yes/);
    assert.equal((await cli(["workflow", "status", "--json"], { env })).stdout.includes('"copy"'), false);
    r = await cli(["workflow", "import", out, "--name", "copy", "--no-apply", "--yes"], { env });
    assert.equal(r.code, 0, r.stderr);
    // The Hub is unreachable here: the models are listed as downloads, then skipped with what to do.
    assert.match(r.stdout, /model vae\/\S+: \+ add, download from hf:/);
    assert.match(r.stdout, /Skipped \d+ item\(s\)[^]*model vae\/[^]*-> 'comfydock model add hf:/);
    assert.equal(
      await Deno.readTextFile(join(paths.cecWorkflows, "copy.json")),
      await Deno.readTextFile(TEMPLATE),
    );

    r = await cli(["workflow", "untrack", "qwen", "--no-apply"], { env });
    assert.equal(r.code, 0, r.stderr);
    r = await cli(["workflow", "status", "--json"], { env });
    assert.deepEqual(
      jsonData(r).workflows.map((w: { name: string; state: string }) => [w.name, w.state]),
      [
        ["copy", "missing-in-comfyui"],
        ["qwen", "untracked"],
      ],
    );
  });
});
