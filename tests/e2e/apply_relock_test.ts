/**
 * `apply` after a hand edit of `[dependency-groups]` (the README's way to add a package): no commit the tool
 * makes may fail `validate` (issue #19: apply committed only uv.lock, and validate then rejected HEAD).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli } from "../../fixtures/cli.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { run } from "../../lib/proc.ts";
import { TEST_GIT_IDENTITY } from "../../fixtures/tools.ts";
import { tempRoot } from "../../fixtures/tmp.ts";

const root = await tempRoot("comfydock-e2e-relock-");
const { paths, env } = await createRealEnv(join(root, "ws"), "env");
const comfydock = (...args: string[]) => cli(args, { env });
// The test's own commits carry its own identity: a fresh machine has none configured.
const git = async (...args: string[]) =>
  (await run("git", ["-C", paths.cec, ...args], { env: { ...TEST_GIT_IDENTITY } })).stdout.trim();

Deno.test("uncommitted pyproject edits: apply re-locks and installs, commits nothing, says to commit both", async () => {
  const head = await git("rev-parse", "HEAD");
  await Deno.writeTextFile(
    paths.pyproject,
    (await Deno.readTextFile(paths.pyproject)) + '\n[dependency-groups]\nuser = ["epsilon==1.0.0"]\n',
  );
  const r = await comfydock("apply", "--yes");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /note: uv\.lock was re-locked for the uncommitted edits of \.cec\/pyproject\.toml/);
  assert.equal(await git("rev-parse", "HEAD"), head, "no commit of a lock without its pyproject");
  assert.match(
    await git("status", "--porcelain"),
    /M pyproject\.toml\n M uv\.lock|M pyproject\.toml[\s\S]*M uv\.lock/,
  );
  const c = await comfydock("commit", "-m", "add epsilon");
  assert.equal(c.code, 0, c.stderr);
  const v = await comfydock("validate", "--offline");
  assert.equal(v.code, 0, v.stderr);
  assert.equal((await comfydock("plan", "--detailed-exitcode")).code, 0);
});

Deno.test("a committed pyproject with a stale lock: apply commits the new lock, and HEAD validates", async () => {
  const text = await Deno.readTextFile(paths.pyproject);
  await Deno.writeTextFile(
    paths.pyproject,
    text.replace('"epsilon==1.0.0"', '"epsilon==1.0.0", "delta==0.5.0"'),
  );
  await git("commit", "-qam", "delta, lock not refreshed");
  const r = await comfydock("apply", "--yes");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await git("log", "-1", "--format=%s"), "apply: re-lock uv.lock");
  assert.equal(await git("status", "--porcelain"), "");
  const v = await comfydock("validate", "--offline");
  assert.equal(v.code, 0, v.stderr);
});
