import assert from "node:assert/strict";
import { NODE_ARCHIVE_LIMITS } from "../../lib/archive_limits.ts";
import { join } from "node:path";
import { createHash } from "node:crypto";
import {
  extractZip,
  fetchArchive,
  readStoredArchive,
  readZipEntries,
  storedArchivePath,
} from "../../providers/nodes/archive.ts";
import {
  symlinkArchive,
  truncate,
  zipFiles,
  zipNodePack,
  zipSlipArchive,
} from "../../fixtures/node_packs.ts";
import { startRegistryServer } from "../../fixtures/registry_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { CdError } from "../../lib/errors.ts";
import { exists, listFiles } from "../../lib/fsx.ts";

async function rejectsCode(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof CdError, String(e));
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

Deno.test("archive: extracts a node pack and returns the manifest of file hashes", async () => {
  await withTempDir(async (dir) => {
    const dest = join(dir, "stage", "mynode");
    const manifest = await extractZip(
      zipFiles({ "__init__.py": "x = 1\n", "sub/dir/a.py": "a\n", "run.sh": "#!/bin/sh\n" }),
      dest,
      "t",
    );
    assert.deepEqual(Object.keys(manifest), ["__init__.py", "run.sh", "sub/dir/a.py"]);
    assert.equal(await Deno.readTextFile(join(dest, "sub/dir/a.py")), "a\n");
    assert.equal(manifest["__init__.py"], createHash("sha256").update("x = 1\n").digest("hex"));
    assert.equal((await Deno.stat(join(dest, "sub/dir/a.py"))).mode! & 0o777, 0o644);
  });
});

Deno.test("archive: zip-slip, absolute paths and symlinks are refused before anything is written", async () => {
  await withTempDir(async (dir) => {
    const dest = join(dir, "stage", "n");
    await rejectsCode(extractZip(zipSlipArchive(), dest, "slip"), "ARCHIVE_UNSAFE", /path traversal/);
    await rejectsCode(
      extractZip(zipFiles({ "/etc/cron.d/x": "boom" }), dest, "abs"),
      "ARCHIVE_UNSAFE",
      /absolute path/,
    );
    await rejectsCode(
      extractZip(zipFiles({ "C:\\Windows\\x": "boom" }), dest, "drive"),
      "ARCHIVE_UNSAFE",
      /absolute path/,
    );
    await rejectsCode(extractZip(symlinkArchive(), dest, "link"), "ARCHIVE_UNSAFE", /symbolic link/);
    assert.equal(await exists(dest), false);
    assert.equal(await exists(join(dir, "evil.py")), false);
  });
});

Deno.test("archive: truncated, corrupted and oversize archives are clear errors", async () => {
  await withTempDir(async (dir) => {
    const good = zipNodePack("n", { requirements: ["numpy"] });
    await rejectsCode(extractZip(truncate(good), join(dir, "a"), "cut"), "ARCHIVE_INVALID", /truncated/);
    await rejectsCode(
      extractZip(new TextEncoder().encode("<html>"), join(dir, "b"), "html"),
      "ARCHIVE_INVALID",
    );
    // Flip a byte inside the compressed data of the first entry: the CRC catches it.
    const bad = good.slice();
    const first = readZipEntries(good, "good")[0];
    bad[first.dataOffset + 2] ^= 0xff;
    await rejectsCode(extractZip(bad, join(dir, "c"), "bad"), "ARCHIVE_INVALID");
    await rejectsCode(
      extractZip(zipFiles({ "big.bin": new Uint8Array(4096) }), join(dir, "d"), "big", {
        ...NODE_ARCHIVE_LIMITS,
        maxFileBytes: 1024,
      }),
      "ARCHIVE_TOO_LARGE",
      /4096 bytes \(limit 1024\)/,
    );
    assert.deepEqual(await listFiles(dir), []);
  });
});

