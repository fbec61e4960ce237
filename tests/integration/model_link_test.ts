/** linkModel on the real file system of this machine: a symlink, and never over an existing path. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { linkModel } from "../../providers/models/link.ts";
import { withTempDir } from "../../fixtures/tmp.ts";

Deno.test("linkModel makes a symlink here and refuses an existing path without falling back to a copy", async () => {
  await withTempDir(async (dir) => {
    const target = join(dir, "store", "m.safetensors");
    await Deno.mkdir(join(dir, "store"));
    await Deno.writeTextFile(target, "weights");
    const link = join(dir, "env", "models", "vae", "m.safetensors");
    const how = await linkModel(target, link);
    // Windows gives a symlink with Developer Mode, else a hard link: both are one copy on disk.
    assert.ok(Deno.build.os === "windows" ? how !== "copy" : how === "symlink", how);
    assert.equal(await Deno.readTextFile(link), "weights");

    const taken = join(dir, "env", "models", "vae", "mine.safetensors");
    await Deno.writeTextFile(taken, "the user's file");
    for (const os of ["linux", "windows"] as const) {
      await assert.rejects(() => linkModel(target, taken, os), Deno.errors.AlreadyExists);
    }
    assert.equal(await Deno.readTextFile(taken), "the user's file");
  });
});
