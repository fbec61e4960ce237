import assert from "node:assert/strict";
import { join } from "node:path";
import { ApiCache } from "../../providers/nodes/api_cache.ts";
import { RegistryClient } from "../../providers/nodes/registry.ts";
import { deadUrl, type FixtureNode, startRegistryServer } from "../../fixtures/registry_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { CdError } from "../../lib/errors.ts";

const NODES: FixtureNode[] = [
  {
    id: "comfyui-impact-pack",
    name: "ComfyUI Impact Pack",
    downloads: 900,
    versions: [
      { version: "8.1.0", pack: { classes: ["SAMLoader", "DetailerForEach"] } },
      { version: "8.0.0", status: "NodeVersionStatusBanned", status_reason: "malware" },
      { version: "7.0.0" },
    ],
  },
  { id: "comfyui-impact-subpack", versions: [{ version: "1.0.0" }] },
  { id: "was-node-suite", versions: [{ version: "3.0.0", pack: { classes: ["Image Blend"] } }] },
  { id: "banned-node", status: "NodeStatusBanned", versions: [{ version: "1.0.0" }] },
  ...Array.from({ length: 7 }, (_, i) => ({ id: `filler-${i}`, versions: [{ version: "0.1.0" }] })),
];

async function withRegistry(
  fn: (url: string, server: Awaited<ReturnType<typeof startRegistryServer>>) => Promise<void>,
  opts: { maxPageSize?: number } = {},
) {
  const server = await startRegistryServer(NODES, opts);
  try {
    await fn(server.url, server);
  } finally {
    await server.close();
  }
}

