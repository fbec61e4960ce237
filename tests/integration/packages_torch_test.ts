/**
 * torch backends with real uv against PEP 503 indexes on 127.0.0.1: the torch family comes from the
 * explicit `pytorch` index (local `+cpu` builds), everything else from the default index, and the torch pin
 * in constraint-dependencies stops a node from swapping torch.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { isCdError } from "../../lib/errors.ts";
import { readDesired } from "../../reconcile/desired.ts";
import { editPyprojectText } from "../../reconcile/pyproject_edit.ts";
import type { Transaction } from "../../reconcile/types.ts";
import { envPaths, workspacePaths } from "../../reconcile/paths.ts";
import { buildWheelhouse, STANDARD_WHEELS } from "../../fixtures/wheels.ts";
import { ownUvIndex, testPython, useLocalUv } from "../../fixtures/tools.ts";
import { servePyIndex } from "../../fixtures/pyindex.ts";
import { parseLock } from "../../providers/packages/lockfile.ts";
import { packageProvider } from "../../providers/packages/provider.ts";
import { checkResolves } from "../../providers/packages/resolve.ts";
import { pinTorchConstraints, torchUvConfig } from "../../providers/packages/torch.ts";
import { testSettings } from "../../fixtures/app.ts";

await useLocalUv();
ownUvIndex();
const PY = await testPython();

const noopTx: Transaction = {
  stagingDir: () => Deno.makeTempDir(),
  trash: () => Promise.resolve(),
  place: () => Promise.resolve(),
  created: () => Promise.resolve(),
  recordUndo: () => Promise.resolve(),
  log: () => {},
};

Deno.test("torch from the explicit pytorch index, pinned against a node that wants another torch", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "comfydock-torch-" });
  const simple = await buildWheelhouse(
    join(tmp, "simple"),
    STANDARD_WHEELS.filter((w) => !w.name.startsWith("torch")),
  );
  // Same versions on the default index would win if sources were ignored: give them a different local tag.
  await buildWheelhouse(join(tmp, "simple"), [{ name: "torch", version: "2.5.0+wrongindex" }]);
  const cpu = await buildWheelhouse(join(tmp, "cpu"), [
    { name: "torch", version: "2.4.1+cpu" },
    { name: "torch", version: "2.5.0+cpu" },
  ]);
  const server = await servePyIndex({ simple, cpu });
  try {
    const paths = envPaths({ ...workspacePaths(tmp), uvCache: join(tmp, "uv_cache") }, "t");
    await Deno.mkdir(paths.cec, { recursive: true });
    const base = `[project]
name = "t"
version = "0.1.0"
requires-python = ">=${PY.minor}"
dependencies = ["torch<2.5", "beta"]

[tool.comfydock]
comfyui_version = "v0.3.0"
comfyui_commit = "${"0".repeat(40)}"
python_version = "${PY.minor}"
`;
    const defaultIndex = { name: "local", url: `${server.url}/simple`, default: true };
    const { text } = await editPyprojectText(base, [
      ...torchUvConfig("cpu", { indexUrl: `${server.url}/cpu`, existingIndexes: [defaultIndex] }),
    ]);
    await Deno.writeTextFile(paths.pyproject, text);

    const desired = await readDesired(paths);
    const ctx = { paths, settings: testSettings(), readOnly: false };
    const { actions } = packageProvider.diff(desired, await packageProvider.observe(desired, ctx));
    assert.equal(actions[0].kind, "create");
    for (const a of actions) await packageProvider.apply(a, noopTx, ctx);

    const lock = parseLock(await Deno.readTextFile(paths.uvLock));
    const torch = lock.package.find((p) => p.name === "torch")!;
    assert.equal(torch.version, "2.4.1+cpu");
    assert.deepEqual({ ...torch.source }, { registry: `${server.url}/cpu` });
    assert.ok(server.requests.some((r) => r.startsWith("/cpu/torch")));
    assert.ok(!server.requests.some((r) => r.startsWith("/simple/torch")), "torch never looked up elsewhere");
    assert.deepEqual(
      packageProvider.diff(
        await readDesired(paths),
        await packageProvider.observe(await readDesired(paths), ctx),
      ).actions,
      [],
      "installed 2.4.1+cpu matches the lock",
    );

    // Pin the locked torch, then a node whose library demands torch 2.5.0 must not resolve.
    const pinned = await editPyprojectText(
      text.replace('"torch<2.5"', '"torch"'),
      pinTorchConstraints({ torch: torch.version! }),
    );
    const withNode = await editPyprojectText(pinned.text, [
      { path: ["dependency-groups", "greedy-node"], value: ["greedy-node-lib"] },
    ]);
    const before = await Deno.readTextFile(paths.pyproject);
    await assert.rejects(() => checkResolves(ctx, withNode.text), (e) => {
      assert.ok(isCdError(e) && e.code === "TORCH_CHANGE", String(e));
      assert.equal(
        e.message,
        "node 'greedy-node' needs greedy-node-lib, which needs torch 2.5.0; the environment pins torch 2.4.1",
      );
      return true;
    });
    assert.equal(await Deno.readTextFile(paths.pyproject), before);
    // Without the pin the same node silently moves torch to 2.5.0: the pin is what prevents it.
    await checkResolves(
      ctx,
      (await editPyprojectText(text.replace('"torch<2.5"', '"torch"'), [
        { path: ["dependency-groups", "greedy-node"], value: ["greedy-node-lib"] },
      ])).text,
    );
  } finally {
    await server.close();
    await Deno.remove(tmp, { recursive: true });
  }
});
