/**
 * Where `create` and `node add` take things from, as a user sets it (README "Everyday use", "Torch",
 * "Configuration"): the workspace's default place, `create --comfyui-url / --torch-index / --torch-backend
 * pypi|auto`, `config set comfyui_url / registry_url / default_python / default_torch_backend`, and the
 * torch build `list` shows. ComfyUI is the fixture repo, packages come from a PEP 503 index on 127.0.0.1 (a
 * default index, and torch indexes this machine reaches as its `torch_index_mirror`), the registry is on
 * 127.0.0.1 and `nvidia-smi` is a script.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { parse } from "smol-toml";
import { cli, initOffline, jsonData } from "../../fixtures/cli.ts";
import { buildComfyUIRepo } from "../../fixtures/comfyui_repo.ts";
import { servePyIndex } from "../../fixtures/pyindex.ts";
import { startRegistryServer } from "../../fixtures/registry_server.ts";
import { tempRoot } from "../../fixtures/tmp.ts";
import { otherPython, ownUvIndex, testNeeds, testPython, useLocalUv } from "../../fixtures/tools.ts";
import { testSettings } from "../../fixtures/app.ts";
import { buildWheelhouse, STANDARD_WHEELS } from "../../fixtures/wheels.ts";
import { exists } from "../../lib/fsx.ts";
import { run } from "../../lib/proc.ts";
import { pickPython } from "../../workspace/new_cec.ts";

await useLocalUv();
// These tests serve their own index: the user's uv index settings must not send uv elsewhere.
ownUvIndex();
// What is under test is the workspace config and the flags: the variables that would override them (and the
// workspace a user's shell points at) must not reach the CLI processes, which inherit this one's environment.
for (const v of ["COMFYDOCK_HOME", "COMFYDOCK_COMFYUI_URL", "COMFYDOCK_REGISTRY_URL"]) Deno.env.delete(v);

const PY = await testPython();
const root = await tempRoot("comfydock-e2e-settings-");
const comfy = await buildComfyUIRepo(join(root, "ComfyUI"), { requirements: "torch\nalpha\n" });
// torch 2.4.1 and 2.5.0 on the default index (pypi); each torch index holds its own build of 2.5.0, so the
// version in the venv tells which index it came from.
const simple = await buildWheelhouse(join(root, "simple"), STANDARD_WHEELS);
const torchIndex = async (label: string) =>
  await buildWheelhouse(join(root, label), [{ name: "torch", version: `2.5.0+${label}` }]);
const index = await servePyIndex({
  simple,
  cpu: await torchIndex("cpu"),
  cu126: await torchIndex("cu126"),
  // Not a PyTorch backend's name: only `--torch-index` can point here.
  mytorch: await torchIndex("mine"),
});
const registry = await startRegistryServer([{ id: "alpha-nodes", versions: [{ version: "1.1.0" }] }]);

// This machine's PATH without any real nvidia-smi: `auto` sees a machine without a GPU unless a test puts
// its fake one first.
const noGpuPath = (Deno.env.get("PATH") ?? "").split(delimiter)
  .filter((d) => d && !existsSync(join(d, "nvidia-smi")))
  .join(delimiter);
const gpuBin = join(root, "gpu-bin");
await Deno.mkdir(gpuBin);
// What nvidia-smi prints on a machine whose driver supports CUDA 12.6 (its header, trimmed).
await Deno.writeTextFile(
  join(gpuBin, "nvidia-smi"),
  `#!/bin/sh
cat <<'EOF'
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 560.35.03              Driver Version: 560.35.03      CUDA Version: 12.6     |
|-----------------------------------------+------------------------+----------------------+
EOF
`,
  { mode: 0o755 },
);

/** A workspace of its own (`init`, the torch mirror on the local index) and the variables that reach it. */
async function workspace(name: string): Promise<Record<string, string>> {
  const env = {
    COMFYDOCK_HOME: join(root, name),
    HOME: join(root, "home"),
    PATH: noGpuPath,
    COMFYDOCK_HTTP_RETRY_BASE_MS: "5",
    UV_DEFAULT_INDEX: `${index.url}/simple`,
    UV_PYTHON_DOWNLOADS: "never",
    UV_HTTP_RETRIES: "0",
    // Nothing here may reach the internet: a setting or flag that is not honoured falls back to github.com
    // or api.comfy.org, which then fails at once through this dead proxy instead of being reached.
    HTTPS_PROXY: "http://127.0.0.1:9",
    https_proxy: "http://127.0.0.1:9",
    NO_PROXY: "127.0.0.1,localhost",
    no_proxy: "127.0.0.1,localhost",
  };
  await initOffline(env, index.url);
  return env;
}

