/**
 * The custom-node features (git-node drift, enable/disable with `.disabled/`, `node update --ref`,
 * single-file nodes kept in `.cec/nodes/`, `node add URL.py`) meet hostile input: a node checkout whose own
 * git config names commands, folders linked outside the environment, URLs that carry credentials, servers
 * that send too much or drip. Nothing runs, nothing outside moves, `.cec` is left as it was.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli } from "../../fixtures/cli.ts";
import { assertNoCanary, poisonCheckout } from "../../fixtures/hostile.ts";
import { readTree } from "../../fixtures/bundle_archives.ts";
import { makeNodeRepo } from "../../fixtures/node_git.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { deadUrl } from "../../fixtures/registry_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { CdError } from "../../lib/errors.ts";
import { exists } from "../../lib/fsx.ts";
import { DEFAULT_NET } from "../../lib/http.ts";
import { run } from "../../lib/proc.ts";
import { downloadNodeFile } from "../../providers/nodes/file_node.ts";

const TWEAK = "NODE_CLASS_MAPPINGS = {}\n";

/** The git history of `.cec` and its status: what a refused command must leave as it was. */
async function cecState(cec: string): Promise<string> {
  const log = await run("git", ["-C", cec, "log", "--format=%H"]);
  const status = await run("git", ["-C", cec, "status", "--porcelain"]);
  return log.stdout + status.stdout;
}

Deno.test("hostile nodes: a git node whose checkout names commands in its config runs nothing (drift, disable, enable, update --ref, remove)", async () => {
  await withTempDir(async (dir) => {
    const { paths, env: base } = await createRealEnv(join(dir, "home"), "e");
    const env = { ...base, COMFYDOCK_REGISTRY_URL: await deadUrl(), COMFYDOCK_HTTP_RETRY_BASE_MS: "1" };
    const repo = await makeNodeRepo(dir, "omega-pack", [{ tag: "v1" }, { tag: "v2" }]);
    let r = await cli(["node", "add", `${repo.url}@v1`, "--yes"], { env });
    assert.equal(r.code, 0, r.stderr);
    const canary = join(dir, "canary");
    await poisonCheckout(join(paths.customNodes, "omega-pack"), canary);

    // The poisoned checkout has uncommitted changes (.gitattributes): drift, and kept by every apply.
    r = await cli(["plan"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /~ node\.omega-pack .*changed by hand/);
    await assertNoCanary(canary, "plan");
    const steps: [string[], number, RegExp][] = [
      [["status"], 0, /node\.omega-pack +1 file changed by hand/],
      [["node", "list"], 0, /drift: 1 file changed by hand/],
      [["node", "disable", "omega-pack", "--yes"], 0, /left as it is: .*uncommitted changes/],
      [["node", "enable", "omega-pack", "--yes"], 0, /left as it is: .*uncommitted changes/],
      [["node", "update", "omega-pack", "--ref", "v2", "--yes"], 0, /left as it is: .*uncommitted changes/],
      [["apply", "--yes"], 0, /left as it is: .*uncommitted changes/],
      [["node", "remove", "omega-pack", "--yes"], 1, /has uncommitted changes .*\.cec was left as it is/],
    ];
    for (const [args, code, said] of steps) {
      r = await cli(args, { env });
      assert.equal(r.code, code, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout + r.stderr, said, args.join(" "));
      await assertNoCanary(canary, args.join(" "));
    }
    // --force replaces the edited checkout: it goes to the trash whole, git never runs in it.
    r = await cli(["apply", "--yes", "--force"], { env });
    assert.equal(r.code, 0, r.stderr);
    await assertNoCanary(canary, "apply --force");
    const head = await run("git", ["-C", join(paths.customNodes, "omega-pack"), "rev-parse", "HEAD"]);
    assert.equal(head.stdout.trim(), repo.commits[1].sha, "the checkout is at the ref update pinned");
  });
});

Deno.test("hostile nodes: custom_nodes/.disabled linked outside the environment is never written through", async () => {
  await withTempDir(async (dir) => {
    const { paths, env: base } = await createRealEnv(join(dir, "home"), "e");
    const env = { ...base, COMFYDOCK_REGISTRY_URL: await deadUrl(), COMFYDOCK_HTTP_RETRY_BASE_MS: "1" };
    const repo = await makeNodeRepo(dir, "omega-pack", [{ tag: "v1" }]);
    let r = await cli(["node", "add", `${repo.url}@v1`, "--yes"], { env });
    assert.equal(r.code, 0, r.stderr);
    const victim = join(dir, "victim");
    await Deno.mkdir(join(victim, "precious"), { recursive: true });
    await Deno.writeTextFile(join(victim, "precious", "data.txt"), "the user's\n");
    await Deno.writeTextFile(join(victim, "mine.py"), TWEAK);
    const before = await readTree(victim);
    // What a ComfyUI checkout from a hostile URL could contain.
    await Deno.symlink(victim, join(paths.customNodes, ".disabled"));
    const cec = await cecState(paths.cec);

    r = await cli(["node", "disable", "omega-pack", "--yes"], { env });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /refusing .*\.disabled.*is outside/);
    assert.match(r.stderr, /rolled back/);
    // What is behind the link is not taken for disabled nodes (which a plan would remove as unmanaged).
    r = await cli(["plan", "--detailed-exitcode"], { env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(await readTree(victim), before, "the folder outside is untouched");
    assert.equal(await cecState(paths.cec), cec, ".cec is unchanged");
    assert.equal((await Deno.lstat(join(paths.customNodes, "omega-pack"))).isDirectory, true);
  });
});

Deno.test("hostile nodes: .cec/nodes linked outside the environment: capture does not write through it, apply does not read through it", async () => {
  await withTempDir(async (dir) => {
    const { paths, env } = await createRealEnv(join(dir, "home"), "e");
    const victim = join(dir, "victim");
    await Deno.mkdir(victim);
    await Deno.writeTextFile(join(victim, "precious.txt"), "the user's\n");
    const before = await readTree(victim);
    await Deno.symlink(victim, join(paths.cec, "nodes"));
    const cec = await cecState(paths.cec);
    await Deno.writeTextFile(join(paths.customNodes, "my_tweak.py"), TWEAK);

    let r = await cli(["capture", "--yes"], { env });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /refusing a \.cec file: .*nodes\/my_tweak\.py .*is outside/);
    assert.deepEqual(await readTree(victim), before, "nothing was written outside");
    assert.equal(await cecState(paths.cec), cec, ".cec is unchanged");

    // A file node without url whose copy is reached through the link: refused, not read.
    await Deno.remove(join(paths.customNodes, "my_tweak.py"));
    const sha = (await run("sha256sum", [join(victim, "precious.txt")])).stdout.split(" ")[0];
    await Deno.writeTextFile(
      paths.pyproject,
      (await Deno.readTextFile(paths.pyproject)) +
        `\n[tool.comfydock.nodes.precious]\nsource = "file"\nfilename = "precious.txt.py"\nsha256 = "${sha}"\n`,
    );
    await Deno.copyFile(join(victim, "precious.txt"), join(victim, "precious.txt.py"));
    r = await cli(["apply", "--yes"], { env });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /refusing .*nodes\/precious\.txt\.py .*is outside/);
    assert.equal(
      (await Array.fromAsync(Deno.readDir(paths.customNodes))).some((e) => e.name.startsWith("precious")),
      false,
      "nothing was installed from outside",
    );
  });
});

