/**
 * Pure parts of issues 18/19 for packages: torch pins from a lock, the error naming node and versions,
 * mirror URL translation of uv.lock, uv's index variables, unreachable-index errors, resolve-as-of dates,
 * RECORD parsing and the damage/shared lines of the plan.
 */
import assert from "node:assert/strict";
import { CdError, isCdError } from "../../lib/errors.ts";
import { NO_INDEX_SETTINGS, type PackageIndexSettings } from "../../lib/settings.ts";
import { excludeNewerEdits, parseAsOf } from "../../providers/packages/as_of.ts";
import { damageText } from "../../providers/packages/diff.ts";
import {
  toCanonical,
  toMirror,
  unreachableIndexError,
  urlMirrors,
  uvIndexEnv,
} from "../../providers/packages/indexes.ts";
import { parseRecord } from "../../providers/packages/record.ts";
import {
  backendOfIndex,
  lockedTorch,
  pinnedTorch,
  torchPinEdit,
  torchUvConfig,
  unpinTorchEdit,
} from "../../providers/packages/torch.ts";

/** A uv.lock of project `e` with groups (node ids) -> direct dependencies, and package versions. */
function lock(
  groups: Record<string, string[]>,
  versions: Record<string, string>,
  deps: Record<string, string[]> = {},
) {
  const pkgs = Object.entries(versions).map(([n, v]) =>
    `[[package]]\nname = "${n}"\nversion = "${v}"\nsource = { registry = "https://pypi.org/simple" }\n` +
    `dependencies = [${(deps[n] ?? []).map((d) => `{ name = "${d}" }`).join(", ")}]\n`
  );
  const dev = Object.entries(groups).map(([g, ds]) =>
    `${g} = [${ds.map((d) => `{ name = "${d}" }`).join(", ")}]`
  );
  return `version = 1\nrevision = 3\nrequires-python = ">=3.11"\n\n` +
    `[[package]]\nname = "e"\nversion = "0.1.0"\nsource = { virtual = "." }\n\n[package.dev-dependencies]\n${
      dev.join("\n")
    }\n\n${pkgs.join("\n")}`;
}

const PYPROJECT = `[project]
name = "e"
dependencies = []

[dependency-groups]
video = ["xformers==0.0.28.post3"]
user = ["rich"]

[tool.uv]
constraint-dependencies = ["numpy<3", "torch==2.15.0"]
`;

Deno.test("torch pins: the locked torch family goes to constraint-dependencies, other constraints kept", () => {
  const locked = lock({ user: ["rich"] }, { torch: "2.15.0+cu132", torchvision: "0.30.0+cu132", rich: "13" });
  assert.deepEqual(lockedTorch(locked), { torch: "2.15.0+cu132", torchvision: "0.30.0+cu132" });
  assert.deepEqual(pinnedTorch(PYPROJECT), { torch: "2.15.0" });
  const edit = torchPinEdit(null, locked, PYPROJECT);
  assert.deepEqual(edit, {
    path: ["tool", "uv", "constraint-dependencies"],
    value: ["numpy<3", "torch==2.15.0", "torchvision==0.30.0"],
  });
  // Already pinned exactly: nothing to write.
  const pinnedText = PYPROJECT.replace('"torch==2.15.0"', '"torch==2.15.0", "torchvision==0.30.0"');
  assert.equal(torchPinEdit(locked, locked, pinnedText), null);
  // No torch in the lock: no pins.
  assert.equal(torchPinEdit(null, lock({}, { rich: "13" }), "[project]\nname = 'e'\n"), null);
  assert.deepEqual(unpinTorchEdit(PYPROJECT), {
    path: ["tool", "uv", "constraint-dependencies"],
    value: ["numpy<3"],
  });
  assert.equal(unpinTorchEdit("[project]\nname = 'e'\n"), null);
});

Deno.test("torch pins: a change that moves torch names the node, what it needs and both versions", () => {
  const before = lock({ user: ["rich"] }, { torch: "2.15.0+cu132", rich: "13" });
  const after = lock(
    { user: ["rich"], video: ["xformers"] },
    { torch: "2.5.1+cu124", xformers: "0.0.28.post3", rich: "13" },
    { xformers: ["torch"] },
  );
  const err = torchPinEdit(before, after, PYPROJECT);
  assert.ok(err instanceof CdError && err.code === "TORCH_CHANGE");
  assert.equal(
    err.message,
    "node 'video' needs xformers==0.0.28.post3, which needs torch 2.5.1; the environment pins torch 2.15.0",
  );
  assert.match(err.hint!, /pick a version of 'video' that works with it/);
  assert.match(err.hint!, /--allow-torch-change or 'comfydock comfyui update'/);
  // Without pins, the old lock's torch is the environment's.
  const unpinned = PYPROJECT.replace(', "torch==2.15.0"', "");
  assert.ok(torchPinEdit(before, after, unpinned) instanceof CdError);
  // On purpose: the new versions are pinned.
  assert.deepEqual(torchPinEdit(before, after, PYPROJECT, { allowChange: true }), {
    path: ["tool", "uv", "constraint-dependencies"],
    value: ["numpy<3", "torch==2.5.1"],
  });
  // ComfyUI's own requirements moving torch are named as such.
  const viaProject = lock({}, { torch: "2.5.1" }).replace(
    'source = { virtual = "." }',
    'source = { virtual = "." }\ndependencies = [{ name = "torch" }]',
  );
  const e2 = torchPinEdit(before, viaProject, "[project]\nname = 'e'\n");
  assert.ok(isCdError(e2));
  assert.equal(e2.message, "ComfyUI's requirements need torch 2.5.1; the environment pins torch 2.15.0");
  // The same public version with another local build (a backend switch) is not a move.
  assert.equal(torchPinEdit(before, lock({}, { torch: "2.15.0+cpu" }), unpinned) instanceof CdError, false);
});

