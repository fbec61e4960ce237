/** plan / apply / status / repair through the CLI on a real environment: exit codes and machine output. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, jsonData } from "../../fixtures/cli.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { acquireLock } from "../../reconcile/lock.ts";

Deno.test("CLI: exit codes, --target, one JSON document per command, lock holder named", async () => {
  await withTempDir(async (dir) => {
    const { paths, env } = await createRealEnv(join(dir, "home"), "e");
    const run = (...args: string[]) => cli(args, { env });

    assert.equal((await run("plan", "--detailed-exitcode")).code, 0);
    assert.equal((await run("status", "--check")).code, 0);

    for (const name of ["stray-a", "stray-b"]) await Deno.mkdir(join(paths.customNodes, name));
    const check = await run("status", "--check");
    assert.equal(check.code, 2);
    assert.match(check.stdout, /✗ node\.stray-a +not in \.cec/);
    assert.equal((await run("plan", "--detailed-exitcode")).code, 2);

    const targeted = jsonData(await run("plan", "--json", "--target", "node.stray-a"));
    assert.deepEqual(targeted.actions.map((a: { address: string }) => a.address), ["node.stray-a"]);

    // Without a terminal and without --yes, apply refuses to guess.
    const asked = await run("apply");
    assert.equal(asked.code, 1);
    assert.match(asked.stderr, /pass --yes/);

    const locked = await acquireLock(paths.state, "apply");
    try {
      const busy = await run("apply", "--yes");
      assert.equal(busy.code, 1);
      assert.match(busy.stderr, new RegExp(`locked by pid ${Deno.pid} on .*'comfydock apply'`));
    } finally {
      await locked.release();
    }

    const applied = await run("apply", "--yes", "--json");
    assert.equal(applied.code, 0, applied.stderr);
    const result = jsonData(applied); // one document: plan, applied, summary, trash
    assert.equal(result.plan.actions.length, 2);
    assert.deepEqual(result.summary, { add: 0, change: 0, remove: 2 });
    assert.ok(result.trash, "removed nodes are kept in the trash");
    assert.equal((await run("plan", "--detailed-exitcode")).code, 0);

    const noop = jsonData(await run("apply", "--yes", "--json"));
    assert.equal(noop.applied, false);
    assert.deepEqual(noop.plan.actions, []);
    const repair = await run("repair");
    assert.match(repair.stdout, /Nothing to repair/);
  });
});
