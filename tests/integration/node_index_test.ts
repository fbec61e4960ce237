import assert from "node:assert/strict";
import { sharedData, sharedDataTest } from "../../fixtures/shared_data.ts";
import { join } from "node:path";
import { loadResolver, NodeIndex, updateNodeIndex } from "../../providers/nodes/node_index.ts";
import { RegistryClient } from "../../providers/nodes/registry.ts";
import { deadUrl, startRegistryServer } from "../../fixtures/registry_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { CdError } from "../../lib/errors.ts";

const MAP = sharedData("comfyui-manager/extension-node-map.json");

sharedDataTest(
  "node index: registry listing + comfy-nodes + the real Manager map, resolver and offline search",
  async () => {
    const server = await startRegistryServer([
      {
        id: "comfyui-impact-pack",
        name: "ComfyUI Impact Pack",
        repository: "https://github.com/ltdrdata/ComfyUI-Impact-Pack",
        downloads: 5000,
        versions: [{ version: "8.1.0", pack: { classes: ["SAMLoader", "ImpactOnlyInRegistry"] } }],
      },
      { id: "tiny-pack", description: "tiny upscaler", downloads: 3, versions: [{ version: "0.1.0" }] },
    ], { maxPageSize: 1 });
    try {
      await withTempDir(async (dir) => {
        const db = join(dir, "node_index.db");
        const result = await updateNodeIndex(db, {
          registry: new RegistryClient({ baseUrl: server.url, retryBaseMs: 5 }),
          from: MAP,
          defaultMapUrl: await deadUrl(), // `from` wins: the default map is never fetched
        });
        assert.deepEqual(result.warnings, []);
        assert.equal(result.registryNodes, 2);
        assert.equal(result.registryClasses, 3);
        assert.ok(result.coreTypes! > 300, `core types from the map's ComfyUI entry: ${result.coreTypes}`);
        assert.ok(result.mapClasses! > 20_000);

        const resolver = loadResolver(db)!;
        assert.equal(resolver.resolve("KSampler").kind, "core");
        assert.equal(resolver.resolve("ImpactOnlyInRegistry").package, "comfyui-impact-pack");
        // A Manager-map type of a repository the registry knows is named by its registry id.
        assert.equal(resolver.resolve("BboxDetectorCombined_v2").package, "comfyui-impact-pack");
        assert.equal(resolver.resolve("NoSuchNodeAnywhere").kind, "unknown");

        const index = NodeIndex.open(db);
        try {
          assert.deepEqual(index.search("upscaler").map((h) => h.id)[0], "tiny-pack");
          assert.ok(index.search("SAMLoader").some((h) => h.id === "comfyui-impact-pack"));
        } finally {
          index.close();
        }
        assert.equal(loadResolver(join(dir, "missing.db")), null);
      });
    } finally {
      await server.close();
    }
  },
);

sharedDataTest("node index: registry down keeps the map; a missing --from file is an error", async () => {
  await withTempDir(async (dir) => {
    const db = join(dir, "node_index.db");
    const dead = await deadUrl();
    const result = await updateNodeIndex(db, {
      registry: new RegistryClient({ baseUrl: dead, retryBaseMs: 1, retries: 1 }),
      from: MAP,
      defaultMapUrl: dead,
    });
    assert.equal(result.registryNodes, null);
    assert.match(result.warnings[0], /registry skipped/);
    assert.ok(result.mapClasses! > 0);
    await assert.rejects(
      updateNodeIndex(db, { registry: null, from: join(dir, "nope.json"), defaultMapUrl: dead }),
      (e) => e instanceof CdError && e.code === "NODE_MAP_NOT_FOUND",
    );
  });
});
