/**
 * `comfydock adopt PATH --move`: the folder and its venv are moved into the environment (nothing copied),
 * the first plan is clean; a build that fails puts the folder back exactly as it was.
 */
import assert from "node:assert/strict";
import { ownUvIndex, useLocalUv } from "../../fixtures/tools.ts";
import { join } from "node:path";
import { cli } from "../../fixtures/cli.ts";
import { adoptFixture, treeState } from "../../fixtures/comfyui_folder.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { exists } from "../../lib/fsx.ts";
import { run } from "../../lib/proc.ts";

await useLocalUv();
// These tests serve their own index: the user's uv index settings must not send uv elsewhere.
ownUvIndex();

Deno.test("adopt --move: moved in, clean first plan; a failed build moves the folder back", async () => {
  await withTempDir(async (root) => {
    const fx = await adoptFixture(root);
    try {
      await fx.init();

      // A failure in the build (the first action errors): the folder is put back, byte for byte.
      const failing = await fx.folder("unlucky");
      // Content, modes and file times come back; folders the failed build wrote into have a new mtime.
      const before = await treeState(join(root, "unlucky"), { folderTimes: false });
      const f = await cli(["adopt", failing.dir, "--move", "--name", "unlucky", "--yes"], {
        env: { ...fx.env, COMFYDOCK_FAULT: "0:error" },
      });
      assert.notEqual(f.code, 0, f.stdout);
      assert.match(f.stderr, /injected/i);
      assert.deepEqual(await treeState(join(root, "unlucky"), { folderTimes: false }), before, "moved back");
      assert.equal(await exists(join(fx.home, "environments", "unlucky")), false);
      const staged = [...Deno.readDirSync(join(fx.home, "environments"))].map((e) => e.name);
      assert.deepEqual(staged, [], "no half-built environment is left");

      const user = await fx.folder("me");
      const r = await cli(["adopt", join(root, "me"), "--move", "--name", "moved", "--yes"], { env: fx.env });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stdout, /moved in: ComfyUI\/ and its venv now live in the environment/);
      assert.equal(await exists(user.dir), false, "the folder itself moved");
      const envRoot = join(fx.home, "environments", "moved");
      assert.ok(await exists(join(envRoot, "ComfyUI", "custom_nodes", "tweak.py")));
      assert.ok(await exists(join(envRoot, "ComfyUI", "input", "cat.png")), "input/ came along");
      assert.ok(await exists(join(envRoot, ".venv", "pyvenv.cfg")), "the venv inside ComfyUI/ became .venv");
      assert.equal(await exists(join(envRoot, "ComfyUI", "venv")), false);
      assert.ok(
        !(await Deno.lstat(join(envRoot, "ComfyUI", "models", "checkpoints", "sd15.safetensors"))).isSymlink,
      );
      const out = await run(join(envRoot, ".venv", "bin", "python"), [
        "-c",
        "import alpha; print(alpha.__version__)",
      ]);
      assert.equal(out.stdout.trim(), "1.1.0");
      const plan = await cli(["-e", "moved", "plan"], { env: fx.env });
      assert.equal(plan.code, 0, plan.stderr);
      assert.match(plan.stdout, /No changes/);
    } finally {
      await fx.close();
    }
  });
});
