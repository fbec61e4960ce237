/**
 * `plan --locked` / `apply --locked` and `comfydock drift` in a terminal, through the CLI on a real
 * environment: a uv.lock out of date with pyproject.toml fails before anything changes, naming the fix; the
 * drift report is plain text (the Markdown one is for GitHub).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli } from "../../fixtures/cli.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { run as exec } from "../../lib/proc.ts";

Deno.test("CLI: --locked refuses a stale uv.lock before any change; drift prints plain text", async () => {
  await withTempDir(async (dir) => {
    const { paths, env } = await createRealEnv(join(dir, "home"), "e");
    const run = (...args: string[]) => cli(args, { env });
    const sitePackages = async () => {
      const lib = join(paths.venv, "lib");
      const py = (await Array.fromAsync(Deno.readDir(lib)))[0].name;
      return (await Array.fromAsync(Deno.readDir(join(lib, py, "site-packages")))).map((e) => e.name).sort();
    };
    const cecHead = async () => (await exec("git", ["-C", paths.cec, "rev-parse", "HEAD"])).stdout.trim();

    assert.equal((await run("plan", "--locked", "--detailed-exitcode")).code, 0, "a current lock passes");

    // pyproject.toml changed by hand, uv.lock not re-locked (then committed, as a teammate would push it).
    await Deno.writeTextFile(
      paths.pyproject,
      (await Deno.readTextFile(paths.pyproject)) + '\n[dependency-groups]\nuser = ["delta"]\n',
    );
    await exec("git", ["-C", paths.cec, "commit", "-qam", "add delta", "--author", "T <t@example.com>"], {
      env: { GIT_COMMITTER_NAME: "T", GIT_COMMITTER_EMAIL: "t@example.com" },
    });
    const before = {
      packages: await sitePackages(),
      head: await cecHead(),
      lock: await Deno.readTextFile(paths.uvLock),
    };
    const fix =
      "uv.lock is out of date with pyproject.toml: run 'comfydock apply' locally (or 'uv lock') and " +
      "commit uv.lock";
    for (const args of [["plan", "--locked"], ["apply", "--locked", "--yes"]]) {
      const r = await run(...args);
      assert.equal(r.code, 1, args.join(" "));
      assert.ok(r.stderr.includes(`${paths.uvLock} is out of date`), r.stderr);
      assert.ok(r.stderr.includes(fix), r.stderr);
      assert.match(r.stderr, /nothing was changed/);
    }
    assert.deepEqual(
      { packages: await sitePackages(), head: await cecHead(), lock: await Deno.readTextFile(paths.uvLock) },
      before,
      "the venv, uv.lock and .cec's history are as they were",
    );
    // Without --locked, apply re-locks (what the fix tells a person to do locally).
    const relocked = await run("apply", "--yes");
    assert.equal(relocked.code, 0, relocked.stderr);
    assert.ok((await sitePackages()).some((n) => n.startsWith("delta-")));

    await Deno.mkdir(join(paths.customNodes, "hand_made"));
    const drift = await run("drift");
    assert.equal(drift.code, 2);
    assert.match(drift.stdout, /^Drift: environment 'e' differs from its \.cec \(1 difference\)\.$/m);
    assert.match(drift.stdout, /^Unmanaged custom nodes \(1\): on disk, not in \.cec$/m);
    assert.match(drift.stdout, /^ {2}- node\.hand_made: /m);
    assert.match(drift.stdout, /move custom_nodes\/hand_made to the trash/);
    assert.doesNotMatch(drift.stdout, /\\_|&gt;|&lt;|###|`/, "no Markdown in a terminal");
  });
});