Deno.test("hostile nodes: node add URL.py refuses credentials in the URL, an oversized body and a drip; .cec unchanged", async () => {
  const big = "#".repeat(100 * 1024);
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/big.py") return new Response(big);
    if (path === "/drip.py") {
      let n = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(ctrl) {
          await new Promise((r) => setTimeout(r, 2000));
          if (n++ > 20) return ctrl.close();
          ctrl.enqueue(new Uint8Array([35]));
        },
      });
      return new Response(body);
    }
    return new Response(TWEAK);
  });
  try {
    await withTempDir(async (dir) => {
      const { paths, env: base } = await createRealEnv(join(dir, "home"), "e");
      const env = {
        ...base,
        COMFYDOCK_REGISTRY_URL: await deadUrl(),
        COMFYDOCK_HTTP_RETRY_BASE_MS: "1",
        COMFYDOCK_DOWNLOAD_MAX_BYTES: String(64 * 1024),
        COMFYDOCK_DOWNLOAD_STALL_SECONDS: "1",
      };
      const at = `http://127.0.0.1:${server.addr.port}`;
      const cec = await cecState(paths.cec);
      const pyproject = await Deno.readTextFile(paths.pyproject);

      for (
        const url of [`http://user:s3cret@127.0.0.1:${server.addr.port}/x.py`, `${at}/x.py?token=s3cret`]
      ) {
        const r = await cli(["node", "add", url, "--yes"], { env });
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.stderr, /the URL carries credentials .*would be committed to \.cec/);
        assert.doesNotMatch(r.stdout + r.stderr, /s3cret/);
      }
      let r = await cli(["node", "add", `${at}/big.py`, "--yes"], { env });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /big\.py sent more than 65536 bytes; the download was stopped/);
      const t0 = performance.now();
      r = await cli(["node", "add", `${at}/drip.py`, "--yes"], { env });
      const seconds = (performance.now() - t0) / 1000;
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /the server is too slow \(\d+ bytes in the last 1 s/);
      assert.ok(seconds < 15, `ended after ${seconds.toFixed(1)} s`);

      assert.equal(await Deno.readTextFile(paths.pyproject), pyproject);
      assert.equal(await cecState(paths.cec), cec, ".cec is unchanged");
      const installed = (await Array.fromAsync(Deno.readDir(paths.customNodes))).map((e) => e.name);
      assert.deepEqual(installed.filter((n) => /^(x|big|drip)\.py$/.test(n)), []);
    });
  } finally {
    await server.shutdown();
  }
});

Deno.test("hostile nodes: a node file is source code: more than 16 MiB is cut whatever the download bound", async () => {
  const body = new Uint8Array(16 * 1024 * 1024 + 1).fill(35);
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, () => new Response(body));
  try {
    await withTempDir(async (dir) => {
      const url = `http://127.0.0.1:${server.addr.port}/huge.py`;
      await assert.rejects(
        downloadNodeFile(join(dir, "store"), url, "node 'huge'", DEFAULT_NET),
        (e) => e instanceof CdError && /sent more than 16777216 bytes/.test(e.message),
      );
      assert.equal(await exists(join(dir, "store")), false, "nothing was stored");
    });
  } finally {
    await server.shutdown();
  }
});
