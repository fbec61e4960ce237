/**
 * `comfydock import SNAPSHOT.json|.yaml` and `export --format manager-snapshot` as a user types them: the
 * fixture ComfyUI repo, a registry on 127.0.0.1, local git node repos, and a PEP 503 index on 127.0.0.1 (a
 * default index plus a `cpu` torch index), real uv and git.
 */
import assert from "node:assert/strict";
import { ownUvIndex, useLocalUv } from "../../fixtures/tools.ts";
import { join } from "node:path";
import { parse } from "smol-toml";
import { cli, initOffline, offlineEnv } from "../../fixtures/cli.ts";
import { buildComfyUIRepo } from "../../fixtures/comfyui_repo.ts";
import { makeNodeRepo } from "../../fixtures/node_git.ts";
import { servePyIndex } from "../../fixtures/pyindex.ts";
import { startRegistryServer } from "../../fixtures/registry_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { buildWheelhouse, STANDARD_WHEELS } from "../../fixtures/wheels.ts";
import { parseLock } from "../../providers/packages/lockfile.ts";

await useLocalUv();
// These tests serve their own index: the user's uv index settings must not send uv elsewhere.
ownUvIndex();

// deno-lint-ignore no-explicit-any -- tests read a few keys of generated TOML
const readToml = async (path: string): Promise<any> => parse(await Deno.readTextFile(path));

