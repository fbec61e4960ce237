import assert from "node:assert/strict";
import { parseNodeSpec } from "../../providers/nodes/add.ts";
import { rankSuggestions } from "../../providers/nodes/registry.ts";
import { safeEntryPath } from "../../providers/nodes/archive.ts";
import { CdError } from "../../lib/errors.ts";

Deno.test("node spec: registry ids, versions, git URLs with refs, dev paths", () => {
  assert.deepEqual(parseNodeSpec("comfyui-impact-pack"), { kind: "registry", id: "comfyui-impact-pack" });
  assert.deepEqual(parseNodeSpec("was-node-suite@1.2.3"), {
    kind: "registry",
    id: "was-node-suite",
    version: "1.2.3",
  });
  assert.deepEqual(parseNodeSpec("https://github.com/ltdrdata/ComfyUI-Impact-Pack"), {
    kind: "git",
    url: "https://github.com/ltdrdata/ComfyUI-Impact-Pack",
  });
  assert.deepEqual(parseNodeSpec("https://github.com/a/b.git@v1.0"), {
    kind: "git",
    url: "https://github.com/a/b.git",
    ref: "v1.0",
  });
  assert.deepEqual(parseNodeSpec("git@github.com:a/b.git"), { kind: "git", url: "git@github.com:a/b.git" });
  assert.deepEqual(parseNodeSpec("git@github.com:a/b.git@main"), {
    kind: "git",
    url: "git@github.com:a/b.git",
    ref: "main",
  });
  assert.deepEqual(parseNodeSpec("./my-node", { dev: true }), { kind: "dev", path: "./my-node" });
  // A single .py file over HTTP is a file node (ComfyUI-Manager's "copy" install); a repo URL stays git.
  assert.deepEqual(parseNodeSpec("https://raw.githubusercontent.com/a/b/main/My_Node.py?raw=1"), {
    kind: "file",
    url: "https://raw.githubusercontent.com/a/b/main/My_Node.py?raw=1",
  });
  for (const bad of ["", "./my-node", "bad id", "x@"]) {
    assert.throws(
      () => parseNodeSpec(bad),
      (e) => e instanceof CdError && e.code === "NODE_SPEC_INVALID",
      bad,
    );
  }
});

Deno.test("suggestions: nearest ids first, at most three, unrelated ids left out", () => {
  assert.deepEqual(
    rankSuggestions("comfyui-impact-pak", [
      "comfyui-impact-pack",
      "comfyui-impact-subpack",
      "was-node-suite",
    ]),
    ["comfyui-impact-pack", "comfyui-impact-subpack"],
  );
  assert.deepEqual(rankSuggestions("zzz", ["comfyui-manager"]), []);
});

Deno.test("archive entry names: normalised, and escapes refused", () => {
  assert.equal(safeEntryPath("a/./b\\c.py", "t"), "a/b/c.py");
  for (
    const bad of ["../x", "a/../../x", "/etc/x", "C:/x", "a\0b", ".git/config", "sub/.GIT/config", "git~1/x"]
  ) {
    assert.throws(
      () => safeEntryPath(bad, "t"),
      (e) => e instanceof CdError && e.code === "ARCHIVE_UNSAFE",
      bad,
    );
  }
});
