import assert from "node:assert/strict";
import { join } from "node:path";
import { sha256Hex } from "../../lib/fsx.ts";
import { randomBytes } from "../../fixtures/model_files.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { testNeeds } from "../../fixtures/tools.ts";
import { ModelIndex } from "../../providers/models/index_db.ts";
import { resolveModelReference } from "../../providers/models/resolve.ts";
import { QUICK_SAMPLE } from "../../providers/models/hash.ts";

async function write(path: string, data: Uint8Array) {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await Deno.writeFile(path, data);
}

Deno.test("scan, rescan by stat, changed and vanished files, categories from the models folder", async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, "ComfyUI", "models");
    const a = randomBytes(5000);
    await write(join(root, "checkpoints", "a.safetensors"), a);
    await write(join(root, "loras", "sub", "b.safetensors"), randomBytes(6000));
    await write(
      join(root, "loras", "b-copy.safetensors"),
      await Deno.readFile(join(root, "loras", "sub", "b.safetensors")),
    );
    using idx = ModelIndex.open(join(dir, "idx.db"));
    const r1 = await idx.scanDirectory(join(root, "loras"));
    assert.equal(r1.files, 2);
    const r0 = await idx.scanDirectory(root, { full: true });
    assert.deepEqual([r0.files, r0.unchanged], [3, 2]);
    assert.deepEqual(idx.stats(), { models: 2, files: 3 }, "identical content is one model with two files");
    const m = idx.resolveByHash(`sha256:${sha256Hex(a)}`)!;
    assert.equal(m.files[0].category, "checkpoints");
    assert.equal(
      idx.resolveByName("b.safetensors")[0].files.find((f) => f.filename === "b.safetensors")?.category,
      "loras",
    );

    const again = await idx.scanDirectory(root);
    assert.deepEqual(
      [again.unchanged, again.hashed, again.bytesHashed],
      [3, 0, 0],
      "unchanged files cost a stat",
    );

    const a2 = randomBytes(5000);
    await Deno.writeFile(join(root, "checkpoints", "a.safetensors"), a2);
    await Deno.remove(join(root, "loras", "b-copy.safetensors"));
    const r3 = await idx.scanDirectory(root);
    assert.deepEqual([r3.hashed, r3.removed], [1, 1]);
    assert.equal(idx.resolveByHash(`sha256:${sha256Hex(a)}`), null, "old content is gone from the index");
    assert.equal(idx.fileAt(join(root, "checkpoints", "a.safetensors"))?.sha256, null);
  });
});

Deno.test("same quick identity, different full hash: two models, never merged", async () => {
  await withTempDir(async (dir) => {
    const base = randomBytes(8 * QUICK_SAMPLE);
    const other = base.slice();
    other[2 * QUICK_SAMPLE] ^= 0xff; // outside the first/middle/last samples
    await write(join(dir, "m", "x", "one.safetensors"), base);
    await write(join(dir, "m", "x", "two.safetensors"), other);
    using idx = ModelIndex.open(join(dir, "idx.db"));
    await idx.scanDirectory(join(dir, "m"));
    assert.equal(idx.stats().models, 1, "quick identity alone cannot tell them apart");
    await idx.scanDirectory(join(dir, "m"), { full: true });
    assert.equal(idx.stats().models, 2);
    assert.equal(idx.filesWithHash("sha256", sha256Hex(base)).length, 1);
    assert.equal(idx.filesWithHash("sha256", sha256Hex(other))[0].filename, "two.safetensors");
  });
});

testNeeds(
  Deno.uid() === 0 ? "a non-root user (root reads a file whatever its mode)" : null,
  "unreadable files and folders are skipped with a warning",
  async () => {
    await withTempDir(async (dir) => {
      await write(join(dir, "m", "c", "ok.safetensors"), randomBytes(100));
      await write(join(dir, "m", "c", "secret.safetensors"), randomBytes(100));
      await Deno.chmod(join(dir, "m", "c", "secret.safetensors"), 0o000);
      using idx = ModelIndex.open(join(dir, "idx.db"));
      const r = await idx.scanDirectory(join(dir, "m"));
      assert.equal(idx.stats().files, 1);
      assert.ok(r.warnings.some((w) => w.includes("secret.safetensors")));
    });
  },
);

Deno.test("resolution order: hash, name in category, name anywhere, workflow url, then unresolved with why", async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, "models");
    const v = randomBytes(900);
    await write(join(root, "vae", "vae.safetensors"), v);
    await write(join(root, "loras", "dup.safetensors"), randomBytes(10));
    await write(join(root, "checkpoints", "dup.safetensors"), randomBytes(11));
    using idx = ModelIndex.open(join(dir, "idx.db"));
    await idx.scanDirectory(root, { full: true });
    const byHash = resolveModelReference(
      { name: "renamed.safetensors", hash: `sha256:${sha256Hex(v)}` },
      idx,
    );
    assert.equal(byHash.status === "resolved" && byHash.via, "hash");
    const inCat = resolveModelReference({ name: "dup.safetensors", category: "loras" }, idx);
    assert.ok(inCat.status === "resolved" && inCat.via === "name-in-category");
    assert.ok(inCat.path.endsWith(join("loras", "dup.safetensors")));
    const anywhere = resolveModelReference({ name: "vae.safetensors", category: "checkpoints" }, idx);
    assert.equal(anywhere.status === "resolved" && anywhere.via, "name");
    assert.equal(resolveModelReference({ name: "dup.safetensors" }, idx).status, "ambiguous");
    const url = resolveModelReference(
      { name: "new.safetensors", url: "https://example.com/new.safetensors" },
      idx,
    );
    assert.equal(url.status, "downloadable");
    const none = resolveModelReference({
      name: "nope.safetensors",
      category: "loras",
      hash: "sha256:" + "0".repeat(64),
    }, idx);
    assert.equal(none.status, "unresolved");
    assert.match(
      none.status === "unresolved" ? none.reason : "",
      /no indexed file has hash .*no file named nope\.safetensors in loras/,
    );
  });
});
