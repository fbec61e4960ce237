/**
 * The moves of `adopt --move` are recorded before they happen: a dead adopt's staging dir gives the user's
 * folder back on the next sweep (never deleted with it), and one whose place is taken keeps its dir.
 */
import assert from "node:assert/strict";
import { testNeeds } from "../../fixtures/tools.ts";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { withTempDir } from "../../fixtures/tmp.ts";
import { copyTree, exists } from "../../lib/fsx.ts";
import { workspacePaths } from "../../reconcile/paths.ts";
import { assertSameFileSystem, moveBackSync, moveIn } from "../../workspace/moves.ts";
import { sweepStaging } from "../../workspace/workspace.ts";

async function deadPid(): Promise<number> {
  const child = new Deno.Command("true").spawn();
  await child.status;
  return child.pid;
}

Deno.test("a dead adopt --move: the sweep moves the folder back, then removes the staging dir", async () => {
  await withTempDir(async (tmp) => {
    const ws = workspacePaths(join(tmp, "ws"));
    const user = join(tmp, "me", "ComfyUI");
    await Deno.mkdir(join(user, "custom_nodes"), { recursive: true });
    await Deno.writeTextFile(join(user, "main.py"), "print('hi')\n");
    const name = `.staging-env-${await deadPid()}-abcdef12`;
    const staging = join(ws.environments, name);
    await Deno.mkdir(staging, { recursive: true });
    await moveIn(join(staging, ".comfydock"), [{ from: user, to: join(staging, "ComfyUI") }]);
    assert.equal(await exists(user), false);

    assert.deepEqual(await sweepStaging(ws), [name]);
    assert.equal(await Deno.readTextFile(join(user, "main.py")), "print('hi')\n");
    assert.equal(await exists(staging), false);
  });
});

Deno.test("a folder whose place is taken is kept in the staging dir, not deleted", async () => {
  await withTempDir(async (tmp) => {
    const ws = workspacePaths(join(tmp, "ws"));
    const user = join(tmp, "me", "ComfyUI");
    await Deno.mkdir(user, { recursive: true });
    await Deno.writeTextFile(join(user, "main.py"), "mine\n");
    const staging = join(ws.environments, `.staging-env-${await deadPid()}-abcdef12`);
    await Deno.mkdir(staging, { recursive: true });
    await moveIn(join(staging, ".comfydock"), [{ from: user, to: join(staging, "ComfyUI") }]);
    await Deno.mkdir(user); // someone made a new folder at the old place meanwhile

    assert.deepEqual(await sweepStaging(ws), []);
    assert.equal(await Deno.readTextFile(join(staging, "ComfyUI", "main.py")), "mine\n");
    // The signal handler's synchronous variant says the same.
    assert.equal(moveBackSync(join(staging, ".comfydock")).length, 1);
  });
});

Deno.test("moveBackSync (the Ctrl-C path) moves back in reverse order", async () => {
  await withTempDir(async (tmp) => {
    const user = join(tmp, "me", "ComfyUI");
    await Deno.mkdir(join(user, "venv"), { recursive: true });
    await Deno.writeTextFile(join(user, "venv", "pyvenv.cfg"), "home = /x\n");
    const env = join(tmp, "env");
    await Deno.mkdir(env);
    // The venv inside ComfyUI/ moves with it, then on to .venv: undone last move first.
    await moveIn(join(env, ".comfydock"), [
      { from: user, to: join(env, "ComfyUI") },
      { from: join(env, "ComfyUI", "venv"), to: join(env, ".venv") },
    ]);
    assert.ok(await exists(join(env, ".venv", "pyvenv.cfg")));
    assert.deepEqual(moveBackSync(join(env, ".comfydock")), []);
    assert.equal(await Deno.readTextFile(join(user, "venv", "pyvenv.cfg")), "home = /x\n");
    assert.equal(await exists(join(env, "ComfyUI")), false);
  });
});

/** A temp dir on another file system than the system temp dir, or null (then the test is ignored). */
function otherDisk(): string | null {
  try {
    return Deno.statSync("/dev/shm").dev !== Deno.statSync(tmpdir()).dev ? "/dev/shm" : null;
  } catch {
    return null;
  }
}
const OTHER = otherDisk();

testNeeds(
  OTHER === null ? "a second file system (tmpfs /dev/shm) beside the temp dir" : null,
  "across file systems: --move is refused before anything moves; a venv copy falls back to copying",
  async () => {
    await withTempDir(async (tmp) => {
      const far = await Deno.makeTempDir({ dir: OTHER!, prefix: "comfydock-other-disk-" });
      try {
        await Deno.mkdir(join(far, "ComfyUI"));
        await Deno.writeTextFile(join(far, "ComfyUI", "main.py"), "x\n");
        const env = join(tmp, "env");
        await Deno.mkdir(env);
        await assert.rejects(
          () => assertSameFileSystem([{ from: join(far, "ComfyUI"), to: join(env, "ComfyUI") }]),
          /is on another file system than/,
        );
        assert.ok(await exists(join(far, "ComfyUI", "main.py")));
        const r = await copyTree(join(far, "ComfyUI"), join(env, "copy"), { hardlink: true });
        assert.deepEqual(r, { files: 1, linked: 0 });
        assert.equal(await Deno.readTextFile(join(env, "copy", "main.py")), "x\n");
      } finally {
        await Deno.remove(far, { recursive: true });
      }
    });
  },
);
