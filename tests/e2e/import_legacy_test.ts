/**
 * `comfydock import` of a ComfyGit `.cec` (a git repository by path, and ComfyGit's export tarball) and of a
 * ComfyDock 1.x one: converted to this schema with a report of every key, built, and planned clean. The
 * fixture ComfyUI repo, a registry on 127.0.0.1, a local git node, a PEP 503 index on 127.0.0.1, real uv.
 */
import assert from "node:assert/strict";
import { ownUvIndex, testPython, useLocalUv } from "../../fixtures/tools.ts";
import { join } from "node:path";
import { parse } from "smol-toml";
import { cli, initOffline, offlineEnv } from "../../fixtures/cli.ts";
import { buildComfyUIRepo } from "../../fixtures/comfyui_repo.ts";
import { comfydock1Pyproject, comfygitPyproject } from "../../fixtures/legacy_cec.ts";
import { gitIn, makeNodeRepo } from "../../fixtures/node_git.ts";
import { servePyIndex } from "../../fixtures/pyindex.ts";
import { startRegistryServer } from "../../fixtures/registry_server.ts";
import { rawTarGz } from "../../fixtures/bundle_archives.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { buildWheelhouse, STANDARD_WHEELS } from "../../fixtures/wheels.ts";
import { run } from "../../lib/proc.ts";

await useLocalUv();
// These tests serve their own index: the user's uv index settings must not send uv elsewhere.
ownUvIndex();

// deno-lint-ignore no-explicit-any -- tests read a few keys of generated TOML
const readToml = async (path: string): Promise<any> => parse(await Deno.readTextFile(path));

const WORKFLOW = JSON.stringify({
  nodes: [{ id: 4, type: "CheckpointLoaderSimple", widgets_values: ["sd15.safetensors"] }],
  links: [],
});

