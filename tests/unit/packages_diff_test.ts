/** Pure parts of the packages provider: markers, lock graph, diff and rendering, metadata, conflict text. */
import assert from "node:assert/strict";
import { CdError, isCdError } from "../../lib/errors.ts";
import { editPyprojectText } from "../../reconcile/pyproject_edit.ts";
import {
  captureUserPackages,
  diffPackages,
  packageChanges,
  packageNotes,
  type PackagesObserved,
  sameVersion,
  summarizeChanges,
} from "../../providers/packages/diff.ts";
import { parseMetadataHeaders, parsePyvenvCfg } from "../../providers/packages/distinfo.ts";
import { parseLock, requiredPackages } from "../../providers/packages/lockfile.ts";
import { evaluateMarker, markerEnv } from "../../providers/packages/markers.ts";
import { conflictError, requirementName } from "../../providers/packages/resolve.ts";
import { parse } from "smol-toml";
import { pinTorchConstraints, torchUvConfig, torchUvTomlText } from "../../providers/packages/torch.ts";

const linux311 = markerEnv("3.11.7", "linux", "x86_64");
const win312 = markerEnv("3.12.1", "windows", "x86_64");

Deno.test("markers: platform, versions, and/or/parentheses, in, extras", () => {
  assert.equal(evaluateMarker("sys_platform == 'win32'", linux311), false);
  assert.equal(evaluateMarker("sys_platform == 'win32'", win312), true);
  assert.equal(evaluateMarker("python_full_version < '3.12'", linux311), true);
  assert.equal(evaluateMarker("python_full_version < '3.12'", win312), false);
  assert.equal(evaluateMarker("python_version >= '3.9' and python_version < '3.11.0'", linux311), false);
  assert.equal(evaluateMarker("python_version == '3.11.*'", linux311), true);
  assert.equal(
    evaluateMarker(
      "(platform_machine == 'x86_64' and sys_platform == 'linux') or (platform_machine == 'arm64' and sys_platform == 'darwin')",
      linux311,
    ),
    true,
  );
  assert.equal(evaluateMarker("'linux' in sys_platform", linux311), true);
  assert.equal(evaluateMarker("platform_system != 'Windows' and os_name == \"posix\"", linux311), true);
  assert.equal(evaluateMarker("platform_python_implementation != 'PyPy'", linux311), true);
  assert.equal(evaluateMarker("extra == 'Fast'", linux311, new Set(["fast"])), true);
  assert.equal(evaluateMarker("extra == 'fast'", linux311), false);
  assert.throws(
    () => evaluateMarker("sys_platform ==", linux311),
    (e) => isCdError(e) && e.code === "LOCK_INVALID",
  );
});

const LOCK = `version = 1
revision = 3
requires-python = ">=3.10"
resolution-markers = ["python_full_version >= '3.12'", "python_full_version < '3.12'"]

[[package]]
name = "env"
version = "0.1.0"
source = { virtual = "." }
dependencies = [{ name = "numpy", version = "1.26.4", source = { registry = "https://pypi.org/simple" }, marker = "python_full_version < '3.12'" },
  { name = "numpy", version = "2.1.0", source = { registry = "https://pypi.org/simple" }, marker = "python_full_version >= '3.12'" },
  { name = "requests", extra = ["socks"] }]

[package.dev-dependencies]
node-a = [{ name = "colorama", marker = "sys_platform == 'win32'" }, { name = "Pillow" }]

[[package]]
name = "numpy"
version = "1.26.4"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "numpy"
version = "2.1.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "requests"
version = "2.32.3"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "urllib3" }]

[package.optional-dependencies]
socks = [{ name = "pysocks" }]

[[package]]
name = "urllib3"
version = "2.2.3"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "pysocks"
version = "1.7.1"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "colorama"
version = "0.4.6"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "pillow"
version = "11.0.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "unused"
version = "1.0"
source = { registry = "https://pypi.org/simple" }
`;

Deno.test("lock graph: forks by python version, platform markers, extras, groups; root and unreachable skipped", () => {
  const lock = parseLock(LOCK);
  const versions = (env: ReturnType<typeof markerEnv>) =>
    Object.fromEntries(Object.entries(requiredPackages(lock, env)).map(([n, p]) => [n, p.version]));
  assert.deepEqual(versions(linux311), {
    numpy: "1.26.4",
    requests: "2.32.3",
    urllib3: "2.2.3",
    pysocks: "1.7.1",
    pillow: "11.0.0",
  });
  assert.deepEqual(versions(win312), {
    numpy: "2.1.0",
    requests: "2.32.3",
    urllib3: "2.2.3",
    pysocks: "1.7.1",
    colorama: "0.4.6",
    pillow: "11.0.0",
  });
});

Deno.test("parseLock: invalid TOML and wrong shapes are LOCK_INVALID with a hint", () => {
  assert.throws(
    () => parseLock("version = 1\n[[package]\n"),
    (e) => isCdError(e) && e.code === "LOCK_INVALID",
  );
  assert.throws(() => parseLock('version = "x"'), (e) => isCdError(e) && /version/.test(e.message));
});

