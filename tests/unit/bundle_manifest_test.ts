/** Pure parts of bundles: path rules and manifest validation. */
import assert from "node:assert/strict";
import { pathProblem } from "../../providers/bundles/archive.ts";
import { BUNDLE_FORMAT_VERSION, newManifest, parseManifest } from "../../providers/bundles/manifest.ts";

Deno.test("pathProblem: accepts plain relative paths, names what is wrong with the rest", () => {
  for (
    const ok of ["a", "cec/pyproject.toml", "models/loras/x y.safetensors", "cec/.comfydockignore", "a..b/c"]
  ) {
    assert.equal(pathProblem(ok), null, ok);
  }
  const bad: [string, RegExp][] = [
    ["", /empty path/],
    ["../x", /path traversal/],
    ["cec/../../x", /path traversal/],
    ["cec/..", /path traversal/],
    ["/etc/passwd", /absolute/],
    ["C:/Windows", /absolute/],
    ["cec\\..\\x", /backslash/],
    ["a//b", /empty or '.'/],
    ["a/./b", /empty or '.'/],
    ["a\nb", /control characters/],
    ["x".repeat(2000), /longer than 1024/],
  ];
  for (const [p, why] of bad) {
    assert.match(pathProblem(p) ?? "(accepted)", why, JSON.stringify(p.slice(0, 20)));
  }
});

Deno.test("parseManifest: round-trips newManifest, rejects newer versions with an upgrade hint", () => {
  const m = newManifest({
    source_environment: "alpha",
    kind: "environment",
    files: [{ path: "cec/pyproject.toml", size: 3, sha256: "a".repeat(64) }],
  });
  assert.equal(m.format_version, BUNDLE_FORMAT_VERSION);
  assert.deepEqual(parseManifest(JSON.stringify(m), "b.tar.gz"), m);

  assert.throws(
    () => parseManifest(JSON.stringify({ ...m, format_version: 7, extra: { new: true } }), "b.tar.gz"),
    (e) => {
      const err = e as { code: string; message: string; hint: string };
      assert.equal(err.code, "BUNDLE_TOO_NEW");
      assert.match(err.message, /format_version 7 is newer/);
      assert.match(err.hint, /upgrade comfydock/);
      return true;
    },
  );
  const invalid: [unknown, RegExp][] = [
    [{ ...m, format_version: 0 }, /format_version/],
    [{ ...m, kind: "plugin" }, /kind/],
    [{ ...m, files: [m.files[0], m.files[0]] }, /listed twice/],
    [{ ...m, files: [{ ...m.files[0], sha256: "XYZ" }] }, /files\.0\.sha256/],
    [{ ...m, files: [{ ...m.files[0], size: -1 }] }, /files\.0\.size/],
    [{ ...m, created_at: "yesterday" }, /created_at/],
    [[], /\(root\)/],
  ];
  for (const [raw, why] of invalid) {
    assert.throws(() => parseManifest(JSON.stringify(raw), "b.tar.gz"), (e) => {
      assert.equal((e as { code: string }).code, "BUNDLE_MANIFEST_INVALID");
      assert.match((e as Error).message, why);
      return true;
    });
  }
});