Deno.test("archive: downloaded once into the content-addressed store, then offline and verified", async () => {
  const server = await startRegistryServer([{ id: "n", versions: [{ version: "1.0.0" }] }]);
  try {
    await withTempDir(async (store) => {
      const url = `${server.url}/dl/n/1.0.0.zip`;
      const first = await fetchArchive(store, { url, label: "n 1.0.0" });
      assert.equal(first.cached, false);
      assert.equal(await exists(storedArchivePath(store, first.sha256)), true);
      const again = await fetchArchive(store, {
        url: "http://127.0.0.1:1/unused",
        sha256: first.sha256,
        label: "n",
      });
      assert.equal(again.cached, true);
      assert.equal(server.requests.length, 1);
      // A corrupted cached copy is dropped, not trusted.
      await Deno.writeFile(storedArchivePath(store, first.sha256), new Uint8Array([1, 2, 3]));
      assert.equal(await readStoredArchive(store, first.sha256), null);
      // A pinned sha256 that the server's archive does not match is refused.
      await rejectsCode(
        fetchArchive(store, { url, sha256: "0".repeat(64), label: "n 1.0.0" }),
        "ARCHIVE_HASH_MISMATCH",
      );
      // A truncated download is not cached.
      server.setArchive("n", "1.0.0", truncate(zipNodePack("n")));
      await rejectsCode(fetchArchive(store, { url, label: "n" }), "ARCHIVE_INVALID");
      assert.deepEqual(await listFiles(store), []);
    });
  } finally {
    await server.close();
  }
});

/** `zip` with the declared (central directory) size of entry `name` replaced by `size`. */
function declareSize(zip: Uint8Array, name: string, size: number): Uint8Array {
  const out = zip.slice();
  const dv = new DataView(out.buffer);
  const at = new TextDecoder().decode(out).lastIndexOf(name) - 46; // the central entry's name follows 46 bytes
  assert.equal(dv.getUint32(at, true), 0x02014b50, "found the central directory entry");
  dv.setUint32(at + 24, size, true);
  return out;
}

Deno.test("archive: .git entries, a file that is also a folder, and a lying size are refused before install", async () => {
  await withTempDir(async (dir) => {
    const pack = { "__init__.py": "NODE_CLASS_MAPPINGS = {}\n" };
    await rejectsCode(
      extractZip(zipFiles({ ...pack, ".git/config": "[core]\n" }), join(dir, "a"), "git"),
      "ARCHIVE_UNSAFE",
      /entry "\.git\/config" is inside a '\.git' folder/,
    );
    // `a` beside `a/b.py` could never be extracted: readZipEntries (what `node add` runs) says so.
    assert.throws(
      () => readZipEntries(zipFiles({ ...pack, "a": "file", "a/b.py": "x" }), "clash"),
      (e) => e instanceof CdError && /'a' is a file and also the folder of 'a\/b\.py'/.test(e.message),
    );
    // A header that declares fewer bytes than the entry holds: stopped at the declared size.
    for (const bytes of [1000, 3 * 1024 * 1024]) {
      const zip = declareSize(
        zipFiles({ ...pack, "data.bin": new Uint8Array(bytes + 4096) }),
        "data.bin",
        bytes,
      );
      await rejectsCode(
        extractZip(zip, join(dir, `lie-${bytes}`), "lie"),
        "ARCHIVE_UNSAFE",
        new RegExp(`'data\\.bin' inflates past the ${bytes} bytes its header declares`),
      );
      assert.equal(await exists(join(dir, `lie-${bytes}`)), false, "the partial extraction is removed");
    }
    // A bomb: 96 MiB of zeros in ~100 KB, refused from the declared sizes, nothing inflated.
    const bomb = zipFiles({ ...pack, "zeros.bin": new Uint8Array(96 * 1024 * 1024) });
    await rejectsCode(extractZip(bomb, join(dir, "bomb"), "bomb"), "ARCHIVE_TOO_LARGE", /zip-bomb-like/);
    assert.equal(await exists(join(dir, "bomb")), false);
  });
});

Deno.test("archive: a pack's own .comfydock.json is not extracted (the real marker replaces it)", async () => {
  await withTempDir(async (dir) => {
    const zip = zipFiles({
      "__init__.py": "x\n",
      ".comfydock.json": '{"format":1,"id":"other"}',
      "sub/.comfydock.json": "{}",
    });
    const manifest = await extractZip(zip, join(dir, "n"), "marker");
    assert.deepEqual(Object.keys(manifest), ["__init__.py", "sub/.comfydock.json"]);
    assert.equal(await exists(join(dir, "n", ".comfydock.json")), false);
  });
});