async function rejectsCode(p: Promise<unknown>, code: string, message?: RegExp): Promise<CdError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof CdError, `expected CdError, got ${e}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

Deno.test("registry: node, versions and one version with its downloadUrl; never /install", async () => {
  await withRegistry(async (url, server) => {
    const c = new RegistryClient({ baseUrl: url, retryBaseMs: 5 });
    const node = await c.getNode("comfyui-impact-pack");
    assert.equal(node.latest_version?.version, "8.1.0");
    assert.equal((await c.listVersions("comfyui-impact-pack")).length, 3);
    const v = await c.getVersion("comfyui-impact-pack", "7.0.0");
    assert.equal(v.downloadUrl, `${url}/dl/comfyui-impact-pack/7.0.0.zip`);
    assert.ok(!server.requests.some((r) => r.includes("/install")));
  });
});

Deno.test("registry: a differently-cased id follows the 302 to the normalised node", async () => {
  await withRegistry(async (url) => {
    const node = await new RegistryClient({ baseUrl: url }).getNode("ComfyUI_Impact_Pack");
    assert.equal(node.id, "comfyui-impact-pack");
  });
});

Deno.test("registry: unknown id -> did you mean, unknown version -> the available ones", async () => {
  await withRegistry(async (url) => {
    const c = new RegistryClient({ baseUrl: url, retryBaseMs: 5 });
    await rejectsCode(
      c.getNode("comfyui-impact-pak"),
      "REGISTRY_NODE_NOT_FOUND",
      /no node 'comfyui-impact-pak' in the ComfyUI Registry; did you mean 'comfyui-impact-pack'/,
    );
    const e = await rejectsCode(c.getVersion("comfyui-impact-pack", "9.9.9"), "REGISTRY_VERSION_NOT_FOUND");
    assert.match(e.hint ?? "", /8\.1\.0, 7\.0\.0/);
    assert.doesNotMatch(e.hint ?? "", /8\.0\.0/, "banned versions are not offered");
  });
});

Deno.test("registry: banned node and banned version are refused with the reason", async () => {
  await withRegistry(async (url) => {
    const c = new RegistryClient({ baseUrl: url });
    await rejectsCode(c.getNode("banned-node"), "REGISTRY_NODE_UNAVAILABLE", /banned/);
    await rejectsCode(
      c.getVersion("comfyui-impact-pack", "8.0.0"),
      "REGISTRY_VERSION_UNAVAILABLE",
      /8\.0\.0 of node 'comfyui-impact-pack' is banned.*malware/,
    );
  });
});

Deno.test("registry: 500s then OK is retried; 500s forever is a clear error", async () => {
  await withRegistry(async (url, server) => {
    const c = new RegistryClient({ baseUrl: url, retryBaseMs: 5, retries: 3 });
    server.failNext(2, 500);
    assert.equal((await c.getNode("was-node-suite")).id, "was-node-suite");
    server.failNext(1, 429);
    assert.equal((await c.getNode("was-node-suite")).id, "was-node-suite");
    server.failNext(10, 503);
    await rejectsCode(c.getNode("was-node-suite"), "HTTP_SERVER_ERROR", /4 attempts: HTTP 503/);
  });
});

Deno.test("registry: down -> unreachable error with a hint", async () => {
  const c = new RegistryClient({ baseUrl: await deadUrl(), retryBaseMs: 5, retries: 1 });
  const e = await rejectsCode(c.getNode("x"), "HTTP_UNREACHABLE", /ComfyUI Registry/);
  assert.match(e.hint ?? "", /COMFYDOCK_REGISTRY_URL/);
});

Deno.test("registry: paged listing follows the served (clamped) page size", async () => {
  await withRegistry(async (url, server) => {
    const all = await new RegistryClient({ baseUrl: url }).listAllNodes();
    // The client asks for 100 per page; the server clamps to 3 and says so: all 10 visible nodes arrive.
    assert.deepEqual(all.map((n) => n.id).sort(), NODES.filter((n) => !n.status).map((n) => n.id).sort());
    assert.equal(server.requests.filter((r) => r.startsWith("GET /nodes?")).length, 4);
  }, { maxPageSize: 3 });
});

Deno.test("registry: search, comfy-nodes, class -> node, bulk", async () => {
  await withRegistry(async (url) => {
    const c = new RegistryClient({ baseUrl: url });
    assert.deepEqual((await c.search("impact")).nodes.map((n) => n.id), [
      "comfyui-impact-pack",
      "comfyui-impact-subpack",
    ]);
    assert.deepEqual(await c.listComfyNodes("comfyui-impact-pack", "8.1.0"), [
      "SAMLoader",
      "DetailerForEach",
    ]);
    assert.equal((await c.nodeForClass("Image Blend"))?.id, "was-node-suite");
    assert.equal(await c.nodeForClass("NoSuchClass"), null);
    const bulk = await c.bulkVersions([
      { node_id: "was-node-suite", version: "3.0.0" },
      { node_id: "was-node-suite", version: "0.0.1" },
    ]);
    assert.deepEqual(bulk.map((b) => b.status), ["success", "not_found"]);
    assert.ok(bulk[0].node_version?.downloadUrl);
  });
});

Deno.test("registry: replies are cached in api_cache.db; --refresh bypasses the cache", async () => {
  await withTempDir(async (dir) => {
    await withRegistry(async (url, server) => {
      const cache = new ApiCache(join(dir, "api_cache.db"));
      try {
        await new RegistryClient({ baseUrl: url, cache }).getNode("was-node-suite");
        await new RegistryClient({ baseUrl: url, cache }).getNode("was-node-suite");
        assert.equal(server.requests.length, 1);
        await new RegistryClient({ baseUrl: url, cache, refresh: true }).getNode("was-node-suite");
        assert.equal(server.requests.length, 2);
      } finally {
        cache.close();
      }
    });
  });
});

Deno.test("registry: 403 (banned) is said as such, not as an unknown node", async () => {
  await withRegistry(async (url, server) => {
    server.failNext(1, 403);
    const e = await rejectsCode(
      new RegistryClient({ baseUrl: url }).listVersions("was-node-suite"),
      "REGISTRY_FORBIDDEN",
    );
    assert.match(e.hint ?? "", /banned/);
  });
});