Deno.test("torch config: pypi writes no index, --torch-index is verbatim, its backend is read from the URL", () => {
  const pypi = torchUvConfig("pypi", { existingIndexes: [{ name: "corp", url: "https://corp/simple" }] });
  assert.deepEqual(pypi, [
    { path: ["tool", "uv", "index"], value: [{ name: "corp", url: "https://corp/simple" }] },
    { path: ["tool", "comfydock", "torch_backend"], value: "pypi" },
  ]);
  assert.deepEqual(torchUvConfig("pypi"), [{ path: ["tool", "comfydock", "torch_backend"], value: "pypi" }]);
  const custom = torchUvConfig("custom", { indexUrl: "https://wheels.example/torch/stable" });
  assert.deepEqual(custom[0].value, [{
    name: "pytorch",
    url: "https://wheels.example/torch/stable",
    explicit: true,
  }]);
  assert.equal(backendOfIndex("https://mirror.example/whl/cu124/"), "cu124");
  assert.equal(backendOfIndex("https://wheels.example/torch/stable"), "custom");
  assert.throws(() => torchUvConfig("custom"), (e) => isCdError(e) && e.code === "TORCH_BACKEND_INVALID");
});

const MIRRORS: PackageIndexSettings = {
  ...NO_INDEX_SETTINGS,
  torchMirror: "https://mirror.corp/pytorch-whl/",
  defaultIndex: "https://mirror.corp/pypi/web/simple",
  extraIndexes: [{ name: "corp", url: "https://pkgs.corp/simple" }],
  credentials: {
    pytorch: { username: "me", password: "s3cret" },
    default: { username: "u", password: "p w" },
  },
};

const CANONICAL_LOCK = `[[package]]
name = "torch"
version = "2.5.1+cpu"
source = { registry = "https://download.pytorch.org/whl/cpu" }
wheels = [
    { url = "https://download.pytorch.org/whl/cpu/torch-2.5.1%2Bcpu-cp311-cp311-linux_x86_64.whl", hash = "sha256:ab" },
]

[[package]]
name = "rich"
version = "13.9.4"
source = { registry = "https://pypi.org/simple" }
sdist = { url = "https://files.pythonhosted.org/packages/ab/cd/rich-13.9.4.tar.gz", hash = "sha256:cd" }

[package.metadata]
requires-dist = [{ name = "torch", index = "https://download.pytorch.org/whl/cpu" }]
`;

Deno.test("mirrors: uv sees the mirror's URLs, .cec/uv.lock keeps the canonical ones", () => {
  const m = urlMirrors(MIRRORS);
  assert.deepEqual(m, [
    { canonical: "https://download.pytorch.org/whl", mirror: "https://mirror.corp/pytorch-whl" },
    { canonical: "https://pypi.org/simple", mirror: "https://mirror.corp/pypi/web/simple" },
    { canonical: "https://files.pythonhosted.org/packages", mirror: "https://mirror.corp/pypi/web/packages" },
  ]);
  const mirrored = toMirror(CANONICAL_LOCK, m);
  assert.ok(
    !mirrored.includes("pytorch.org") && !mirrored.includes("pypi.org") && !mirrored.includes("pythonhosted"),
  );
  assert.match(mirrored, /registry = "https:\/\/mirror\.corp\/pytorch-whl\/cpu"/);
  assert.match(
    mirrored,
    /url = "https:\/\/mirror\.corp\/pypi\/web\/packages\/ab\/cd\/rich-13\.9\.4\.tar\.gz"/,
  );
  assert.equal(toCanonical(mirrored, m), CANONICAL_LOCK);
  // A prefix only matches whole path segments.
  assert.equal(toMirror('x = "https://pypi.org/simplex"', m), 'x = "https://pypi.org/simplex"');
  assert.deepEqual(urlMirrors(NO_INDEX_SETTINGS), []);
});

