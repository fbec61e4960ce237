/**
 * Registry packs built to hurt, through the CLI: a zip bomb (honest headers, ~1000x expansion), a pack that
 * ships our own `.comfydock.json`, a pack where a file is also a folder. Clear errors at `node add`, nothing
 * extracted, `.cec` unchanged; the marker is ignored so the environment converges.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli } from "../../fixtures/cli.ts";
import { nodePackFiles, zipBomb, zipFiles } from "../../fixtures/node_packs.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { startRegistryServer } from "../../fixtures/registry_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { exists, listFiles } from "../../lib/fsx.ts";

Deno.test("hostile archives: a zip bomb, a file that is also a folder: refused at node add; a shipped marker is ignored", async () => {
  const bomb = await zipBomb(2, 48 * 1024 * 1024);
  const server = await startRegistryServer([
    { id: "bomb-pack", versions: [{ version: "1.0.0", archive: bomb }] },
    {
      id: "clash-pack",
      versions: [{
        version: "1.0.0",
        archive: zipFiles({ ...nodePackFiles("Clash"), "a": "x", "a/b.py": "y" }),
      }],
    },
    {
      id: "marker-pack",
      versions: [{
        version: "1.0.0",
        archive: zipFiles({
          ...nodePackFiles("Marker"),
          ".comfydock.json": '{"format":1,"id":"someone-else"}',
        }),
      }],
    },
  ]);
  try {
    await withTempDir(async (dir) => {
      const { paths, env: base } = await createRealEnv(join(dir, "home"), "e");
      const env = { ...base, COMFYDOCK_REGISTRY_URL: server.url, COMFYDOCK_HTTP_RETRY_BASE_MS: "5" };
      const before = await Deno.readTextFile(paths.pyproject);
      const nodesBefore = await listFiles(paths.customNodes);

      let r = await cli(["node", "add", "bomb-pack", "--yes"], { env });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(
        r.stderr,
        /node 'bomb-pack' 1\.0\.0: the archive expands \d+x, more than 200x \(zip-bomb-like archive\)/,
      );
      assert.doesNotMatch(
        r.stderr,
        /writes outside its folder|contains links/,
        "the refusal names the real reason",
      );

      r = await cli(["node", "add", "clash-pack", "--yes"], { env });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /'a' is a file and also the folder of 'a\/b\.py'/);

      assert.equal(await Deno.readTextFile(paths.pyproject), before, ".cec unchanged");
      assert.deepEqual(await listFiles(paths.customNodes), nodesBefore, "nothing extracted");

      r = await cli(["node", "add", "marker-pack", "--yes"], { env });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const marker = JSON.parse(
        await Deno.readTextFile(join(paths.customNodes, "marker-pack", ".comfydock.json")),
      );
      assert.equal(marker.id, "marker-pack", "our marker, not the pack's");
      assert.equal(".comfydock.json" in marker.files, false);
      r = await cli(["plan", "--detailed-exitcode"], { env });
      assert.equal(r.code, 0, `the environment converged:\n${r.stdout}${r.stderr}`);
      assert.equal(await exists(join(paths.customNodes, "bomb-pack")), false);
    });
  } finally {
    await server.close();
  }
});
