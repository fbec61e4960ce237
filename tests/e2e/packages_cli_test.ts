/**
 * The packages parts of issues 17, 18 and 19 through the CLI, as a user types them: `plan --no-build` and
 * `validate --no-build` run no build backend (a canary proves it), `status --deep`, a hand edit of
 * `[dependency-groups]` applied then committed, and the machine-local index settings of `config`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli } from "../../fixtures/cli.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { exists } from "../../lib/fsx.ts";
import * as git from "../../providers/git/git.ts";

/**
 * A local package whose build backend (in-tree, no setuptools needed offline) writes `canary` when uv asks
 * it for metadata: what a `setup.py` in someone's pull request could do.
 */
async function canaryPackage(dir: string, canary: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    join(dir, "pyproject.toml"),
    // Dynamic dependencies: uv cannot read them statically, it has to ask the backend.
    `[project]\nname = "canary-pkg"\nversion = "0.1.0"\ndynamic = ["dependencies"]\n\n` +
      `[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n`,
  );
  await Deno.writeTextFile(
    join(dir, "backend.py"),
    `import pathlib\npathlib.Path(${JSON.stringify(canary)}).write_text("built")\n` +
      `def get_requires_for_build_wheel(config_settings=None):\n    return []\n`,
  );
  return dir;
}

Deno.test("plan --no-build / validate --no-build run no build backend and say what they could not check", async () => {
  await withTempDir(async (dir) => {
    const { paths, env } = await createRealEnv(join(dir, "home"), "e");
    const run = (...args: string[]) => cli(args, { env });
    const canary = join(dir, "CANARY");
    const pkg = await canaryPackage(join(dir, "canary-pkg"), canary);
    // Someone's pull request adds a dependency that needs a build.
    const text = await Deno.readTextFile(paths.pyproject);
    await Deno.writeTextFile(
      paths.pyproject,
      text + `\n[dependency-groups]\nuser = ["canary-pkg @ file://${pkg}"]\n`,
    );

    const plan = await run("plan", "--no-build");
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(
      plan.stdout,
      /packages: uv\.lock could not be checked without building: canary-pkg @ file:\/\/.* has no wheel, and reading its metadata would run its build backend \(setup\.py\); with --no-build, packages that have no wheel cannot be checked/,
    );
    const validate = await run("validate", "--no-build", "--offline");
    assert.match(validate.stderr, /warning: uv\.lock could not be checked without building/);
    assert.equal(await exists(canary), false, "no build backend ran");

    // The canary works: without --no-build the trial lock runs the backend.
    await run("plan");
    assert.equal(await exists(canary), true, "the backend runs without --no-build");
  });
});

Deno.test("a hand edit of [dependency-groups]: apply re-locks, says to commit both, and the commit validates", async () => {
  await withTempDir(async (dir) => {
    const { paths, env } = await createRealEnv(join(dir, "home"), "e");
    const run = (...args: string[]) => cli(args, { env });
    const head = await git.revParse(paths.cec, "HEAD");
    await Deno.writeTextFile(
      paths.pyproject,
      (await Deno.readTextFile(paths.pyproject)) + `\n[dependency-groups]\nuser = ["delta[fast]"]\n`,
    );
    const applied = await run("apply", "--yes");
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(
      applied.stdout,
      /note: uv\.lock was re-locked for the uncommitted edits of \.cec\/pyproject\.toml: commit both with 'comfydock commit -m MSG'/,
    );
    assert.equal(
      await git.revParse(paths.cec, "HEAD"),
      head,
      "uv.lock is not committed without its pyproject",
    );
    assert.equal((await run("commit", "-m", "add delta")).code, 0);
    const v = await run("validate", "--offline");
    assert.equal(v.code, 0, v.stderr);
    assert.equal((await run("plan", "--detailed-exitcode")).code, 0);
  });
});

Deno.test("status --deep finds a package file edited in place; config keeps index settings per machine", async () => {
  await withTempDir(async (dir) => {
    const { paths, env } = await createRealEnv(join(dir, "home"), "e");
    const run = (...args: string[]) => cli(args, { env });
    const lib = join(paths.venv, "lib");
    const sp = join(lib, (await Array.fromAsync(Deno.readDir(lib)))[0].name, "site-packages");
    const init = join(sp, "beta", "__init__.py");
    const text = await Deno.readTextFile(init);
    await Deno.writeTextFile(init, text.replace("2.0.0", "6.6.6"));
    const deep = await run("status", "--deep", "--check");
    assert.equal(deep.code, 2, deep.stdout + deep.stderr);
    assert.match(deep.stdout, /✗ packages +beta: 1 file changed \(beta\/__init__\.py\): reinstall beta/);

    assert.equal(
      (await run("config", "set", "torch_index_mirror", "https://mirror.corp/pytorch/whl/")).code,
      0,
    );
    assert.equal((await run("config", "set", "extra_indexes", "corp=https://pkgs.corp/simple")).code, 0);
    const bad = await run("config", "set", "default_index", "https://user:pw@mirror.corp/simple");
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /must not contain credentials \(store them with 'comfydock config set-key index:NAME'\)/,
    );
    const key = await cli(["config", "set-key", "index:pytorch"], { env, stdin: "me:s3cret-token\n" });
    assert.equal(key.code, 0, key.stderr);
    const listed = await run("config", "list");
    assert.match(listed.stdout, /torch_index_mirror +"https:\/\/mirror\.corp\/pytorch\/whl"/);
    assert.match(listed.stdout, /key index:pytorch +\*\*\*\*oken +\(keys\.json\)/);
    assert.doesNotMatch(listed.stdout, /s3cret/);
    assert.doesNotMatch(await Deno.readTextFile(paths.pyproject), /mirror\.corp|pkgs\.corp/);
  });
});
