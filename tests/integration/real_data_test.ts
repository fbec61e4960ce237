/**
 * The harness that brings real data (fixtures/real_data.ts), against a package index on 127.0.0.1 serving a
 * wheel built here: fetched once with its sha256 checked, read from the cache afterwards with no network,
 * and every failure a CdError that says what to do.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { isCdError } from "../../lib/errors.ts";
import { sha256Hex } from "../../lib/fsx.ts";
import { fetchWheel, type PinnedWheel } from "../../fixtures/real_data.ts";
import { servePyIndex } from "../../fixtures/pyindex.ts";
import { deadUrl } from "../../fixtures/registry_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { ownUvIndex, useLocalUv } from "../../fixtures/tools.ts";
import { buildWheelhouse } from "../../fixtures/wheels.ts";

await useLocalUv();
ownUvIndex();

/** A wheel of `demo-data` in a wheelhouse, and its pin. */
async function demoWheel(dir: string): Promise<{ wheels: string; pin: PinnedWheel }> {
  const wheels = await buildWheelhouse(join(dir, "wheels"), [{ name: "demo-data", version: "1.0.0" }]);
  const bytes = await Deno.readFile(join(wheels, "demo_data-1.0.0-py3-none-any.whl"));
  return { wheels, pin: { name: "demo-data", version: "1.0.0", sha256: sha256Hex(bytes) } };
}

const FILE = "demo_data/__init__.py";

Deno.test("real data: fetched once with its sha256 checked, then read from the cache with no index", async () => {
  await withTempDir(async (dir) => {
    const { wheels, pin } = await demoWheel(dir);
    const cacheRoot = join(dir, "cache");
    const server = await servePyIndex({ simple: wheels });
    let first: string;
    try {
      const env = { UV_DEFAULT_INDEX: `${server.url}/simple` };
      // Two test files starting together: both fetch, one copy lands, both read it.
      const both = await Promise.all([1, 2].map(() => fetchWheel(pin, [FILE], { cacheRoot, env })));
      first = both[0];
      assert.equal(both[1], first);
      assert.ok(server.requests.some((r) => r.endsWith("/demo_data-1.0.0-py3-none-any.whl")));
    } finally {
      await server.close();
    }
    assert.equal(await Deno.readTextFile(join(first, FILE)), `__version__ = "1.0.0"\n`);
    assert.deepEqual([...Deno.readDirSync(cacheRoot)].map((e) => e.name), [
      `demo-data-1.0.0-${pin.sha256.slice(0, 12)}`,
    ], "one folder per pin, no leftovers of the fetch");

    // Offline, the index gone: the cache answers and uv is never asked.
    const offline = { UV_DEFAULT_INDEX: `${await deadUrl()}/simple`, UV_OFFLINE: "1" };
    assert.equal(await fetchWheel(pin, [FILE], { cacheRoot, env: offline }), first);
  });
});

Deno.test("real data: a sha256 that does not match the wheel fails naming the pin; nothing is cached", async () => {
  await withTempDir(async (dir) => {
    const { wheels, pin } = await demoWheel(dir);
    const cacheRoot = join(dir, "cache");
    const server = await servePyIndex({ simple: wheels });
    try {
      const env = { UV_DEFAULT_INDEX: `${server.url}/simple` };
      await assert.rejects(
        fetchWheel({ ...pin, sha256: "0".repeat(64) }, [FILE], { cacheRoot, env }),
        (e) => {
          assert.ok(isCdError(e) && e.code === "TEST_DATA_HASH_MISMATCH", String(e));
          assert.match(e.message, /demo-data 1\.0\.0: the wheel's sha256 is not 0{64}/);
          assert.match(e.hint ?? "", /fixtures\/real_data\.ts/);
          return true;
        },
      );
      // A path the package does not have: the pin is wrong, said at fetch time.
      await assert.rejects(fetchWheel(pin, ["demo_data/missing.json"], { cacheRoot, env }), (e) => {
        assert.ok(isCdError(e) && e.code === "TEST_DATA_MISSING_FILE", String(e));
        assert.match(e.message, /demo-data 1\.0\.0 has no 'demo_data\/missing\.json'/);
        return true;
      });
    } finally {
      await server.close();
    }
    assert.deepEqual([...Deno.readDirSync(cacheRoot)], []);
  });
});

Deno.test("real data: an empty cache and no index fails with how to fill the cache", async () => {
  await withTempDir(async (dir) => {
    const { pin } = await demoWheel(dir);
    const cacheRoot = join(dir, "cache");
    // No retries: uv would otherwise back off for ~10 s before giving up on a closed port.
    const env = { UV_DEFAULT_INDEX: `${await deadUrl()}/simple`, UV_HTTP_RETRIES: "0" };
    await assert.rejects(fetchWheel(pin, [FILE], { cacheRoot, env }), (e) => {
      assert.ok(isCdError(e) && e.code === "TEST_DATA_UNAVAILABLE", String(e));
      assert.ok(e.message.startsWith(`demo-data 1.0.0 is not cached in ${cacheRoot}`), e.message);
      assert.match(e.hint ?? "", /run 'deno task test-data' once with access to PyPI/);
      return true;
    });
    assert.deepEqual([...Deno.readDirSync(cacheRoot)], []);
  });
});
