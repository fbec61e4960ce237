/**
 * The network settings of README "Behind a mirror or firewall" and "Configuration" as a user sets them,
 * through the CLI against a local host: COMFYDOCK_NODE_MAP_URL and `node index update --from URL` (where the
 * node map comes from), COMFYDOCK_HTTP_TIMEOUT_MS (a server that accepts and never answers ends each API
 * call attempt after that long, with an error naming it, instead of hanging the command).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli } from "../../fixtures/cli.ts";
import { ModelServer } from "../../fixtures/model_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { loadResolver } from "../../providers/nodes/node_index.ts";
import { workspacePaths } from "../../reconcile/paths.ts";

const encode = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

/** A workspace (`comfydock init`) at `<dir>/ws`, $HOME at `dir`: what each test's CLI runs act on. */
async function workspace(dir: string) {
  const env = { COMFYDOCK_HOME: join(dir, "ws"), HOME: dir, COMFYDOCK_HTTP_RETRY_BASE_MS: "5" };
  const r = await cli(["init"], { env });
  assert.equal(r.code, 0, r.stderr);
  return { env, ws: workspacePaths(env.COMFYDOCK_HOME) };
}

/** The packs the node index says provide `classType` (after `node index update`). */
function packsFor(db: string, classType: string): string[] {
  return loadResolver(db)?.entriesFor(classType).map((e) => e.pack) ?? [];
}

Deno.test("the node map comes from COMFYDOCK_NODE_MAP_URL, or from --from URL", async () => {
  await using server = ModelServer.start();
  // Two extension-node-map.json files (ComfyUI-Manager's shape: repository -> [classes, meta]).
  const fromSetting = server.file(
    "/mirror/extension-node-map.json",
    encode({ "https://github.com/fixture/widget-nodes": [["WidgetSharpen"], { title_aux: "Widget Nodes" }] }),
  );
  const fromFlag = server.file(
    "/other/map.json",
    encode({ "https://github.com/fixture/gadget-nodes": [["GadgetBlend"], { title_aux: "Gadget Nodes" }] }),
  );
  await withTempDir(async (dir) => {
    const { env, ws } = await workspace(dir);
    let r = await cli(["node", "index", "update", "--no-registry"], {
      env: { ...env, COMFYDOCK_NODE_MAP_URL: fromSetting },
    });
    assert.equal(r.code, 0, r.stderr);
    // The default (GitHub) failing would only be a warning: the class must come from the local map.
    assert.doesNotMatch(r.stderr, /warning/);
    assert.match(r.stdout, /node map: 1 node classes/);
    assert.equal(server.count("/mirror/extension-node-map.json"), 1);
    assert.deepEqual(packsFor(ws.nodeIndexDb, "WidgetSharpen"), ["https://github.com/fixture/widget-nodes"]);

    // --from URL wins over the setting and replaces the map the index had.
    r = await cli(["node", "index", "update", "--no-registry", "--from", fromFlag], {
      env: { ...env, COMFYDOCK_NODE_MAP_URL: fromSetting },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(server.count("/other/map.json"), 1);
    assert.equal(server.count("/mirror/extension-node-map.json"), 1, "the setting's map is not read again");
    assert.deepEqual(packsFor(ws.nodeIndexDb, "GadgetBlend"), ["https://github.com/fixture/gadget-nodes"]);
    assert.deepEqual(packsFor(ws.nodeIndexDb, "WidgetSharpen"), []);
  });
});

Deno.test("COMFYDOCK_HTTP_TIMEOUT_MS ends each attempt at a server that never answers, with an error naming it", async () => {
  await using server = ModelServer.start();
  // The registry's node endpoint: the connection is accepted, the request read, and no answer ever comes.
  server.file("/nodes/widget-nodes", encode({}));
  server.fault("/nodes/widget-nodes", { kind: "silent" });
  // A hang guard, not a speed check: closing releases the held requests, which then end in another error.
  const guard = setTimeout(() => server.close(), 30_000);
  try {
    await withTempDir(async (dir) => {
      const { env } = await workspace(dir);
      const r = await cli(["node", "show", "widget-nodes", "--refresh"], {
        env: { ...env, COMFYDOCK_REGISTRY_URL: server.url, COMFYDOCK_HTTP_TIMEOUT_MS: "300" },
      });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(
        r.stderr,
        /the ComfyUI Registry \(http:\/\/127\.0\.0\.1:\d+\) failed after 4 attempts: no answer within 300 ms/,
      );
      // The server took the requests: it was its silence, not a refused connection, that ran out the clock.
      assert.ok(server.count("/nodes/widget-nodes") >= 1);
    });
  } finally {
    clearTimeout(guard);
  }
});
