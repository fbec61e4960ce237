/**
 * Credentials in URLs never reach `.cec`, `--json` or the logs: `model add` moves a Civitai or Hugging Face
 * token to the key store (and the download still authenticates), refuses credentials for any other host
 * with a hint, and a workflow's model URL loses its author's token.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli } from "../../fixtures/cli.ts";
import { randomBytes } from "../../fixtures/model_files.ts";
import { ModelServer } from "../../fixtures/model_server.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { listFiles } from "../../lib/fsx.ts";
import { run } from "../../lib/proc.ts";
import { testSettings } from "../../fixtures/app.ts";
import { buildModelEntry } from "../../providers/models/add.ts";
import { openModelIndex } from "../../providers/models/store.ts";
import { workspacePaths } from "../../reconcile/paths.ts";

const SECRET = "civSECRET0123456789";

/** Every text of `.cec` (work tree and every commit) and of the environment's log. */
async function everythingWritten(cec: string, logs: string): Promise<string> {
  const history = (await run("git", ["-C", cec, "log", "-p", "--all"])).stdout;
  const files = await Promise.all(
    (await listFiles(cec)).filter((f) => !f.startsWith(".git/")).map((f) => Deno.readTextFile(join(cec, f))),
  );
  const logText = await Promise.all((await listFiles(logs)).map((f) => Deno.readTextFile(join(logs, f))));
  return [history, ...files, ...logText].join("\n");
}

Deno.test("hostile secrets: a token in a model URL goes to the key store, never into .cec, --json or the log", async () => {
  await using server = ModelServer.start();
  const data = randomBytes(64 * 1024);
  server.civitai(77, "tokened.safetensors", data, { requireToken: SECRET });
  await withTempDir(async (dir) => {
    const { paths, env: base } = await createRealEnv(join(dir, "home"), "e");
    const env = { ...base, CIVITAI_API_URL: server.civitaiApi, COMFYDOCK_HTTP_RETRY_BASE_MS: "5" };
    const url = `${server.url}/api/download/models/77?type=Model&token=${SECRET}`;
    const r = await cli(["model", "add", url, "--category", "checkpoints", "--yes", "--json"], { env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.ok(!(r.stdout + r.stderr).includes(SECRET), "not shown");
    assert.ok(!(await everythingWritten(paths.cec, paths.workspace.logs)).includes(SECRET), "not written");
    assert.match(
      await Deno.readTextFile(paths.pyproject),
      /url = "http:\/\/127\.0\.0\.1:\d+\/api\/download\/models\/77\?type=Model"/,
    );
    // The key store has it, and the download authenticated with it.
    const keys = JSON.parse(await Deno.readTextFile(paths.workspace.keysFile));
    assert.equal(keys.civitai, SECRET);
    assert.ok(server.requests.some((q) => q.path === "/api/download/models/77" && q.token === SECRET));
  });
});

Deno.test("hostile secrets: credentials for another host are refused with a hint; nothing changes", async () => {
  await using server = ModelServer.start();
  const url = server.file("/m/private.safetensors", randomBytes(1024));
  await withTempDir(async (dir) => {
    const { paths, env } = await createRealEnv(join(dir, "home"), "e");
    const before = await Deno.readTextFile(paths.pyproject);
    const withUser = url.replace("http://", `http://bob:${SECRET}@`);
    for (const bad of [`${url}?access_token=${SECRET}`, withUser, `${url}?X-Amz-Signature=${SECRET}`]) {
      const r = await cli(["model", "add", bad, "--category", "checkpoints", "--yes", "--json"], { env });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout + r.stderr, /MODEL_URL_CREDENTIALS|carries credentials/);
      assert.match(r.stdout + r.stderr, /pass the URL without them/);
      assert.ok(!(r.stdout + r.stderr).includes(SECRET), `shown: ${r.stdout}${r.stderr}`);
    }
    assert.equal(await Deno.readTextFile(paths.pyproject), before);
    assert.equal(server.count("/m/private.safetensors"), 0, "nothing was fetched with them");
  });
});

Deno.test("hostile secrets: a workflow's model URL loses its author's token; the download goes without it", async () => {
  await using server = ModelServer.start();
  const url = server.file("/m/shared.safetensors", randomBytes(4096));
  await withTempDir(async (dir) => {
    const ws = workspacePaths(dir);
    using index = openModelIndex(ws);
    const entry = await buildModelEntry({ kind: "url", url: `${url}?token=AUTHORS0wnSecret` }, {
      category: "checkpoints",
    }, {
      ws,
      settings: testSettings(),
      index,
      credentials: { kind: "drop" },
    });
    assert.deepEqual(entry.spec.sources, [{ type: "url", url }]);
    assert.match(entry.note, /credentials in the URL \(its 'token' parameter\) were dropped/);
    assert.equal(server.requests.at(-1)?.token, null, "the author's token was not used");
    // Without a policy (a library caller), the same URL is refused.
    await assert.rejects(
      buildModelEntry({ kind: "url", url: `${url}?token=AUTHORS0wnSecret` }, { category: "checkpoints" }, {
        ws,
        settings: testSettings(),
        index,
      }),
      /carries credentials \(its 'token' parameter\)/,
    );
  });
});
