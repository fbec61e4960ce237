/**
 * `comfydock adopt PATH` as a user types it, on a realistic ComfyUI folder (fixtures/comfyui_folder.ts): the
 * first `plan` after adopt is "No changes", and the folder is exactly as it was (bytes, modes, mtimes).
 */
import assert from "node:assert/strict";
import { ownUvIndex, testPython, useLocalUv } from "../../fixtures/tools.ts";
import { join } from "node:path";
import { parse } from "smol-toml";
import { cli } from "../../fixtures/cli.ts";
import { adoptFixture, treeState } from "../../fixtures/comfyui_folder.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { parseLock } from "../../providers/packages/lockfile.ts";
import { run } from "../../lib/proc.ts";
import { exists } from "../../lib/fsx.ts";

await useLocalUv();
// These tests serve their own index: the user's uv index settings must not send uv elsewhere.
ownUvIndex();

// deno-lint-ignore no-explicit-any -- tests read a few keys of generated TOML
const readToml = async (path: string): Promise<any> => parse(await Deno.readTextFile(path));

Deno.test("adopt: the first plan is clean and the folder is left byte-identical", async () => {
  await withTempDir(async (root) => {
    const fx = await adoptFixture(root);
    try {
      const user = await fx.folder("me");
      const before = await treeState(join(root, "me"));
      await fx.init();

      const r = await cli(["adopt", user.dir, "--name", "studio", "--yes"], { env: fx.env });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stdout, /Adopted .*ComfyUI as environment 'studio'/);
      assert.match(r.stdout, /your folder was left as it was/);
      assert.match(r.stdout, /'comfydock plan' shows no changes/);
      assert.match(
        r.stdout,
        /\+ custom_nodes\/alpha-nodes -> \[tool\.comfydock\.nodes\.alpha-nodes\] registry 1\.1\.0/,
      );
      assert.match(r.stdout, /\+ custom_nodes\/beta-pack -> .* registry 2\.0\.0 \(recognised by content\)/);
      assert.match(
        r.stdout,
        /\+ custom_nodes\/tweak\.py -> \[tool\.comfydock\.nodes\.tweak\] single-file node/,
      );
      assert.match(
        r.stdout,
        /\+ custom_nodes\/old_node\.disabled -> .* local node, used in place, disabled \(enabled = false\)/,
      );
      assert.match(r.stdout, /! input\/ \(\d+ file\(s\)\): stays in/);
      assert.match(
        r.stdout,
        /! ComfyUI: 1 file\(s\) edited by hand \(main\.py\): the environment's checkout has them/,
      );
      assert.match(
        r.stdout,
        /custom_nodes\/Gamma-Nodes -> .* local node used in place: 1 uncommitted change\(s\)/,
      );

      const plan = await cli(["-e", "studio", "plan"], { env: fx.env });
      assert.equal(plan.code, 0, plan.stderr);
      assert.match(plan.stdout, /No changes/);

      const envRoot = join(fx.home, "environments", "studio");
      const py = await readToml(join(envRoot, ".cec", "pyproject.toml"));
      const cd = py.tool.comfydock;
      assert.equal(cd.comfyui_commit, fx.comfy.tags["v0.2.0"]);
      assert.equal(cd.python_version, (await testPython()).minor);
      assert.equal(cd.torch_backend, "cpu", "read from torch 2.4.1+cpu");
      assert.deepEqual({ ...cd.nodes["alpha-nodes"] }, { source: "registry", version: "1.1.0" });
      assert.equal(cd.nodes["beta-pack"].version, "2.0.0");
      assert.match(cd.nodes["beta-pack"].sha256, /^[0-9a-f]{64}$/);
      // Edited by hand and never committed: the user's code, used in place rather than pinned to a commit.
      assert.deepEqual({ ...cd.nodes["gamma-nodes"] }, {
        source: "local",
        path: "ComfyUI/custom_nodes/Gamma-Nodes",
        directory: "Gamma-Nodes",
      });
      assert.equal(cd.nodes["delta-nodes"].commit, fx.gamma.commits[1].sha, "a clean clone: pinned at HEAD");
      assert.equal(cd.nodes["delta-nodes"].repository, fx.gamma.url);
      assert.equal(cd.nodes["tweak"].source, "file");
      assert.equal(cd.nodes["old_node"].enabled, false);
      assert.ok(
        await Deno.stat(join(envRoot, ".cec", "nodes", "tweak.py")),
        "the file node's bytes travel in .cec",
      );
      assert.equal(cd.nodes["my_local_node"].source, "local");
      assert.equal(cd.nodes["delta-nodes"].registry_id, "delta-nodes", "the Manager's .git/.cnr-id");
      assert.equal(cd.nodes["delta-nodes"].directory, "delta-nightly");
      assert.equal(
        await Deno.readTextFile(join(envRoot, "ComfyUI", "custom_nodes", "Gamma-Nodes", "README.md")),
        "# Gamma-Nodes, patched locally\n",
      );
      assert.deepEqual(Object.keys(cd.models).sort(), ["kl", "sd15", "style"]);
      assert.equal(cd.models.kl.category, "vae");
      assert.deepEqual([...py["dependency-groups"]["alpha-nodes"]], ["libx"]);
      assert.deepEqual([...py["dependency-groups"].user].sort(), ["torch==2.4.1+cpu", "zeta-pkg==3.0.0"]);
      const locked = Object.fromEntries(
        parseLock(await Deno.readTextFile(join(envRoot, ".cec", "uv.lock"))).package.map((
          p,
        ) => [p.name, p.version]),
      );
      assert.equal(locked.libx, "1.0.0", "installed, though 2.0.0 fits the node's requirement too");
      assert.equal(locked.alpha, "1.1.0");
      assert.equal(locked.torch, "2.4.1+cpu");
      assert.ok(await Deno.stat(join(envRoot, ".cec", "workflows", "sub", "landscape.json")));
      assert.ok((await Deno.lstat(join(envRoot, "ComfyUI", "models", "vae", "kl.safetensors"))).isSymlink);
      assert.ok(await Deno.stat(join(envRoot, "ComfyUI", "custom_nodes", "tweak.py")));
      assert.ok(
        await Deno.stat(join(envRoot, "ComfyUI", "custom_nodes", "old_node.disabled", "__init__.py")),
      );
      // The venv is a hard-linked copy: same files, no extra space, and it runs on its own.
      const sp = `lib/python${(await testPython()).minor}/site-packages/alpha/__init__.py`;
      assert.equal(
        (await Deno.stat(join(envRoot, ".venv", sp))).ino,
        (await Deno.stat(join(user.venv, sp))).ino,
      );
      const out = await run(join(envRoot, ".venv", "bin", "python"), [
        "-c",
        "import alpha, torch; print(alpha.__version__, torch.__version__)",
      ]);
      assert.equal(out.stdout.trim(), "1.1.0 2.4.1+cpu");

      assert.deepEqual(await treeState(join(root, "me")), before, "the adopted folder is unchanged");

      // A folder that is not a git checkout: its comfyui_version.py names the release, checked out fresh.
      await run("cp", ["-a", join(root, "me"), join(root, "plain")]);
      await Deno.remove(join(root, "plain", "ComfyUI", ".git"), { recursive: true });
      const m = await cli(["adopt", join(root, "plain", "ComfyUI"), "--name", "plain", "--move"], {
        env: fx.env,
      });
      assert.equal(m.code, 1);
      assert.match(m.stderr, /is not a git checkout, so it cannot become one by moving/);
      // --python names the interpreter (here the venv's, found without looking beside ComfyUI).
      const python = join(root, "plain", "ComfyUI", "venv", "bin", "python");
      // A package installed from a wheel file on this machine: a path, not something an index can give back.
      const wheel = join(root, "simple", "epsilon-1.0.0-py3-none-any.whl");
      await run(Deno.env.get("COMFYDOCK_UV")!, ["pip", "install", "--quiet", "--python", python, wheel]);
      const p = await cli([
        "adopt",
        join(root, "plain"),
        "--comfyui-url",
        fx.comfy.url,
        "--python",
        python,
        "--yes",
      ], {
        env: fx.env,
      });
      assert.equal(p.code, 0, p.stderr + p.stdout);
      assert.match(p.stdout, /ComfyUI \(not a git checkout\) -> v0\.2\.0/);
      const ppy = await readToml(join(fx.home, "environments", "plain", ".cec", "pyproject.toml"));
      assert.equal(ppy.tool.comfydock.comfyui_commit, fx.comfy.tags["v0.2.0"]);
      assert.match(
        p.stdout,
        /! package epsilon 1\.0\.0: installed from file:\/\/.*the environment's venv does not keep it/,
      );
      assert.match((await cli(["-e", "plain", "plan"], { env: fx.env })).stdout, /No changes/);
      // The hard-linked venvs are independent: the build's uninstall left the user's copy whole.
      const site = `lib/python${(await testPython()).minor}/site-packages`;
      assert.equal(await exists(join(fx.home, "environments", "plain", ".venv", site, "epsilon")), false);
      assert.ok(await exists(join(root, "plain", "ComfyUI", "venv", site, "epsilon", "__init__.py")));

      // A Python outside any venv is refused, saying what to pass instead.
      const sys = await cli(["adopt", join(root, "me"), "--name", "sys", "--python", Deno.execPath()], {
        env: fx.env,
      });
      assert.equal(sys.code, 1);
      assert.match(sys.stderr, /is not the interpreter of a venv/);

      // Not a ComfyUI folder: a clear error, nothing made.
      const bad = await cli(["adopt", join(root, "simple")], { env: fx.env });
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /is not a ComfyUI folder \(no main\.py and folder_paths\.py\)/);
    } finally {
      await fx.close();
    }
  });
});
