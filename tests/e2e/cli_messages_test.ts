/**
 * Messages a user acts on (issue 21): each names the file, value or URL at fault and says what to do, and
 * none quotes an internal detail (a temp file, a duplicated label, a wrong hint).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli } from "../../fixtures/cli.ts";
import { makeEnvSkeleton } from "../../fixtures/env_skeleton.ts";
import { buildComfyUIRepo } from "../../fixtures/comfyui_repo.ts";
import { ModelServer } from "../../fixtures/model_server.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { run } from "../../lib/proc.ts";
import { envLogPath } from "../../workspace/env_log.ts";
import { workspacePaths } from "../../reconcile/paths.ts";

const NODE = '\n[tool.comfydock.nodes.alpha-nodes]\nsource = "dev"\npath = "/nowhere/alpha-nodes"\n';

Deno.test("plan --target that matches nothing: an error naming the nearest addresses of that kind", async () => {
  await withTempDir(async (root) => {
    await makeEnvSkeleton(root, "e", NODE);
    const env = { COMFYDOCK_HOME: root };
    let r = await cli(["plan", "--target", "node.alpha-nodez"], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: --target node\.alpha-nodez matches no resource of 'e'/);
    assert.match(r.stderr, /hint: did you mean node\.alpha-nodes\?/);
    r = await cli(["plan", "--target", "model.typo"], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /hint: 'e' has no model\.\* resource \(in \.cec or on disk\)/);
    r = await cli(["plan", "--target", "nodes"], { env });
    assert.match(r.stderr, /hint: did you mean node\?/);
    assert.equal((await cli(["plan", "--target", "node"], { env })).code, 0);
  });
});

Deno.test("comfyui update to an untagged commit names it once, not as '2a724d9 (2a724d9)'", async () => {
  await withTempDir(async (dir) => {
    const { env } = await createRealEnv(join(dir, "home"), "e");
    const head = (await run("git", ["-C", join(dir, "fixtures-e", "ComfyUI"), "rev-parse", "HEAD"])).stdout
      .trim();
    const r = await cli(["comfyui", "update", head, "--no-apply"], { env });
    assert.equal(r.code, 0, r.stderr);
    const short = head.slice(0, 7);
    assert.match(
      r.stdout,
      new RegExp(`^ComfyUI v0\\.10\\.0 \\([0-9a-f]{7}\\) -> ${short}; \\.cec committed`, "m"),
    );
    assert.doesNotMatch(r.stdout + r.stderr, /\b([0-9a-f]{7}) \(\1\)/);
  });
});

Deno.test("a corrupt workspace.json is named by every command that reads it", async () => {
  await withTempDir(async (root) => {
    const paths = await makeEnvSkeleton(root, "e");
    const file = paths.workspace.workspaceJson;
    const env = { COMFYDOCK_HOME: root };
    const commands = [
      ["list"],
      ["plan"],
      ["status"],
      ["node", "list"],
      ["model", "scan"],
      ["model", "find", "x"],
      ["config", "list"],
      ["create", "other"],
      ["init"],
      ["use", "e"],
    ];
    for (const text of ["{broken", '{"version": 1, "active_environment": 5}', "null", "[]"]) {
      await Deno.writeTextFile(file, text);
      const results = await Promise.all(commands.map((c) => cli(c, { env })));
      for (const [i, r] of results.entries()) {
        const what = `${commands[i].join(" ")} with workspace.json = ${text}: ${r.stderr}`;
        assert.equal(r.code, 1, what);
        assert.ok(r.stderr.includes(file), what);
        assert.doesNotMatch(r.stderr, /unexpected/, what);
      }
      assert.equal(await Deno.readTextFile(file), text, "never overwritten");
    }
  });
});

Deno.test("a corrupt journal.json is named, with what to do", async () => {
  await withTempDir(async (root) => {
    const paths = await makeEnvSkeleton(root, "e");
    const journal = join(paths.state, "journal.json");
    await Deno.mkdir(paths.state, { recursive: true });
    const env = { COMFYDOCK_HOME: root };
    for (
      const [text, why] of [["{broken", /not valid JSON/], [
        '{"entries": 3}',
        /journal\.json: \w+: Invalid input/,
      ]] as const
    ) {
      await Deno.writeTextFile(journal, text);
      for (const c of [["plan"], ["status"], ["apply", "--yes"], ["repair"]]) {
        const r = await cli(c, { env });
        assert.equal(r.code, 1, r.stderr);
        assert.ok(r.stderr.includes(`error: ${journal}: `), `${c.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, why);
        assert.match(r.stderr, /hint: .*move it away \(mv '.*journal\.json' '.*journal\.json\.bad'\)/);
      }
    }
  });
});

Deno.test("a stale git index.lock: the lock file is named and the hint says how to clear it", async () => {
  await withTempDir(async (root) => {
    const paths = await makeEnvSkeleton(root, "e");
    const lock = join(paths.cec, ".git", "index.lock");
    await Deno.writeTextFile(lock, "");
    await Deno.writeTextFile(paths.pyproject, (await Deno.readTextFile(paths.pyproject)) + "\n# edited\n");
    const r = await cli(["commit", "-m", "edit"], { env: { COMFYDOCK_HOME: root } });
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(`${lock} exists`), r.stderr);
    assert.match(
      r.stderr,
      /hint: another git process may be working in .*: let it finish\. If none is running/,
    );
    assert.ok(r.stderr.includes(`remove ${lock}`), r.stderr);
    assert.doesNotMatch(r.stderr, /install git/);
  });
});

Deno.test("a failed model download names the URL and the file, never an internal temp file", async () => {
  await withTempDir(async (root) => {
    await using server = ModelServer.start();
    const paths = await makeEnvSkeleton(root, "e");
    const env = { COMFYDOCK_HOME: root, COMFYDOCK_DOWNLOAD_RETRY_MS: "1" };
    const gone = server.file("/gone.safetensors", new Uint8Array(10));
    server.fault("/gone.safetensors", { kind: "404" });
    const broken = server.file("/broken.safetensors", new Uint8Array(10));
    for (let i = 0; i < 10; i++) {
      server.fault("/broken.safetensors", { kind: "429", times: 1, retryAfter: 0 });
    }
    for (const [url, name] of [[gone, "gone.safetensors"], [broken, "broken.safetensors"]]) {
      const r = await cli(["model", "add", url, "--category", "checkpoints", "--no-apply"], { env });
      assert.equal(r.code, 1);
      const error = r.stderr.slice(r.stderr.indexOf("error:"));
      assert.match(
        error,
        new RegExp(`error: could not download ${name.replace(".", "\\.")}:\\n  ${url}[: ].*HTTP`),
      );
      assert.doesNotMatch(error, /\.download\b|\.part\b|\.downloads/);
    }
    // The same at apply time: the file of .cec is named, with its source.
    await Deno.writeTextFile(
      paths.pyproject,
      (await Deno.readTextFile(paths.pyproject)) +
        `\n[tool.comfydock.models.gone]\nsha256 = "${"a".repeat(64)}"\nsize = 10\ncategory = "loras"\n` +
        `filename = "gone.safetensors"\nsources = [{ type = "url", url = "${gone}" }]\n`,
    );
    const planFile = join(root, "models.plan.json");
    assert.equal((await cli(["plan", "--target", "model", "--out", planFile], { env })).code, 0);
    const r = await cli(["apply", planFile], { env });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /could not download gone\.safetensors:\n {2}http:\/\/127\.0\.0\.1:\d+\/gone\.safetensors: HTTP 404/,
    );
    assert.doesNotMatch(r.stderr, /\.part\b/);
  });
});

Deno.test("a failed create leaves its line in the environment log", async () => {
  await withTempDir(async (root) => {
    const repo = await buildComfyUIRepo(join(root, "ComfyUI"));
    await cli(["init"], { env: { COMFYDOCK_HOME: join(root, "ws") } });
    const r = await cli(["create", "broken", "--comfyui", "v9.9.9"], {
      env: { COMFYDOCK_HOME: join(root, "ws"), COMFYDOCK_COMFYUI_URL: repo.url },
    });
    assert.equal(r.code, 1);
    const log = await Deno.readTextFile(envLogPath(workspacePaths(join(root, "ws")), "broken"));
    assert.match(
      log,
      /\] create: FAILED\n {2}creating 'broken' failed at step "resolving ComfyUI 'v9\.9\.9'/,
    );
  });
});
