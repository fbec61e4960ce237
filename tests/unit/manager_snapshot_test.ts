/** Manager snapshot and pip freeze parsing (pure), and the editor fallback they rely on. */
import assert from "node:assert/strict";
import { parse } from "smol-toml";
import { parseFreezeEntry } from "../../providers/packages/freeze.ts";
import { parseManagerSnapshot, renderManagerSnapshot } from "../../providers/formats/manager_snapshot.ts";
import { editPyprojectText } from "../../reconcile/pyproject_edit.ts";
import { basePyproject } from "../../fixtures/env_skeleton.ts";
import { isCdError } from "../../lib/errors.ts";

Deno.test("pip freeze entries as the Manager stores them", () => {
  const cases: [string, string, unknown][] = [
    ["numpy==1.26.4", "", { kind: "pin", name: "numpy", version: "1.26.4", requirement: "numpy==1.26.4" }],
    ["Zeta_Pkg===3.0", "", { kind: "pin", name: "zeta-pkg", version: "3.0", requirement: "zeta-pkg==3.0" }],
    [
      "torch",
      "https://download.pytorch.org/whl/cu124/torch-2.5.1%2Bcu124-cp311-cp311-linux_x86_64.whl",
      {
        kind: "url",
        name: "torch",
        url: "https://download.pytorch.org/whl/cu124/torch-2.5.1%2Bcu124-cp311-cp311-linux_x86_64.whl",
        requirement:
          "torch @ https://download.pytorch.org/whl/cu124/torch-2.5.1%2Bcu124-cp311-cp311-linux_x86_64.whl",
      },
    ],
    [
      "-e git+https://github.com/o/r@0123abc#egg=my_pkg",
      "",
      {
        kind: "url",
        name: "my-pkg",
        url: "git+https://github.com/o/r@0123abc",
        requirement: "my-pkg @ git+https://github.com/o/r@0123abc",
      },
    ],
  ];
  for (const [k, v, want] of cases) assert.deepEqual(parseFreezeEntry(k, v), want, k);
  const reasons: [string, string, RegExp][] = [
    ["gamma", "file:///home/me/gamma.whl", /local file/],
    ["-e /home/me/dev/x", "", /editable install from a local path/],
    ["# Editable install with no version control (x==1)", "", /comment/],
    ["just words here", "", /not a pip freeze line/],
    ["weird", "ftp://x/y.whl", /neither http\(s\) nor git/],
  ];
  for (const [k, v, re] of reasons) {
    const e = parseFreezeEntry(k, v);
    assert.equal(e.kind, "unmapped", k);
    if (e.kind === "unmapped") assert.match(e.reason, re);
  }
});

Deno.test("a YAML snapshot reads like the JSON one: versions stay strings, booleans and nulls are typed", async () => {
  const sha = "a".repeat(40);
  const json = await parseManagerSnapshot(
    JSON.stringify({
      comfyui: sha,
      git_custom_nodes: { "https://x/y": { hash: sha, disabled: true } },
      cnr_custom_nodes: { "n": "1.10" },
      file_custom_nodes: [{ filename: "f.py", disabled: false }],
      pips: { "a==1.0": "" },
    }),
    "s.json",
  );
  const yaml = await parseManagerSnapshot(
    `custom_nodes:
  cnr_custom_nodes:
    n: '1.10'
  comfyui: ${sha}
  file_custom_nodes:
  - disabled: false
    filename: f.py
  git_custom_nodes:
    https://x/y:
      disabled: true
      hash: ${sha}
  pips:
    a==1.0: ''
`,
    "s.yaml",
  );
  assert.deepEqual(yaml.snapshot, json.snapshot);
  assert.equal(yaml.format, "yaml");
  // An unquoted 1.10 (hand-written) is still the string "1.10", never the number 1.1.
  const loose = await parseManagerSnapshot(
    "custom_nodes:\n  cnr_custom_nodes:\n    n: 1.10\n  comfyui: null\n",
    "l.yml",
  );
  assert.equal(loose.snapshot.cnr_custom_nodes.n, "1.10");
  assert.equal(loose.snapshot.comfyui, null);
  assert.equal(loose.snapshot.pips, null);
});

