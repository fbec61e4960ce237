/**
 * Package index credentials as README "Behind a mirror or firewall" has them: `comfydock config set-key
 * index:pytorch` and `index:NAME` (USER:PASSWORD on stdin) make uv send them, as HTTP Basic, to that index
 * and no other, and they never enter `.cec`, its history, the workspace config or the environment log.
 * Through the CLI, with real uv, against three PEP 503 indexes on 127.0.0.1 (one per host:port, so uv cannot
 * reuse one index's credentials for another): a PyPI stand-in, a PyTorch mirror and an extra index, the last
 * two refusing requests without their credentials.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, initOffline, offlineEnv } from "../../fixtures/cli.ts";
import { buildComfyUIRepo } from "../../fixtures/comfyui_repo.ts";
import { servePyIndex } from "../../fixtures/pyindex.ts";
import { deadUrl } from "../../fixtures/registry_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { ownUvIndex, testPython, useLocalUv } from "../../fixtures/tools.ts";
import { buildWheelhouse, STANDARD_WHEELS } from "../../fixtures/wheels.ts";
import { listFiles } from "../../lib/fsx.ts";
import { git } from "../../providers/git/git.ts";
import { envPaths, workspacePaths } from "../../reconcile/paths.ts";

await useLocalUv();
// These tests serve their own indexes: the user's uv index settings must not send uv elsewhere.
ownUvIndex();
const PY = await testPython();

const TORCH = { user: "torch-user", password: "torch-s3cret" };
const CORP = { user: "corp-user", password: "corp-s3cret" };
const basic = (c: { user: string; password: string }) => `Basic ${btoa(`${c.user}:${c.password}`)}`;

Deno.test("set-key index:pytorch and index:NAME: uv sends each index its own credentials, and they stay out of .cec", async () => {
  await withTempDir(async (root) => {
    // ComfyUI (latest) needs torch, alpha and beta>=2: beta is only on the extra index, torch only on the mirror.
    const comfy = await buildComfyUIRepo(join(root, "ComfyUI"), { requirements: "torch\nalpha\nbeta>=2\n" });
    const simple = await buildWheelhouse(
      join(root, "simple"),
      STANDARD_WHEELS.filter((w) => w.name !== "torch" && w.name !== "beta"),
    );
    const corp = await buildWheelhouse(join(root, "corp"), [
      { name: "beta", version: "2.0.0", requires: ["alpha>=2"] },
    ]);
    const cpu = await buildWheelhouse(join(root, "cpu"), [{ name: "torch", version: "2.5.0+cpu" }]);
    await using stack = new AsyncDisposableStack();
    const pypi = stack.adopt(await servePyIndex({ simple }), (s) => s.close());
    const mirror = stack.adopt(
      await servePyIndex({ cpu }, { auth: { cpu: `${TORCH.user}:${TORCH.password}` } }),
      (s) => s.close(),
    );
    const extra = stack.adopt(
      await servePyIndex({ corp }, { auth: { corp: `${CORP.user}:${CORP.password}` } }),
      (s) => s.close(),
    );

    const home = join(root, "ws");
    const env = offlineEnv({
      home,
      root,
      registryUrl: await deadUrl(),
      indexUrl: pypi.url,
      comfyuiUrl: comfy.url,
    });
    await initOffline(env, mirror.url);
    const run = async (args: string[], stdin?: string) => {
      const r = await cli(args, { env, stdin });
      assert.equal(r.code, 0, `comfydock ${args.join(" ")}: ${r.stdout}${r.stderr}`);
      return r;
    };
    await run(["config", "set", "extra_indexes", `corp=${extra.url}/corp`]);
    await run(["config", "set-key", "index:pytorch"], `${TORCH.user}:${TORCH.password}\n`);
    await run(["config", "set-key", "index:corp"], `${CORP.user}:${CORP.password}\n`);
    await run(["create", "e", "--python", PY.minor, "--torch-backend", "cpu"]);

    // Each protected index served what only it has, down to the wheel files (it refuses requests without its
    // credentials), and saw no credentials but its own (uv tries a file without any first: a 401 asks).
    assert.ok(
      mirror.requests.some((p) => /^\/files\/cpu\/torch-2\.5\.0\+cpu-/.test(p)),
      String(mirror.requests),
    );
    assert.ok(extra.requests.some((p) => /^\/files\/corp\/beta-2\.0\.0-/.test(p)), String(extra.requests));
    assert.deepEqual(new Set(mirror.authorizations.filter((a) => a !== null)), new Set([basic(TORCH)]));
    assert.deepEqual(new Set(extra.authorizations.filter((a) => a !== null)), new Set([basic(CORP)]));
    assert.deepEqual(new Set(pypi.authorizations), new Set([null]), "the default index gets none");

    // Nothing of them in .cec (its files and its whole history), the workspace config or the log.
    const ws = workspacePaths(home);
    const cec = envPaths(ws, "e").cec;
    const texts = [
      (await git(cec, ["log", "--all", "-p"])).stdout,
      ...await Promise.all(
        (await listFiles(cec)).filter((f) => !f.split(/[\\/]/).includes(".git"))
          .map((f) => Deno.readTextFile(join(cec, f))),
      ),
      await Deno.readTextFile(ws.workspaceJson),
      await Deno.readTextFile(join(ws.logs, "e.log")),
    ];
    assert.ok(texts[0].includes("uv.lock"), "the history was read");
    for (const secret of [TORCH.user, TORCH.password, CORP.user, CORP.password, btoa(TORCH.password)]) {
      for (const t of texts) assert.ok(!t.includes(secret), `${secret} was written`);
    }
  });
});
