import assert from "node:assert/strict";
import { CdError } from "../../lib/errors.ts";
import { validateEnvName } from "../../workspace/workspace.ts";
import { maskKey } from "../../workspace/config.ts";
import { renderPyproject } from "../../workspace/new_cec.ts";
import { parsePyproject } from "../../reconcile/desired.ts";
import { torchUvConfig } from "../../providers/packages/torch.ts";

Deno.test("environment names: safe ones pass", () => {
  for (const n of ["a", "my-env", "sdxl_2.1", "A9", "x".repeat(64)]) assert.equal(validateEnvName(n), n);
});

Deno.test("environment names: path tricks and odd characters fail with a clear error", () => {
  const cases: [string, RegExp][] = [
    ["", /is empty/],
    ["a/b", /path separator/],
    ["a\\b", /path separator/],
    ["..", /contains '\.\.'/],
    ["a..b", /contains '\.\.'/],
    [".hidden", /starts with a dot/],
    ["-rf", /start and end with a letter or digit/],
    ["env-", /start and end/],
    ["my env", /contains ' '/],
    ["émile", /contains 'é'/],
    ["x".repeat(65), /65 characters long/],
  ];
  for (const [name, re] of cases) {
    assert.throws(() => validateEnvName(name), (e: unknown) => {
      assert.ok(e instanceof CdError);
      assert.equal(e.code, "INVALID_ENV_NAME");
      assert.match(e.message, re);
      assert.ok(e.hint);
      return true;
    }, name);
  }
});

Deno.test("API keys are masked: prefix and last 4 only; short keys show nothing", () => {
  assert.equal(maskKey("hf_abcdefghijklmnop1234"), "hf_****1234");
  assert.equal(maskKey("0123456789abcdef"), "****cdef");
  assert.equal(maskKey("ghp_short"), "ghp_****");
  assert.equal(maskKey("abc"), "****");
});

Deno.test("a new environment's pyproject has the seed's shape and passes the schema", () => {
  const text = renderPyproject({
    name: "my-env",
    pythonVersion: "3.12",
    dependencies: ["torch", 'numpy>=1.25; python_version >= "3.9"'],
    comfyuiVersion: "v0.3.10",
    comfyuiCommit: "25bcc0bd095536bceb0a729ba94360e75d64f87b",
    comfyuiUrl: "https://github.com/comfyanonymous/ComfyUI",
    edits: torchUvConfig("cu124"),
  });
  const p = parsePyproject(text, "pyproject.toml");
  assert.equal(p.project.name, "my-env");
  assert.equal(p.project["requires-python"], "==3.12.*");
  assert.deepEqual(p.project.dependencies, ["torch", 'numpy>=1.25; python_version >= "3.9"']);
  assert.equal(p.tool.comfydock.comfyui_version, "v0.3.10");
  assert.equal(p.tool.comfydock.python_version, "3.12");
  assert.equal(p.tool.comfydock.torch_backend, "cu124");
  assert.deepEqual(JSON.parse(JSON.stringify(p.tool.uv?.index)), [
    { name: "pytorch", url: "https://download.pytorch.org/whl/cu124", explicit: true },
  ]);
  assert.ok(text.startsWith("[project]\n"));
  assert.match(text, /dependencies = \[\n {2}"torch",\n/); // one per line: readable diffs
});