Deno.test("import of a ComfyGit .cec (path and export tarball) and a ComfyDock 1.x one", async () => {
  await withTempDir(async (root) => {
    const comfy = await buildComfyUIRepo(join(root, "ComfyUI"));
    const simple = await buildWheelhouse(join(root, "simple"), [
      ...STANDARD_WHEELS,
      { name: "libx", version: "1.0.0" },
    ]);
    const index = await servePyIndex({ simple });
    const registry = await startRegistryServer([
      { id: "alpha-nodes", versions: [{ version: "1.1.0", pack: { requirements: ["libx"] } }] },
    ]);
    try {
      const gamma = await makeNodeRepo(root, "Gamma-Nodes", [{ tag: "v1" }]);
      const home = join(root, "ws");
      const env = offlineEnv({
        home,
        root,
        registryUrl: registry.url,
        indexUrl: index.url,
        comfyuiUrl: comfy.url,
      });
      await initOffline(env, index.url);
      // The model the ComfyGit file names by its short hash is on this machine: indexed, it maps by sha256.
      const models = join(root, "my-models");
      await Deno.mkdir(join(models, "checkpoints"), { recursive: true });
      await Deno.writeFile(join(models, "checkpoints", "sd15.safetensors"), new Uint8Array(4096).fill(7));
      assert.equal((await cli(["model", "scan", models, "--full"], { env })).code, 0);

      const python = (await testPython()).minor;
      const fixture = {
        pythonVersion: python,
        comfyuiVersion: "v0.2.0",
        comfyuiCommit: comfy.tags["v0.2.0"],
        registryDownloadUrl: `${registry.url}/dl/alpha-nodes/1.1.0.zip`,
        gitRepository: gamma.url,
        gitCommit: gamma.commits[0].sha,
      };
      const cec = join(root, "studio-cec");
      await Deno.mkdir(join(cec, "workflows"), { recursive: true });
      await Deno.writeTextFile(join(cec, "pyproject.toml"), comfygitPyproject(fixture));
      await Deno.writeTextFile(join(cec, ".python-version"), `${python}\n`);
      await Deno.writeTextFile(join(cec, "workflows", "portrait.json"), WORKFLOW);
      await gitIn(cec, "init", "--quiet");
      await gitIn(cec, "add", "-A");
      await gitIn(cec, "commit", "--quiet", "-m", "ComfyGit environment");

      const r = await cli(["import", cec, "--torch-backend", "cpu", "--yes"], { env });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stdout, /Imported environment 'studio'/, "the name comes from comfygit-env-studio");
      assert.match(r.stdout, /built: \d+ action\(s\) applied; it matches its \.cec\./);
      assert.match(
        r.stdout,
        /\+ tool\.comfygit\.nodes\.gamma-nodes -> \[tool\.comfydock\.nodes\.gamma-nodes\] git/,
      );
      assert.match(r.stdout, /\+ tool\.comfygit\.models\.5f1c2a3b -> \[tool\.comfydock\.models\.sd15\]/);
      assert.match(
        r.stdout,
        /! tool\.comfygit\.models\.9e8d7c6b: loras\/lost\.safetensors .*sampled short hash/,
      );
      assert.match(r.stdout, /! tool\.comfygit\.nodes\.bundled-thing: a ComfyGit bundled node/);
      assert.match(r.stdout, /! tool\.comfygit\.workflows\.portrait\.custom_node_map:/);
      assert.match(r.stdout, /\+ torch backend -> cpu \(--torch-backend\)/);
      assert.match(r.stdout, /= \.python-version -> kept in \.cec/);

      const envCec = join(home, "environments", "studio", ".cec");
      const py = await readToml(join(envCec, "pyproject.toml"));
      assert.equal(py.tool.comfygit, undefined);
      assert.equal(py.tool.comfydock.comfyui_commit, comfy.tags["v0.2.0"]);
      assert.equal(py.tool.comfydock.nodes["alpha-nodes"].version, "1.1.0");
      assert.ok(py.tool.uv.index.some((i: { name: string }) => i.name === "pytorch"));
      const log = await run("git", ["-C", envCec, "log", "--format=%s"]);
      assert.match(
        log.stdout,
        /^Convert from ComfyGit: \d+ mapped or kept, \d+ not mapped\nComfyGit environment$/m,
      );
      assert.ok(
        (await Deno.lstat(
          join(home, "environments", "studio", "ComfyUI", "models", "checkpoints", "sd15.safetensors"),
        ))
          .isSymlink,
        "the model is linked from where it is",
      );

      const origin = await run("git", ["-C", envCec, "remote", "get-url", "origin"]);
      assert.equal(origin.stdout.trim(), await Deno.realPath(cec), "the .cec keeps its origin");

      const plan = await cli(["-e", "studio", "plan"], { env });
      assert.equal(plan.code, 0, plan.stderr);
      assert.match(plan.stdout, /No changes/);

      // ComfyGit's export: a tar.gz of the .cec files, no manifest.
      const tarball = join(root, "studio.tar.gz");
      await Deno.writeFile(
        tarball,
        rawTarGz([
          { name: "pyproject.toml", data: comfygitPyproject(fixture) },
          { name: ".python-version", data: `${python}\n` },
          { name: "workflows/portrait.json", data: WORKFLOW },
        ]),
      );
      const t = await cli(["import", tarball, "--name", "fromtar", "--torch-backend", "cpu", "--no-apply"], {
        env,
      });
      assert.equal(t.code, 0, t.stderr + t.stdout);
      const tpy = await readToml(join(home, "environments", "fromtar", ".cec", "pyproject.toml"));
      assert.equal(tpy.project.name, "fromtar");
      assert.equal(tpy.tool.comfydock.workflows.tracked.portrait.file, "workflows/portrait.json");

      // ComfyDock 1.x: only a version tag, hash-named groups.
      const old = join(root, "old-cec");
      await Deno.mkdir(join(old, "workflows"), { recursive: true });
      await Deno.writeTextFile(
        join(old, "pyproject.toml"),
        comfydock1Pyproject({ ...fixture, comfyuiCommit: undefined }),
      );
      await Deno.writeTextFile(join(old, "workflows", "portrait.json"), WORKFLOW);
      await gitIn(old, "init", "--quiet");
      await gitIn(old, "add", "-A");
      await gitIn(old, "commit", "--quiet", "-m", "1.x environment");
      const o = await cli(["import", old, "--torch-backend", "cpu", "--no-apply"], { env });
      assert.equal(o.code, 0, o.stderr + o.stdout);
      const opy = await readToml(join(home, "environments", "oldie", ".cec", "pyproject.toml"));
      assert.equal(
        opy.tool.comfydock.comfyui_commit,
        comfy.tags["v0.2.0"],
        "the tag resolved through the mirror",
      );
      assert.deepEqual(Object.keys(opy["dependency-groups"]).sort(), ["alpha-nodes", "gamma-nodes"]);

      // A branch instead of a release: pinned to the branch's current commit; Python from .python-version.
      const branchy = join(root, "branchy-cec");
      await Deno.mkdir(join(branchy, "workflows"), { recursive: true });
      await Deno.writeTextFile(
        join(branchy, "pyproject.toml"),
        comfygitPyproject({ ...fixture, comfyuiVersion: "master", comfyuiCommit: undefined })
          .replace('comfyui_version_type = "release"', 'comfyui_version_type = "branch"')
          .replace(`python_version = "${python}"\n`, "")
          .replace("comfygit-env-studio", "comfygit-env-branchy"),
      );
      await Deno.writeTextFile(join(branchy, ".python-version"), `${python}.9\n`);
      await Deno.writeTextFile(join(branchy, "workflows", "portrait.json"), WORKFLOW);
      await gitIn(branchy, "init", "--quiet");
      await gitIn(branchy, "add", "-A");
      await gitIn(branchy, "commit", "--quiet", "-m", "on a branch");
      const b = await cli(["import", branchy, "--torch-backend", "cpu", "--no-apply"], { env });
      assert.equal(b.code, 0, b.stderr + b.stdout);
      assert.match(
        b.stdout,
        /! comfyui_version = "master" \(a branch\): a branch moves: pinned to its current commit/,
      );
      assert.match(
        b.stdout,
        new RegExp(
          `\\+ \\.python-version -> tool\\.comfydock\\.python_version = "${python.replace(".", "\\.")}"`,
        ),
      );
      const bcd =
        (await readToml(join(home, "environments", "branchy", ".cec", "pyproject.toml"))).tool.comfydock;
      assert.equal(bcd.comfyui_commit, comfy.head);
      assert.equal(bcd.python_version, python);
    } finally {
      await registry.close();
      await index.close();
    }
  });
});