Deno.test("bad snapshots: the error names the file, the key and the value", async () => {
  const cases: [string, string, RegExp][] = [
    ["a.json", "[1, 2]", /a\.json is not a ComfyUI-Manager snapshot/],
    [
      "b.json",
      '{"git_custom_nodes": {"u": {"hash": "zz"}}}',
      /b\.json: git_custom_nodes\.u\.hash: must be a full 40-hex/,
    ],
    ["c.yaml", "custom_nodes: [unclosed", /c\.yaml is not valid YAML/],
    ["d.json", '{"cnr_custom_nodes": {"x": 3}}', /d\.json: cnr_custom_nodes\.x: .*\(got 3\)/],
  ];
  for (const [file, text, re] of cases) {
    await assert.rejects(() => parseManagerSnapshot(text, file), (e) => isCdError(e) && re.test(e.message));
  }
  const unknown = await parseManagerSnapshot('{"comfyui": null, "extra": 1}', "e.json");
  assert.deepEqual(unknown.unknownKeys, ["extra"]);
});

Deno.test("a snapshot is written in the Manager's key order and indentation", () => {
  const text = renderManagerSnapshot({
    comfyui: null,
    git_custom_nodes: {},
    cnr_custom_nodes: { a: "1" },
    file_custom_nodes: [],
    pips: { "x==1": "" },
  });
  assert.equal(
    text,
    '{\n    "comfyui": null,\n    "git_custom_nodes": {},\n    "cnr_custom_nodes": {\n        "a": "1"\n    },\n' +
      '    "file_custom_nodes": [],\n    "pips": {\n        "x==1": ""\n    }\n}\n',
  );
});

Deno.test("a key set in a table that holds only sub-tables (the TOML editor's panic) still lands", async () => {
  const text = basePyproject("t") +
    '\n[tool.uv]\n\n[[tool.uv.index]]\nname = "pytorch"\nurl = "https://x/cpu"\nexplicit = true\n\n' +
    '[tool.uv.sources.torch]\nindex = "pytorch"\n';
  const { text: out } = await editPyprojectText(text, [
    { path: ["tool", "uv", "constraint-dependencies"], value: ["torch==2.5.0"] },
  ]);
  // deno-lint-ignore no-explicit-any -- a test reads a few keys
  const uv = (parse(out) as any).tool.uv;
  assert.deepEqual([...uv["constraint-dependencies"]], ["torch==2.5.0"]);
  assert.equal(uv.index[0].url, "https://x/cpu");
  assert.equal(uv.sources.torch.index, "pytorch");
});

Deno.test("export as a snapshot: file nodes by name; local/dev and disabled registry nodes skipped", async () => {
  const { managerSnapshotOf } = await import("../../workspace/manager_snapshot.ts");
  const { parsePyproject } = await import("../../reconcile/desired.ts");
  const sha = "e".repeat(40);
  const pyproject = parsePyproject(
    basePyproject(
      "t",
      `
[tool.comfydock.nodes.reg]
source = "registry"
version = "1.0.0"

[tool.comfydock.nodes.off]
source = "registry"
version = "2.0.0"
enabled = false

[tool.comfydock.nodes.g]
source = "git"
repository = "https://x/g"
commit = "${sha}"
enabled = false

[tool.comfydock.nodes.mine]
source = "dev"
path = "/home/me/mine"

[tool.comfydock.nodes.tweak]
source = "file"
filename = "tweak.py"
sha256 = "${"f".repeat(64)}"
enabled = false
`,
    ),
    "p.toml",
  );
  const desired = {
    pyproject,
    nodes: pyproject.tool.comfydock.nodes,
    comfyui: { version: "v0.1.0", commit: pyproject.tool.comfydock.comfyui_commit },
    lockText: null,
    paths: { uvLock: "uv.lock" },
  } as unknown as Parameters<typeof managerSnapshotOf>[0];
  const r = managerSnapshotOf(desired);
  const snap = JSON.parse(r.text);
  assert.deepEqual(snap.cnr_custom_nodes, { reg: "1.0.0" });
  assert.deepEqual(snap.git_custom_nodes, { "https://x/g": { hash: sha, disabled: true } });
  assert.deepEqual(snap.file_custom_nodes, [{ filename: "tweak.py", disabled: true }]);
  assert.equal(r.skipped.length, 3);
  assert.match(r.skipped.join("\n"), /node off: a disabled registry node/);
  assert.match(r.skipped.join("\n"), /node mine: a dev node \(\/home\/me\/mine\)/);
  assert.match(r.skipped.join("\n"), /pips: \.cec has no uv\.lock yet/);
});
