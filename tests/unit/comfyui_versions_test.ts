import assert from "node:assert/strict";
import {
  labelForCommit,
  latestReleaseTag,
  looksLikeSha,
  parseReleaseTag,
  sortedReleaseTags,
} from "../../providers/comfyui/versions.ts";
import { mergeRequirements, parseRequirements } from "../../providers/comfyui/requirements.ts";
import { normaliseUrl } from "../../providers/git/mirror.ts";

Deno.test("latest is the highest release tag by semver, not by text; pre-releases never count", () => {
  const tags = ["v0.2.0", "v0.10.0", "v0.9.9", "v0.11.0-rc1", "nightly", "v0.1.0", "0.3.0"];
  assert.equal(latestReleaseTag(tags), "v0.10.0");
  assert.deepEqual(sortedReleaseTags(tags), ["v0.10.0", "v0.9.9", "0.3.0", "v0.2.0", "v0.1.0"]);
  assert.equal(latestReleaseTag(["nightly", "v1.0.0-beta"]), null);
  assert.deepEqual(parseReleaseTag("v1.22.333"), { major: 1, minor: 22, patch: 333 });
  assert.equal(parseReleaseTag("v1.2"), null);
});

Deno.test("a commit is labelled with its release tag when it has one", () => {
  const tags = { "v0.3.0": "aaa", "some-tag": "aaa", "v0.2.0": "bbb", "other": "ccc" };
  assert.equal(labelForCommit("aaa", tags), "v0.3.0");
  assert.equal(labelForCommit("ccc", tags), "other");
  assert.equal(labelForCommit("ddd", tags), null);
  assert.ok(looksLikeSha("25bcc0b"));
  assert.ok(!looksLikeSha("v0.1.0"));
  assert.ok(!looksLikeSha("abc")); // too short to be a useful prefix
});

Deno.test("requirements.txt: comments, options and blank lines dropped; torch kept; order and markers kept", () => {
  const text = `# ComfyUI
torch
torchsde
torchvision  # comment
--extra-index-url https://download.pytorch.org/whl/cu121
-r other.txt

einops
transformers>=4.28.1
numpy>=1.25.0; python_version >= "3.9"
spandrel \\
  >=0.3
torch
`;
  assert.deepEqual(parseRequirements(text), [
    "torch",
    "torchsde",
    "torchvision",
    "einops",
    "transformers>=4.28.1",
    'numpy>=1.25.0; python_version >= "3.9"',
    "spandrel >=0.3",
  ]);
  assert.deepEqual(parseRequirements(""), []);
});

Deno.test("a ComfyUI update swaps ComfyUI's requirements and keeps the user's own", () => {
  const current = ["alpha", "my-extra>=1", "beta<2"];
  assert.deepEqual(mergeRequirements(current, ["alpha", "beta<2"], ["alpha>=2", "beta>=2"]), [
    "alpha>=2",
    "beta>=2",
    "my-extra>=1",
  ]);
  // A user dependency that the new ComfyUI also names is not duplicated.
  assert.deepEqual(mergeRequirements(["x", "y"], ["x"], ["y", "z"]), ["y", "z"]);
});

Deno.test("mirror keys: local paths become absolute, URLs lose trailing slashes", () => {
  assert.equal(
    normaliseUrl("https://github.com/comfyanonymous/ComfyUI/"),
    "https://github.com/comfyanonymous/ComfyUI",
  );
  assert.equal(
    normaliseUrl("git@github.com:comfyanonymous/ComfyUI.git"),
    "git@github.com:comfyanonymous/ComfyUI.git",
  );
  assert.equal(normaliseUrl("/srv/ComfyUI"), "/srv/ComfyUI");
  assert.ok(normaliseUrl("rel/ComfyUI").startsWith("/"));
});