function observed(o: Partial<PackagesObserved>): PackagesObserved {
  return {
    venv: { state: "ok", problem: null, python: "3.11.7" },
    lock: "current",
    target: {},
    installed: {},
    broken: [],
    damaged: {},
    shared: {},
    python: null,
    unchecked: null,
    ...o,
  };
}

Deno.test("diff: in sync -> no action; drift -> one update rendered with counts and names", () => {
  assert.deepEqual(diffPackages("3.11", observed({ target: { a: "1.0" }, installed: { a: "1.0.0" } })), []);
  const [a] = diffPackages(
    "3.11",
    observed({
      target: { torch: "2.5.0", numpy: "2.1.0", pillow: "11.0.0", rich: "13.0" },
      installed: { torch: "2.4.1", numpy: "2.1.0", old: "0.1" },
    }),
  );
  assert.equal(a.kind, "update");
  assert.equal(a.address, "packages");
  assert.equal(
    a.reason,
    "+2 -1 ~1 (torch 2.4.1 -> 2.5.0, pillow 11.0.0, rich 13.0, ...); the venv differs from the lock",
  );
  assert.deepEqual(a.details, ["+ pillow 11.0.0", "+ rich 13.0", "- old 0.1", "~ torch 2.4.1 -> 2.5.0"]);
  assert.deepEqual(a.after, {
    python: "3.11",
    relock: false,
    recreate: false,
    reinstall: [],
    refresh: [],
    packages: 4,
  });
});

Deno.test("diff: stale or missing lock re-locks; missing/corrupt/wrong-python venv is create/replace", () => {
  const [stale] = diffPackages(
    "3.11",
    observed({ lock: "stale", target: { a: "1" }, installed: { a: "1" } }),
  );
  assert.equal(stale.reason, "no package changes; uv.lock is out of date with pyproject.toml");
  assert.equal((stale.after as { relock: boolean }).relock, true);
  const [created] = diffPackages(
    "3.12",
    observed({
      venv: { state: "missing", problem: null, python: null },
      lock: "missing",
      target: { a: "1" },
      python: { version: "3.12.1", path: "/usr/bin/python3.12" },
    }),
  );
  assert.equal(created.kind, "create");
  assert.equal(created.reason, "no venv: create it with Python 3.12 and install 1 locked package");
  assert.deepEqual(created.details, ["python: /usr/bin/python3.12 (3.12.1)", "no uv.lock yet: lock first"]);
  const [corrupt] = diffPackages(
    "3.11",
    observed({ venv: { state: "corrupt", problem: "pyvenv.cfg is missing", python: null } }),
  );
  assert.equal(corrupt.kind, "replace");
  const [wrong] = diffPackages("3.12", observed({}));
  assert.equal(wrong.kind, "replace");
  assert.match(wrong.reason, /Python 3\.11\.7 but pyproject asks for 3\.12/);
  const [broken] = diffPackages("3.11", observed({ broken: ["Zeta_Pkg-3.0.0.dist-info"] }));
  assert.deepEqual((broken.after as { reinstall: string[] }).reinstall, ["zeta-pkg"]);
});

Deno.test("capture: packages installed by hand become pins in the user group", () => {
  const o = observed({ target: { a: "1" }, installed: { a: "1", rich: "13.9.4", tqdm: "4.66.0" } });
  assert.deepEqual(captureUserPackages(["Rich>=13"], o), {
    path: ["dependency-groups", "user"],
    value: ["Rich>=13", "tqdm==4.66.0"],
  });
  assert.equal(captureUserPackages([], observed({ target: { a: "1" }, installed: { a: "1" } })), null);
});

Deno.test("versions: trailing zeros equal, local builds must match", () => {
  assert.ok(sameVersion("2.5", "2.5.0"));
  assert.ok(sameVersion("2.5.0+CPU", "2.5.0+cpu"));
  assert.ok(!sameVersion("2.5.0+cpu", "2.5.0+cu124"));
  assert.ok(!sameVersion("2.5.0rc1", "2.5.0"));
  assert.equal(summarizeChanges(packageChanges({ a: "1" }, { a: "1.0" })), "");
});

Deno.test("metadata and pyvenv.cfg readers", () => {
  assert.deepEqual(
    parseMetadataHeaders("Metadata-Version: 2.1\nName: Zeta_Pkg\nVersion: 3.0.0\n\nName: not-a-header\n"),
    { name: "Zeta_Pkg", version: "3.0.0" },
  );
  assert.deepEqual(parseMetadataHeaders("Metadata-Version: 2.1\n\nVersion: 1"), {
    name: undefined,
    version: undefined,
  });
  assert.equal(parsePyvenvCfg("home = /usr/bin\nversion_info = 3.11.7\n").version_info, "3.11.7");
});

