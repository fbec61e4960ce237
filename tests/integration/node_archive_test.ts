import assert from "node:assert/strict";
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
    await rejectsCode(extractZip(zipSlipArchive(), dest, "slip"), "ARCHIVE_UNSAFE", /outside the archive/);
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
        maxEntries: 10,
        maxEntryBytes: 1024,
        maxTotalBytes: 1 << 20,
      }),
      "ARCHIVE_UNSAFE",
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