// deno-lint-ignore no-explicit-any -- tests read a few keys of generated TOML
const pyproject = async (env: Record<string, string>, name: string): Promise<any> =>
  // Plain objects (smol-toml's tables have no prototype), for deepEqual.
  JSON.parse(JSON.stringify(
    parse(await Deno.readTextFile(join(env.COMFYDOCK_HOME, "environments", name, ".cec", "pyproject.toml"))),
  ));

/** The `[[tool.uv.index]]` of `--torch-backend B`: the canonical PyTorch index, whatever mirror this machine uses. */
const pytorchIndex = (backend: string) => [
  { name: "pytorch", url: `https://download.pytorch.org/whl/${backend}`, explicit: true },
];

async function create(env: Record<string, string>, name: string, ...flags: string[]) {
  const r = await cli(["create", name, ...flags, "--json"], { env });
  assert.equal(r.code, 0, r.stderr);
  return jsonData(r);
}

/** ComfyUI from the fixture repo, the test's Python: what every create here has in common. */
const FIXTURE = ["--comfyui-url", comfy.url, "--python", PY.minor];
const flagsEnv = await workspace("ws-flags");
const configEnv = await workspace("ws-config");

Deno.test("init without COMFYDOCK_HOME makes the workspace in ~/.comfydock_workspace, where later commands find it", async () => {
  const home = join(root, "fresh-home");
  await Deno.mkdir(home);
  const env = { HOME: home };
  const ws = join(home, ".comfydock_workspace");
  let r = await cli(["init", "--help"], { env });
  assert.match(r.stdout, /default: \$COMFYDOCK_HOME or ~\/\.comfydock_workspace/);
  r = await cli(["init"], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.includes(`Initialized a ComfyDock workspace at ${ws}\n`), r.stdout);
  assert.ok(await exists(join(ws, ".metadata", "workspace.json")));
  r = await cli(["config", "set", "default_python", "3.11"], { env });
  assert.equal(r.code, 0, r.stderr);
  const meta = JSON.parse(await Deno.readTextFile(join(ws, ".metadata", "workspace.json")));
  assert.equal(meta.settings.default_python, "3.11", "config wrote to the workspace init made");
  // Nothing else in HOME: no second default place.
  assert.deepEqual((await Array.fromAsync(Deno.readDir(home))).map((e) => e.name), [".comfydock_workspace"]);
});

Deno.test("create --comfyui-url takes ComfyUI from that repository; --torch-backend pypi writes no PyTorch index", async () => {
  const created = await create(flagsEnv, "pypi", ...FIXTURE, "--torch-backend", "pypi");
  assert.equal(created.comfyui_url, comfy.url);
  assert.equal(created.comfyui_version, "v0.10.0");
  const p = await pyproject(flagsEnv, "pypi");
  assert.equal(p.tool.comfydock.comfyui_url, comfy.url);
  assert.equal(p.tool.comfydock.torch_backend, "pypi");
  assert.equal(p.tool.uv.index, undefined, "no [[tool.uv.index]] at all");
  assert.equal(p.tool.uv.sources, undefined);
  assert.deepEqual([created.torch_backend, created.torch], ["pypi", "2.5.0"], "torch from the default index");
});

Deno.test("create --torch-index URL writes that index into .cec as given, and torch comes from it", async () => {
  const url = `${index.url}/mytorch`;
  const created = await create(flagsEnv, "own", ...FIXTURE, "--torch-index", url);
  const p = await pyproject(flagsEnv, "own");
  assert.deepEqual(p.tool.uv.index, [{ name: "pytorch", url, explicit: true }]);
  assert.equal(p.tool.uv.sources.torch.index, "pytorch");
  assert.equal(created.torch, "2.5.0+mine");
});

Deno.test("create --torch-backend auto: cpu on a machine without nvidia-smi", async () => {
  const created = await create(flagsEnv, "nogpu", ...FIXTURE, "--torch-backend", "auto");
  assert.equal(created.torch_backend, "cpu");
  const p = await pyproject(flagsEnv, "nogpu");
  assert.deepEqual(p.tool.uv.index, pytorchIndex("cpu"));
  assert.equal(created.torch, "2.5.0+cpu");
});

