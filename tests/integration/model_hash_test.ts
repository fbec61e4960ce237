import assert from "node:assert/strict";
import { join } from "node:path";
import { makeSparseFile, randomBytes } from "../../fixtures/model_files.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { hashFileFull, hashFiles, QUICK_SAMPLE, quickHash } from "../../providers/models/hash.ts";

async function opensslSha256(path: string): Promise<string> {
  const out = await new Deno.Command("openssl", { args: ["dgst", "-sha256", "-r", path] }).output();
  return new TextDecoder().decode(out.stdout).split(" ")[0];
}

Deno.test("full hash matches openssl for sizes around the chunk boundary, blake3 matches the reference vector", async () => {
  await withTempDir(async (dir) => {
    for (const size of [0, 1, 4 * 1024 * 1024, 4 * 1024 * 1024 + 1, 9 * 1024 * 1024 - 3]) {
      const p = join(dir, `f${size}`);
      await Deno.writeFile(p, randomBytes(size));
      const r = await hashFileFull(p, ["sha256"]);
      assert.equal(r.sha256, await opensslSha256(p), `size ${size}`);
      assert.equal(r.size, size);
    }
    const empty = join(dir, "f0");
    const both = await hashFileFull(empty, ["sha256", "blake3"]);
    assert.equal(both.blake3, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
  });
});

Deno.test("worker pool: same hashes as one thread, progress adds up to the bytes, unreadable file is an outcome", async () => {
  await withTempDir(async (dir) => {
    const files = [];
    for (let i = 0; i < 3; i++) {
      const p = join(dir, `m${i}.safetensors`);
      await Deno.writeFile(p, randomBytes(30 * 1024 * 1024 + i));
      files.push(p);
    }
    let progressed = 0;
    const jobs = [...files, join(dir, "gone.safetensors")].map((path) => ({
      path,
      types: ["sha256" as const],
    }));
    const out = await hashFiles(jobs, { workers: 2, onProgress: (d) => progressed += d });
    for (const [i, p] of files.entries()) {
      const o = out[i];
      assert.ok(o.ok);
      assert.equal(o.hashes.sha256, await opensslSha256(p));
    }
    assert.equal(progressed, 3 * 30 * 1024 * 1024 + 3);
    const last = out[3];
    assert.ok(!last.ok);
    assert.equal(last.errorName, "NotFound");
  });
});

Deno.test("quick identity: size + sampled regions; a change in a sample changes it, a 6 GiB sparse file takes milliseconds", async () => {
  await withTempDir(async (dir) => {
    const a = join(dir, "a.bin");
    const data = randomBytes(8 * QUICK_SAMPLE);
    await Deno.writeFile(a, data);
    const q1 = await quickHash(a);
    assert.match(q1.quick, /^800000-[0-9a-f]{16}$/);
    data[data.length - 1] ^= 1; // inside the last sample
    await Deno.writeFile(a, data);
    assert.notEqual((await quickHash(a)).quick, q1.quick);

    const big = join(dir, "big.safetensors");
    await makeSparseFile(big, 6 * 1024 ** 3, 1);
    const t = performance.now();
    const qb = await quickHash(big);
    const ms = performance.now() - t;
    assert.equal(qb.size, 6 * 1024 ** 3);
    assert.ok(ms < 2000, `quick hash of a 6 GiB file took ${ms} ms`);
    await makeSparseFile(big, 6 * 1024 ** 3, 2);
    assert.notEqual((await quickHash(big)).quick, qb.quick);
  });
});
