/**
 * `workflow import` and `workflow export` as a user types them, into real environments: a registry on
 * 127.0.0.1 serves the node pack, a Hugging Face look-alike serves the model, uv works offline on the
 * fixture wheelhouse. Import adds the pack, the model and the tracked workflow in one change and applies
 * it; what cannot be resolved is reported and skipped; a taken name changes nothing; export -> import
 * through the tar.gz bundle lands the same pins in a second environment.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, jsonData } from "../../fixtures/cli.ts";
import { ModelServer } from "../../fixtures/model_server.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { startRegistryServer } from "../../fixtures/registry_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { sha256Hex } from "../../lib/fsx.ts";
import { run } from "../../lib/proc.ts";
import { envPaths } from "../../reconcile/paths.ts";

const VAE = new TextEncoder().encode("fancy vae weights ".repeat(1000));

function workflow(hfUrl: string) {
  return {
    last_node_id: 4,
    nodes: [
      { id: 1, type: "CheckpointLoaderSimple", mode: 0, widgets_values: [] },
      {
        id: 2,
        type: "VAELoader",
        mode: 0,
        widgets_values: ["fancy_vae.safetensors"],
        properties: { models: [{ name: "fancy_vae.safetensors", directory: "vae", url: hfUrl }] },
      },
      // No cnr_id: only the node index (filled from the registry) knows which pack provides it.
      { id: 3, type: "FancyNode", mode: 0, properties: {} },
      { id: 4, type: "MysteryNode", mode: 0, widgets_values: [] },
    ],
    links: [],
    version: 0.4,
  };
}

Deno.test("workflow import --yes adds the node pack, the model and the workflow in one applied change; export -> import through a bundle", async () => {
  const registry = await startRegistryServer([
    { id: "fancy-nodes", versions: [{ version: "1.0.0", pack: { classes: ["FancyNode"] } }] },
  ]);
  await using models = ModelServer.start();
  try {
    await withTempDir(async (root) => {
      const home = join(root, "home");
      const { paths, env: base } = await createRealEnv(home, "env", join(root, "fx"));
      models.hf("fancy/vae", "fancy_vae.safetensors", VAE);
      const env = {
        ...base,
        HOME: root,
        COMFYDOCK_REGISTRY_URL: registry.url,
        HF_ENDPOINT: models.url,
        COMFYDOCK_HTTP_RETRY_BASE_MS: "5",
      };
      const wfFile = join(root, "shared flow.json");
      const text = JSON.stringify(
        workflow("https://huggingface.co/fancy/vae/resolve/main/fancy_vae.safetensors"),
      );
      await Deno.writeTextFile(wfFile, text);

      const emptyMap = join(root, "map.json");
      await Deno.writeTextFile(emptyMap, "{}");
      let r = await cli(["node", "index", "update", "--from", emptyMap], { env });
      assert.equal(r.code, 0, r.stderr);
      r = await cli(["workflow", "import", wfFile, "--yes"], { env });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      // The plan of the import came first: every node add and model download is listed.
      assert.match(r.stdout, /node pack \+ add fancy-nodes.*\(FancyNode\)/);
      assert.match(
        r.stdout,
        /model vae\/fancy_vae\.safetensors: \+ add, download from hf:fancy\/vae\/fancy_vae\.safetensors/,
      );
      // The unknown type is reported with what to do, and skipped.
      assert.match(
        r.stdout,
        /node type MysteryNode: .*no node index names its pack\n\s+-> .*node index update/,
      );
      // The engine's plan was shown, then the change was committed and applied.
      assert.match(r.stdout, /Plan: 3 to add, 0 to change, 0 to remove\./);
      assert.match(
        r.stdout,
        /Committed \.cec: workflow 'shared flow', 1 node pack\(s\), 1 model\(s\)\.\nApplied: the environment matches \.cec\./,
      );

      const pyproject = await Deno.readTextFile(paths.pyproject);
      assert.match(pyproject, /\[tool\.comfydock\.nodes\.fancy-nodes\][^[]*version = "1\.0\.0"/s);
      assert.match(pyproject, /\[tool\.comfydock\.models\.fancy_vae\][^[]*sha256 = "[0-9a-f]{64}"/s);
      assert.match(pyproject, /\[tool\.comfydock\.workflows\.tracked\."shared flow"\]/);
      const log = await run("git", ["-C", paths.cec, "log", "--format=%s"]);
      assert.match(
        log.stdout.split("\n")[0],
        /^workflow import shared flow: node fancy-nodes, model fancy_vae$/,
      );
      // Installed, linked, restored into ComfyUI byte for byte.
      assert.ok((await Deno.stat(join(paths.customNodes, "fancy-nodes", "__init__.py"))).isFile);
      const linked = join(paths.models, "vae", "fancy_vae.safetensors");
      assert.equal(sha256Hex(await Deno.readFile(linked)), sha256Hex(VAE));
      assert.equal(await Deno.readTextFile(join(paths.userWorkflows, "shared flow.json")), text);
      r = await cli(["plan", "--detailed-exitcode"], { env });
      assert.equal(r.code, 0, r.stdout + r.stderr);

      // The same name again: refused, nothing changed.
      const before = await Deno.readTextFile(paths.pyproject);
      const head = (await run("git", ["-C", paths.cec, "rev-parse", "HEAD"])).stdout;
      r = await cli(["workflow", "import", wfFile, "--yes"], { env });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /a workflow named 'shared flow' already exists .*\n.*--name NAME/);
      assert.equal(await Deno.readTextFile(paths.pyproject), before);
      assert.equal((await run("git", ["-C", paths.cec, "rev-parse", "HEAD"])).stdout, head);

      // Export as a bundle, import it into a second environment: the exporter's pins are used.
      const bundle = join(root, "shared.tar.gz");
      r = await cli(["-e", "env", "workflow", "export", "shared flow", "--out", bundle, "--json"], { env });
      assert.equal(r.code, 0, r.stderr);
      const exported = jsonData(r);
      assert.deepEqual(Object.keys(exported.nodes), ["fancy-nodes"]);
      assert.deepEqual(Object.keys(exported.models), ["fancy_vae"]);
      assert.deepEqual(exported.unknown_node_types, ["MysteryNode"]);
      assert.deepEqual([...await Deno.readFile(bundle)].slice(0, 2), [0x1f, 0x8b]);

      await createRealEnv(home, "env2", join(root, "fx2"));
      const other = envPaths(paths.workspace, "env2");
      const hfBefore = models.requests.filter((q) => q.method === "GET").length;
      r = await cli(["-e", "env2", "workflow", "import", bundle, "--non-interactive", "--json"], { env });
      assert.equal(r.code, 0, r.stderr);
      const out = jsonData(r);
      assert.equal(out.format, "bundle");
      assert.equal(out.name, "shared flow");
      assert.equal(out.applied, true);
      assert.deepEqual(
        out.nodes.map((n: { id: string; spec: { version: string } }) => [n.id, n.spec.version]),
        [[
          "fancy-nodes",
          "1.0.0",
        ]],
      );
      assert.deepEqual(out.skipped.map((s: { what: string }) => s.what), ["node type MysteryNode"]);
      // The model's content is already in the workspace store: linked, not downloaded again.
      assert.equal(models.requests.filter((q) => q.method === "GET").length, hfBefore);
      assert.equal(
        sha256Hex(await Deno.readFile(join(other.models, "vae", "fancy_vae.safetensors"))),
        sha256Hex(VAE),
      );
      assert.equal(await Deno.readTextFile(join(other.userWorkflows, "shared flow.json")), text);
      r = await cli(["-e", "env2", "plan", "--detailed-exitcode"], { env });
      assert.equal(r.code, 0, r.stdout + r.stderr);
    });
  } finally {
    await registry.close();
  }
});