Deno.test("mirrors: the project's copy names the mirror, explicit kept; uv's variables replace PyPI, add extras, carry credentials", () => {
  const pyproject = `[[tool.uv.index]]\nname = "pytorch"\nurl = "https://download.pytorch.org/whl/cu124"\n` +
    `explicit = true\n\n[[tool.uv.index]]\nname = "team"\nurl = "https://team.example/simple"\n`;
  assert.equal(
    toMirror(pyproject, urlMirrors(MIRRORS)),
    pyproject.replace("https://download.pytorch.org/whl/cu124", "https://mirror.corp/pytorch-whl/cu124"),
  );
  assert.deepEqual(uvIndexEnv(MIRRORS, pyproject), {
    UV_INDEX: "corp=https://pkgs.corp/simple",
    UV_DEFAULT_INDEX: "https://u:p%20w@mirror.corp/pypi/web/simple",
    UV_INDEX_PYTORCH_USERNAME: "me",
    UV_INDEX_PYTORCH_PASSWORD: "s3cret",
  });
  assert.deepEqual(uvIndexEnv(NO_INDEX_SETTINGS, pyproject), {});
});

Deno.test("an unreachable index is named, with the settings that route around it", () => {
  const uvText = `uv lock failed (exit 2):
error: Request failed after 3 retries
  Caused by: Failed to fetch: \`https://download.pytorch.org/whl/cu124/torch/\`
  Caused by: error sending request for url (https://download.pytorch.org/whl/cu124/torch/)
  Caused by: client error (Connect)
  Caused by: dns error`;
  const pyproject = `[[tool.uv.index]]\nname = "pytorch"\nurl = "https://download.pytorch.org/whl/cu124"\n`;
  const e = unreachableIndexError(new CdError("UV_FAILED", uvText), NO_INDEX_SETTINGS, pyproject);
  assert.ok(isCdError(e) && e.code === "INDEX_UNREACHABLE");
  assert.equal(
    e.message,
    "could not reach the 'pytorch' index of .cec (https://download.pytorch.org/whl/cu124) (client error " +
      "(Connect); uv asked for https://download.pytorch.org/whl/cu124/torch/)",
  );
  assert.match(e.hint!, /comfydock config set torch_index_mirror URL/);
  assert.match(e.hint!, /--torch-backend pypi/);
  assert.match(e.hint!, /Behind a mirror or firewall/);
  const viaMirror = unreachableIndexError(
    new CdError(
      "UV_FAILED",
      uvText.replaceAll("https://download.pytorch.org/whl", "https://mirror.corp/pytorch-whl"),
    ),
    MIRRORS,
    pyproject,
  );
  assert.match(
    (viaMirror as CdError).message,
    /through the mirror https:\/\/mirror\.corp\/pytorch-whl\/cu124/,
  );
  const other = new CdError("UV_FAILED", "error: No solution found when resolving dependencies");
  assert.equal(unreachableIndexError(other, NO_INDEX_SETTINGS, pyproject), other);
});

Deno.test("resolve as of: dates become uv's UTC timestamps; the torch family from its index is exempt", () => {
  assert.equal(parseAsOf("2025-10-01"), "2025-10-01T00:00:00Z");
  assert.equal(parseAsOf("2025-10-06T19:11:04+02:00"), "2025-10-06T17:11:04Z");
  assert.throws(() => parseAsOf("last week"), (e) => isCdError(e) && e.code === "RESOLVE_AS_OF_INVALID");
  assert.deepEqual(excludeNewerEdits("2025-10-01T00:00:00Z", true), [
    { path: ["tool", "uv", "exclude-newer"], value: "2025-10-01T00:00:00Z" },
    {
      path: ["tool", "uv", "exclude-newer-package"],
      value: { torch: false, torchvision: false, torchaudio: false },
    },
  ]);
  assert.equal(excludeNewerEdits("2025-10-01T00:00:00Z", false).length, 1);
});

Deno.test("RECORD: quoted paths, missing hashes and sizes; damage lines", () => {
  assert.deepEqual(
    parseRecord('a/b.py,sha256=AbC_-,12\n"x,y.txt",sha256=Z,3\nd-1.0.dist-info/RECORD,,\n\n'),
    [
      { path: "a/b.py", sha256: "AbC_-", size: 12 },
      { path: "x,y.txt", sha256: "Z", size: 3 },
      { path: "d-1.0.dist-info/RECORD", sha256: null, size: null },
    ],
  );
  assert.equal(
    damageText("opencv-contrib-python", {
      missing: 3,
      changed: 1,
      missingFiles: ["cv2/__init__.py", "cv2/a.py"],
      changedFiles: ["cv2/b.so"],
      noRecord: false,
    }),
    "opencv-contrib-python: 3 files missing (cv2/__init__.py, cv2/a.py, ...), 1 file changed (cv2/b.so)",
  );
});