Deno.test("create --torch-backend auto: the CUDA build of the driver when nvidia-smi answers; list shows the venv's torch", async () => {
  const env = { ...flagsEnv, PATH: `${gpuBin}${delimiter}${noGpuPath}` };
  const created = await create(env, "gpu", ...FIXTURE, "--torch-backend", "auto");
  assert.equal(created.torch_backend, "cu126");
  const p = await pyproject(env, "gpu");
  assert.deepEqual(p.tool.uv.index, pytorchIndex("cu126"));
  assert.equal(created.torch, "2.5.0+cu126");

  const listed = async () => {
    const r = await cli(["list"], { env });
    assert.equal(r.code, 0, r.stderr);
    const j = jsonData(await cli(["list", "--json"], { env }));
    const gpu = j.environments.find((e: { name: string }) => e.name === "gpu");
    return {
      line: r.stdout.split("\n").find((l) => / gpu /.test(l)),
      torch: gpu.torch,
      backend: gpu.torch_backend,
    };
  };
  let l = await listed();
  assert.match(l.line ?? "", /torch 2\.5\.0\+cu126 \(cu126\)$/);
  assert.deepEqual([l.torch, l.backend], ["2.5.0+cu126", "cu126"]);
  // What the venv holds, not what .cec or its lock say: a torch installed by hand is what list shows.
  const python = join(flagsEnv.COMFYDOCK_HOME, "environments", "gpu", ".venv", "bin", "python");
  await run(Deno.env.get("COMFYDOCK_UV")!, [
    "pip",
    "install",
    "--python",
    python,
    "--index-url",
    `${index.url}/simple`,
    "--no-deps",
    "torch==2.4.1",
  ], { env: { UV_CACHE_DIR: join(root, "uv-cache") } });
  l = await listed();
  assert.match(l.line ?? "", /torch 2\.4\.1 \(cu126\)$/);
  assert.deepEqual([l.torch, l.backend], ["2.4.1", "cu126"]);
});

/**
 * The config workspace with comfyui_url and default_torch_backend set, and environment 'conf' created from
 * them: made once, by whichever of the tests below runs first (each also runs alone with a filter).
 */
let configured: Promise<Record<string, unknown>> | null = null;
function configuredWorkspace(): Promise<Record<string, unknown>> {
  return configured ??= (async () => {
    for (const [k, v] of [["comfyui_url", comfy.url], ["default_torch_backend", "cu126"]]) {
      const r = await cli(["config", "set", k, v], { env: configEnv });
      assert.equal(r.code, 0, r.stderr);
    }
    // No nvidia-smi here: without the setting, create would pick cpu.
    return await create(configEnv, "conf", "--python", PY.minor);
  })();
}

Deno.test("config set comfyui_url and default_torch_backend: a later create uses them", async () => {
  const env = configEnv;
  const created = await configuredWorkspace();
  assert.equal(created.comfyui_url, comfy.url);
  const p = await pyproject(env, "conf");
  assert.equal(p.tool.comfydock.comfyui_url, comfy.url);
  assert.equal(p.tool.comfydock.torch_backend, "cu126");
  assert.deepEqual(p.tool.uv.index, pytorchIndex("cu126"));
  assert.deepEqual([created.torch_backend, created.torch], ["cu126", "2.5.0+cu126"]);
});

Deno.test("config set registry_url: node add asks that registry", async () => {
  const env = configEnv;
  await configuredWorkspace(); // environment 'conf' to add the node to
  let r = await cli(["config", "set", "registry_url", registry.url], { env });
  assert.equal(r.code, 0, r.stderr);
  const before = registry.requests.length;
  r = await cli(["-e", "conf", "node", "add", "alpha-nodes", "--no-apply", "--yes"], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(
    registry.requests.slice(before).some((q) => /^GET \/nodes\/alpha-nodes\b/.test(q)),
    registry.requests.join("\n"),
  );
  const p = await pyproject(env, "conf");
  assert.equal(p.tool.comfydock.nodes["alpha-nodes"].version, "1.1.0");
});

// default_python needs a Python other than the one create takes without it (3.12 when there is one).
const fallback = await pickPython(testSettings());
const fallbackMinor = fallback.version.split(".").slice(0, 2).join(".");
const chosen = [PY, await otherPython()].find((p) => p && p.minor !== fallbackMinor) ?? null;

testNeeds(
  chosen ? null : "a second Python 3.X",
  "config set default_python: a later create uses that Python",
  async () => {
    // The config workspace (its ComfyUI mirror already cloned), its other settings kept.
    const env = configEnv;
    await configuredWorkspace();
    const r = await cli(["config", "set", "default_python", chosen!.minor], { env });
    assert.equal(r.code, 0, r.stderr);
    const created = await create(env, "py");
    assert.equal(created.python_version, chosen!.minor);
    assert.equal((await pyproject(env, "py")).tool.comfydock.python_version, chosen!.minor);
    const venvPython = join(env.COMFYDOCK_HOME, "environments", "py", ".venv", "bin", "python");
    const v = await run(venvPython, ["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]);
    assert.equal(v.stdout.trim(), chosen!.minor, "the venv runs that Python");
  },
);