Deno.test("conflict text from uv: packages and node groups are named", () => {
  const uvText = `uv lock failed (exit 1):
error: No solution found when resolving dependencies
  cause: Because all versions of greedy-node-lib depend on torch==2.5.0 and my-env:greedy depends on greedy-node-lib, we can conclude that my-env:greedy depends on torch==2.5.0.
         And because your project depends on torch==2.4.1, we can conclude that your project and my-env:greedy are incompatible.`;
  const pyproject =
    `[project]\nname = "my-env"\ndependencies = ["torch"]\n[dependency-groups]\ngreedy = ["greedy-node-lib"]\nother = ["rich"]\n`;
  const e = conflictError(new CdError("UV_FAILED", uvText), pyproject);
  assert.ok(isCdError(e) && e.code === "PACKAGES_CONFLICT");
  assert.match(
    e.message,
    /^Python requirements do not resolve: conflicting packages greedy-node-lib, torch; requested by node group greedy\n/,
  );
  assert.match(e.message, /Because all versions of greedy-node-lib/);
  const other = new CdError("UV_FAILED", "uv lock failed:\nerror: Failed to fetch https://x");
  assert.equal(conflictError(other, pyproject), other, "non-resolution failures keep their own code");
  assert.equal(requirementName("Torch[cuda]>=2; sys_platform == 'linux'"), "torch");
});

Deno.test("torch: uv config edits apply to a pyproject and keep other indexes and constraints", async () => {
  const text = `[project]
name = "e"
dependencies = ["torch"]

[[tool.uv.index]]
name = "mirror"
url = "https://mirror.example/simple"

[tool.uv]
constraint-dependencies = ["numpy<2"]

[tool.comfydock]
comfyui_version = "v0.3.0"
comfyui_commit = "${"0".repeat(40)}"
python_version = "3.12"
`;
  const edits = torchUvConfig("cu124", {
    existingIndexes: [{ name: "mirror", url: "https://mirror.example/simple" }],
    existingConstraints: ["numpy<2", "torch==2.3.0"],
    torchVersions: { torch: "2.5.0+cu124", torchvision: "0.20.0+cu124" },
  });
  const out = await editPyprojectText(text, edits);
  const uv = JSON.parse(JSON.stringify(out.data.tool.uv)) as Record<string, unknown>;
  assert.deepEqual(uv.index, [
    { name: "mirror", url: "https://mirror.example/simple" },
    { name: "pytorch", url: "https://download.pytorch.org/whl/cu124", explicit: true },
  ]);
  assert.deepEqual(uv.sources, {
    torch: { index: "pytorch" },
    torchvision: { index: "pytorch" },
    torchaudio: { index: "pytorch" },
  });
  assert.deepEqual(uv["constraint-dependencies"], ["numpy<2", "torch==2.5.0", "torchvision==0.20.0"]);
  assert.equal(out.data.tool.comfydock.torch_backend, "cu124");
  assert.deepEqual(pinTorchConstraints({ numpy: "2" }), []);
  assert.throws(() => torchUvConfig("cuda"), (e) => isCdError(e) && e.code === "TORCH_BACKEND_INVALID");
  assert.match(JSON.stringify(torchUvConfig("rocm6.2")), /whl\/rocm6\.2/);
  const fresh = parse(
    `[project]\nname = "e"\n` + torchUvTomlText("cpu", { torchVersions: { torch: "2.5.0+cpu" } }),
  );
  assert.deepEqual(JSON.parse(JSON.stringify(fresh.tool)), {
    uv: {
      "constraint-dependencies": ["torch==2.5.0"],
      index: [{ name: "pytorch", url: "https://download.pytorch.org/whl/cpu", explicit: true }],
      sources: {
        torch: { index: "pytorch" },
        torchvision: { index: "pytorch" },
        torchaudio: { index: "pytorch" },
      },
    },
  });
});

Deno.test("diff: a dist whose files share a module with one that leaves is reinstalled; unchecked is a note", () => {
  const [a] = diffPackages(
    "3.11",
    observed({
      target: { "opencv-python": "4.10", numpy: "2" },
      installed: { "opencv-python": "4.10", "opencv-contrib-python": "4.10", numpy: "2" },
      shared: { cv2: ["opencv-contrib-python", "opencv-python"] },
    }),
  );
  assert.deepEqual((a.after as { reinstall: string[] }).reinstall, ["opencv-python"]);
  assert.ok(
    a.details!.includes(
      "! reinstall opencv-python: shares cv2/ with opencv-contrib-python, which this change removes",
    ),
  );
  const o = observed({ lock: "stale", unchecked: "uv.lock could not be checked without building: x" });
  assert.deepEqual(diffPackages("3.11", o), [], "an unchecked lock is not a re-lock");
  assert.deepEqual(packageNotes(o), [
    "packages: uv.lock could not be checked without building: x; with --no-build, packages that have no wheel " +
    "cannot be checked",
  ]);
});
