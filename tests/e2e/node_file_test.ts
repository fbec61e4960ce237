/**
 * Single-file nodes (`custom_nodes/x.py`) are first-class (issue #20): observed, captured with their sha256
 * and their bytes (kept in `.cec/nodes/`), drift-checked, restored; `node add URL.py` pins a file served over
 * HTTP (how ComfyUI-Manager installs them) by url + sha256. The CLI as a user types it, a real environment,
 * an HTTP server on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { parse } from "smol-toml";
import { cli } from "../../fixtures/cli.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { deadUrl } from "../../fixtures/registry_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { exists, listFiles } from "../../lib/fsx.ts";
import { run as proc } from "../../lib/proc.ts";

const TWEAK = 'class Tweak:\n    pass\n\nNODE_CLASS_MAPPINGS = {"Tweak": Tweak}\n';
const sha = (s: string) => createHash("sha256").update(s).digest("hex");

type Nodes = Record<string, Record<string, unknown>>;

Deno.test("single-file node: observed, captured with its bytes, drift-checked, restored", async () => {
  await withTempDir(async (dir) => {
    const { paths, env } = await createRealEnv(join(dir, "home"), "e");
    const run = (...args: string[]) => cli(args, { env });
    const nodes = async () =>
      (parse(await Deno.readTextFile(paths.pyproject)) as { tool: { comfydock: { nodes: Nodes } } }).tool
        .comfydock.nodes;
    // ComfyUI's own custom_nodes/websocket_image_save.py is ComfyUI's file: a fresh environment is clean.
    assert.ok(await exists(join(paths.customNodes, "websocket_image_save.py")));
    assert.equal((await run("plan", "--detailed-exitcode")).code, 0);

    // A file dropped in by hand is seen (it was invisible), and capture records it.
    const file = join(paths.customNodes, "my_tweak.py");
    await Deno.writeTextFile(file, TWEAK);
    let r = await run("plan", "--detailed-exitcode");
    assert.equal(r.code, 2);
    assert.match(
      r.stdout,
      /- node\.my_tweak will be removed: not in \.cec \(installed by hand\); run 'comfydock capture'/,
    );
    r = await run("capture");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /captured node my_tweak/);
    assert.deepEqual({ ...(await nodes()).my_tweak }, {
      source: "file",
      filename: "my_tweak.py",
      sha256: sha(TWEAK),
    });
    assert.equal(
      await Deno.readTextFile(join(paths.cec, "nodes", "my_tweak.py")),
      TWEAK,
      "the bytes are in .cec",
    );
    const committed = await proc("git", ["-C", paths.cec, "show", "--name-only", "--format=", "HEAD"]);
    assert.match(committed.stdout, /nodes\/my_tweak\.py/);
    assert.equal((await run("plan", "--detailed-exitcode")).code, 0);

    // Edited by hand: drift; apply restores the pinned bytes and keeps the edited file in the trash.
    await Deno.writeTextFile(file, TWEAK + "# hack\n");
    r = await run("plan");
    assert.match(
      r.stdout,
      /~ node\.my_tweak will be updated: content differs from the pin .*changed by hand/,
    );
    r = await run("status", "--check");
    assert.equal(r.code, 2);
    r = await run("apply", "--yes");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await Deno.readTextFile(file), TWEAK);
    const trash = /kept in (\S+)/.exec(r.stdout)![1];
    const kept = (await listFiles(trash)).find((f) => f.endsWith("my_tweak.py"))!;
    assert.equal(await Deno.readTextFile(join(trash, kept)), TWEAK + "# hack\n");

    // Gone, with the workspace cache gone too (another machine): rebuilt from .cec alone.
    await Deno.remove(file);
    await Deno.remove(paths.workspace.nodeStore, { recursive: true }).catch(() => {});
    r = await run("apply", "--yes");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await Deno.readTextFile(file), TWEAK);

    // A .cec copy that does not match its pin is refused by validate and by apply, naming both hashes.
    await Deno.writeTextFile(join(paths.cec, "nodes", "my_tweak.py"), "tampered\n");
    r = await run("validate", "--offline");
    assert.equal(r.code, 1);
    assert.match(
      r.stdout + r.stderr,
      new RegExp(`nodes\\.my_tweak\\.sha256: \\.cec/nodes/my_tweak\\.py has sha256 ${sha("tampered\n")}`),
    );
    await Deno.remove(file);
    await Deno.remove(paths.workspace.nodeStore, { recursive: true }).catch(() => {});
    r = await run("apply", "--yes");
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`has sha256 ${sha("tampered\n")}, but \\.cec/pyproject\\.toml pins ${sha(TWEAK)}`),
    );
    assert.equal(await exists(file), false, "nothing unverified was installed");

    // Removing the node removes its copy from .cec in the same commit.
    await proc("git", ["-C", paths.cec, "checkout", "--", "nodes/my_tweak.py"]);
    r = await run("node", "remove", "my_tweak", "--yes");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await exists(join(paths.cec, "nodes", "my_tweak.py")), false);
    const last = await proc("git", ["-C", paths.cec, "show", "--name-status", "--format=", "HEAD"]);
    assert.match(last.stdout, /D\s+nodes\/my_tweak\.py/);
  });
});

Deno.test("single-file node: node add URL.py pins url + sha256; reinstall downloads and verifies", async () => {
  let body = TWEAK;
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    (req) =>
      new URL(req.url).pathname === "/raw/Cool_Node.py"
        ? new Response(body)
        : new Response("no", { status: 404 }),
  );
  try {
    await withTempDir(async (dir) => {
      const { paths, env: base } = await createRealEnv(join(dir, "home"), "e");
      const env = { ...base, COMFYDOCK_REGISTRY_URL: await deadUrl(), COMFYDOCK_HTTP_RETRY_BASE_MS: "1" };
      const run = (...args: string[]) => cli(args, { env });
      const url = `http://127.0.0.1:${server.addr.port}/raw/Cool_Node.py`;
      let r = await run("node", "add", url, "--yes");
      assert.equal(r.code, 0, r.stderr);
      const text = await Deno.readTextFile(paths.pyproject);
      const spec = (parse(text) as { tool: { comfydock: { nodes: Nodes } } }).tool.comfydock.nodes.cool_node;
      assert.deepEqual({ ...spec }, { source: "file", filename: "Cool_Node.py", sha256: sha(TWEAK), url });
      assert.equal(await Deno.readTextFile(join(paths.customNodes, "Cool_Node.py")), TWEAK);
      assert.equal(await exists(join(paths.cec, "nodes")), false, "a url is enough: no copy in .cec");

      // The served file changes: a reinstall refuses it (the pin is the content, not the url).
      await Deno.remove(join(paths.customNodes, "Cool_Node.py"));
      await Deno.remove(paths.workspace.nodeStore, { recursive: true });
      body = TWEAK + "# new upstream\n";
      r = await run("apply", "--yes");
      assert.equal(r.code, 1);
      assert.match(r.stderr, /NODE_FILE_HASH_MISMATCH|has sha256 .* but \.cec\/pyproject\.toml pins/);
      body = TWEAK;
      r = await run("apply", "--yes");
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await Deno.readTextFile(join(paths.customNodes, "Cool_Node.py")), TWEAK);

      r = await run("node", "remove", "cool_node", "--yes");
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await exists(join(paths.customNodes, "Cool_Node.py")), false);
    });
  } finally {
    await server.shutdown();
  }
});
