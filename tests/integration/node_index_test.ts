import assert from "node:assert/strict";
import { join } from "node:path";
import { loadResolver, NodeIndex, updateNodeIndex } from "../../providers/nodes/node_index.ts";
import { RegistryClient } from "../../providers/nodes/registry.ts";
import { deadUrl, startRegistryServer } from "../../fixtures/registry_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { CdError } from "../../lib/errors.ts";
import { samePack } from "../../providers/workflows/node_map.ts";
import { realData } from "../../fixtures/real_data.ts";

const MAP = await realData("extensionNodeMap");

/** What the Manager's map says, read here independently of the index: ComfyUI's own types, and the rest. */
function readMap(): { core: Set<string>; custom: Map<string, Set<string>> } {
  const json = JSON.parse(Deno.readTextFileSync(MAP)) as Record<string, [string[], unknown]>;
  const core = new Set<string>();
  const custom = new Map<string, Set<string>>();
  for (const [repo, [types]] of Object.entries(json)) {
    const isComfyUI = /^https:\/\/github\.com\/(comfyanonymous|comfy-org)\/comfyui$/i.test(repo);
    for (const t of types) {
      if (isComfyUI) core.add(t);
      else custom.set(t, (custom.get(t) ?? new Set()).add(repo));
    }
  }
  return { core, custom };
}

Deno.test(
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
        const map = readMap();
        assert.ok(map.core.size > 0 && map.custom.size > 0, "the map lists ComfyUI's types and custom packs");
        assert.equal(result.coreTypes, map.core.size, "core types: the map's ComfyUI entry");
        assert.ok(
          result.mapClasses! >= map.custom.size,
          `${result.mapClasses} rows for ${map.custom.size} types`,
        );

        const resolver = loadResolver(db)!;
        // Every type of the map resolves: ComfyUI's as core; every other one to a pack that lists it, unless
        // ComfyUI or its frontend has a type of that name (those win).
        for (const t of map.core) assert.equal(resolver.resolve(t).kind, "core", t);
        for (const [t, repos] of map.custom) {
          const r = resolver.resolve(t);
          if (r.kind !== "custom") {
            assert.ok(r.kind === "frontend" || resolver.coreTypes.has(t), `${t} is ${r.kind}`);
            continue;
          }
          for (const c of r.candidates) assert.ok([...repos].some((repo) => samePack(c, repo)), `${t}: ${c}`);
          if (!r.ambiguous) assert.ok(r.candidates.includes(r.package!), t);
        }
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

Deno.test("node index: registry down keeps the map; a missing --from file is an error", async () => {
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