Deno.test("import of a Manager snapshot (JSON and YAML), its report, a clean plan, and export back", async () => {
  await withTempDir(async (root) => {
    const comfy = await buildComfyUIRepo(join(root, "ComfyUI"));
    const simple = await buildWheelhouse(join(root, "simple"), [
      ...STANDARD_WHEELS.filter((w) => w.name !== "torch"),
      { name: "libx", version: "1.0.0" },
      { name: "libx", version: "2.0.0" },
      // Built per torch version, like the real one: its pin has to agree with the torch the snapshot had.
      { name: "xformers", version: "0.0.28", requires: ["torch==2.4.1"] },
    ]);
    const cpu = await buildWheelhouse(join(root, "cpu"), [
      { name: "torch", version: "2.4.1+cpu" },
      { name: "torch", version: "2.5.0+cpu" },
    ]);
    const index = await servePyIndex({ simple, cpu });
    const registry = await startRegistryServer([
      {
        id: "alpha-nodes",
        versions: [
          { version: "1.2.0", pack: { requirements: ["libx==2.0.0"] } },
          { version: "1.1.0", pack: { classes: ["AlphaNode"], requirements: ["libx"] } },
        ],
      },
    ]);
    try {
      const gammaRepo = await makeNodeRepo(root, "Gamma-Nodes", [{ tag: "v1" }, { tag: "v2" }]);
      const deltaRepo = await makeNodeRepo(root, "Delta-Nodes", [{ tag: "v1" }]);
      const home = join(root, "ws");
      const env = offlineEnv({
        home,
        root,
        registryUrl: registry.url,
        indexUrl: index.url,
        comfyuiUrl: comfy.url,
      });
      await initOffline(env, index.url);

      // What the Manager UI writes: JSON, indent 4, pip freeze lines as keys (URLs split off as values).
      const snapshot = {
        comfyui: comfy.tags["v0.2.0"],
        git_custom_nodes: {
          [gammaRepo.url]: { hash: gammaRepo.commits[0].sha, disabled: false },
          [deltaRepo.url]: { hash: deltaRepo.commits[0].sha, disabled: true },
        },
        cnr_custom_nodes: { "alpha-nodes": "1.1.0" },
        file_custom_nodes: [{ filename: "my_tweak.py", disabled: false }],
        pips: {
          "alpha==1.1.0": "",
          "beta==1.0.0": "",
          "libx==1.0.0": "",
          "Zeta_Pkg==3.0.0": "",
          "torch==2.4.1+cu124": "",
          "xformers==0.0.28": "",
          "nvidia-cublas-cu12==12.4.5.8": "",
          "-e /home/me/dev/thing": "",
          "gamma": "file:///home/me/wheels/gamma-1.0.0-py3-none-any.whl",
        },
      };
      const file = join(root, "2025-01-02_10-00-00_snapshot.json");
      await Deno.writeTextFile(file, JSON.stringify(snapshot, null, 4));
      const r = await cli(["import", file, "--name", "snap", "--torch-backend", "cpu", "--yes"], { env });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stdout, /Imported environment 'snap' from ComfyUI-Manager snapshot/);
      assert.match(r.stdout, /built: \d+ action\(s\) applied; it matches its \.cec\./);
      // The report: every unmapped thing named with why.
      assert.match(r.stdout, /! file_custom_nodes: my_tweak\.py: a snapshot names a single-file node/);
      assert.match(r.stdout, /! pips: nvidia-cublas-cu12==12\.4\.5\.8: torch's own runtime wheel/);
      assert.match(r.stdout, /! pips: -e \/home\/me\/dev\/thing: an editable install from a local path/);
      assert.match(r.stdout, /! pips: gamma @ file:\/\/\/home\/me\/wheels\/.*: installed from a local file/);
      assert.match(
        r.stdout,
        /\+ pips: torch==2\.4\.1\+cu124 -> torch==2\.4\.1 as a constraint; the build comes from the torch backend \(cpu\)/,
      );
      assert.match(
        r.stdout,
        /\+ cnr_custom_nodes\.alpha-nodes -> \[tool\.comfydock\.nodes\.alpha-nodes\] registry version 1\.1\.0/,
      );

      const cec = join(home, "environments", "snap", ".cec");
      // deno-lint-ignore no-explicit-any -- a test reads the generated file
      const py = parse(await Deno.readTextFile(join(cec, "pyproject.toml"))) as any;
      const cd = py.tool.comfydock;
      assert.equal(cd.comfyui_commit, comfy.tags["v0.2.0"]);
      assert.equal(cd.comfyui_version, "v0.2.0");
      assert.equal(cd.nodes["alpha-nodes"].version, "1.1.0");
      assert.equal(cd.nodes["gamma-nodes"].commit, gammaRepo.commits[0].sha);
      assert.equal(cd.nodes["gamma-nodes"].enabled, undefined);
      assert.equal(cd.nodes["delta-nodes"].enabled, false, "a disabled git node is recorded as disabled");
      const nodesDir = join(home, "environments", "snap", "ComfyUI", "custom_nodes");
      assert.ok(
        await Deno.stat(join(nodesDir, ".disabled", "delta-nodes")),
        "installed the way the Manager disables",
      );
      assert.deepEqual([...py["dependency-groups"]["alpha-nodes"]], ["libx"]);
      assert.deepEqual([...py["dependency-groups"].user].sort(), [
        "torch",
        "xformers==0.0.28",
        "zeta-pkg==3.0.0",
      ]);
      assert.deepEqual([...py.tool.uv["constraint-dependencies"]], ["torch==2.4.1"]);
      const locked = Object.fromEntries(
        parseLock(await Deno.readTextFile(join(cec, "uv.lock"))).package.map((p) => [p.name, p.version]),
      );
      assert.equal(locked.alpha, "1.1.0", "the snapshot's version, not the newest that fits");
      assert.equal(locked.beta, "1.0.0");
      assert.equal(locked.libx, "1.0.0", "not libx 2.0.0");
      assert.equal(locked.torch, "2.4.1+cpu", "the backend's build of the snapshot's torch version");
      assert.equal(
        locked.xformers,
        "0.0.28",
        "xformers is an ordinary pin, matched to the kept torch version",
      );

      const plan = await cli(["-e", "snap", "plan"], { env });
      assert.equal(plan.code, 0, plan.stderr);
      assert.match(plan.stdout, /No changes/);

      // YAML, as `cm-cli save-snapshot --output x.yaml` writes it (PyYAML: sorted keys, quoted '1.10').
      const yamlFile = join(root, "snap.yaml");
      await Deno.writeTextFile(
        yamlFile,
        `custom_nodes:
  cnr_custom_nodes:
    alpha-nodes: 1.1.0
  comfyui: ${comfy.tags["v0.2.0"]}
  file_custom_nodes: []
  git_custom_nodes:
    ${deltaRepo.url}:
      disabled: true
      hash: ${deltaRepo.commits[0].sha}
  pips:
    alpha==1.1.0: ''
    beta==1.0.0: ''
`,
      );
      const y = await cli(["import", yamlFile, "--name", "snapy", "--torch-backend", "cpu", "--no-apply"], {
        env,
      });
      assert.equal(y.code, 0, y.stderr + y.stdout);
      const ycec = join(home, "environments", "snapy", ".cec");
      // deno-lint-ignore no-explicit-any -- a test reads the generated file
      const ycd = (parse(await Deno.readTextFile(join(ycec, "pyproject.toml"))) as any).tool.comfydock;
      assert.equal(ycd.comfyui_commit, comfy.tags["v0.2.0"]);
      assert.equal(ycd.nodes["alpha-nodes"].version, "1.1.0", "'1.1.0' stays a string, not a number");
      assert.equal(ycd.nodes["delta-nodes"].enabled, false);
      const ylocked = parseLock(await Deno.readTextFile(join(ycec, "uv.lock"))).package;
      assert.equal(ylocked.find((p) => p.name === "alpha")?.version, "1.1.0");

      // Saved with custom nodes only: no ComfyUI commit and no pips; --comfyui picks the version.
      const nodesOnly = join(root, "nodes-only.json");
      await Deno.writeTextFile(
        nodesOnly,
        JSON.stringify({ comfyui: null, cnr_custom_nodes: {}, pips: null }),
      );
      const n = await cli([
        "import",
        nodesOnly,
        "--comfyui",
        "v0.1.0",
        "--torch-backend",
        "cpu",
        "--no-apply",
      ], {
        env,
      });
      assert.equal(n.code, 0, n.stderr + n.stdout);
      assert.match(n.stdout, /! comfyui: the snapshot names no ComfyUI commit: using v0\.1\.0/);
      assert.match(n.stdout, /! pips: the snapshot lists no packages/);
      const ncd =
        (await readToml(join(home, "environments", "nodes-only", ".cec", "pyproject.toml"))).tool.comfydock;
      assert.equal(ncd.comfyui_commit, comfy.tags["v0.1.0"]);

      // Not a snapshot and not a bundle: a clear error instead of "not a valid gzip stream"; JSON that is
      // not a snapshot names the keys it lacks.
      await Deno.writeTextFile(join(root, "junk.bin"), "\u0000\u0001binary");
      let bad = await cli(["import", join(root, "junk.bin")], { env });
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /junk\.bin is neither a bundle .* nor a ComfyUI-Manager snapshot/);
      await Deno.writeTextFile(join(root, "wf.json"), JSON.stringify({ nodes: [], links: [] }));
      bad = await cli(["import", join(root, "wf.json")], { env });
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /wf\.json is not a ComfyUI-Manager snapshot: it has none of the keys comfyui/);
      await Deno.writeTextFile(join(root, "broken.json"), '{ "comfyui": ');
      bad = await cli(["import", join(root, "broken.json")], { env });
      assert.match(bad.stderr, /broken\.json is not valid JSON/);
      await Deno.writeTextFile(join(root, "badsha.json"), JSON.stringify({ comfyui: "main" }));
      bad = await cli(["import", join(root, "badsha.json")], { env });
      assert.match(bad.stderr, /badsha\.json: comfyui: must be a full 40-hex git commit \(got "main"\)/);

      // Export back: the Manager's JSON shape.
      const out = join(root, "out.json");
      const ex = await cli(["-e", "snap", "export", "--format", "manager-snapshot", "--out", out], { env });
      assert.equal(ex.code, 0, ex.stderr);
      const back = JSON.parse(await Deno.readTextFile(out));
      assert.deepEqual(Object.keys(back), [
        "comfyui",
        "git_custom_nodes",
        "cnr_custom_nodes",
        "file_custom_nodes",
        "pips",
      ]);
      assert.equal(back.comfyui, comfy.tags["v0.2.0"]);
      assert.deepEqual(back.cnr_custom_nodes, { "alpha-nodes": "1.1.0" });
      assert.deepEqual(back.git_custom_nodes[deltaRepo.url], {
        hash: deltaRepo.commits[0].sha,
        disabled: true,
      });
      assert.deepEqual(back.git_custom_nodes[gammaRepo.url], {
        hash: gammaRepo.commits[0].sha,
        disabled: false,
      });
      assert.equal(back.pips["alpha==1.1.0"], "");
      assert.equal(back.pips["torch==2.4.1+cpu"], "");
      assert.equal(back.pips["zeta-pkg==3.0.0"], "");
    } finally {
      await registry.close();
      await index.close();
    }
  });
});
