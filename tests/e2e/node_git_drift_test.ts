/**
 * Hand edits in a git node's checkout are drift, like edits of a registry node's files (issue #18): plan,
 * status and drift show them; apply without --force leaves them and says how to keep them; apply --force
 * restores the checkout and keeps the edited one in the trash. The CLI as a user types it, on a real
 * environment and a real git repository.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, jsonData } from "../../fixtures/cli.ts";
import { gitIn, makeNodeRepo } from "../../fixtures/node_git.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { deadUrl } from "../../fixtures/registry_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { listFiles } from "../../lib/fsx.ts";

Deno.test("git node: uncommitted edits and untracked files are drift; apply keeps them, --force restores", async () => {
  await withTempDir(async (dir) => {
    const { paths, env: base } = await createRealEnv(join(dir, "home"), "e");
    const env = { ...base, COMFYDOCK_REGISTRY_URL: await deadUrl(), COMFYDOCK_HTTP_RETRY_BASE_MS: "1" };
    const run = (...args: string[]) => cli(args, { env });
    const repo = await makeNodeRepo(dir, "delta-pack", [{ tag: "v1" }]);

    let r = await run("node", "add", `${repo.url}@v1`, "--yes");
    assert.equal(r.code, 0, r.stderr);
    const checkout = join(paths.customNodes, "delta-pack");
    assert.equal(
      (await gitIn(checkout, "status", "--porcelain")).stdout,
      "",
      "our marker is not an untracked file",
    );
    assert.equal((await run("plan", "--detailed-exitcode")).code, 0, "a clean checkout is in sync");

    // One line appended to a tracked file, one new file: two files changed by hand.
    await Deno.writeTextFile(join(checkout, "__init__.py"), "\n# my local hack\n", { append: true });
    await Deno.writeTextFile(join(checkout, "scratch.py"), "print('mine')\n");

    const plan = await run("plan", "--detailed-exitcode");
    assert.equal(plan.code, 2, plan.stdout + plan.stderr);
    assert.match(plan.stdout, /~ node\.delta-pack will be updated: 2 files changed by hand/);
    assert.match(plan.stdout, /__init__\.py/);
    assert.match(plan.stdout, /scratch\.py/);

    const status = await run("status", "--check");
    assert.equal(status.code, 2);
    assert.match(status.stdout, /✗ node\.delta-pack +2 files changed by hand/);

    const drift = await run("drift", "--json");
    assert.equal(drift.code, 2);
    const groups = jsonData(drift).groups as { key: string; items: { address: string }[] }[];
    assert.deepEqual(
      groups.find((g) => g.key === "changed-nodes")?.items.map((i) => i.address),
      ["node.delta-pack"],
    );

    // Without --force: the edits stay, and the output says how to keep them (or how to drop them).
    r = await run("apply", "--yes");
    assert.equal(r.code, 0, r.stderr);
    const said = r.stdout + r.stderr;
    assert.match(said, /node\.delta-pack: left as it is/);
    assert.match(said, /comfydock node add ComfyUI\/custom_nodes\/delta-pack --dev/);
    assert.match(said, /comfydock node update delta-pack --ref/);
    assert.match(said, /--force/);
    assert.match(said, /0 added, 0 changed, 0 removed/);
    assert.match(await Deno.readTextFile(join(checkout, "__init__.py")), /my local hack/);
    assert.equal(await Deno.readTextFile(join(checkout, "scratch.py")), "print('mine')\n");
    assert.equal((await run("plan", "--detailed-exitcode")).code, 2, "still drift: nothing was hidden");

    // With --force: the checkout is restored; the edited checkout, edits included, is in the trash.
    r = await run("apply", "--yes", "--force");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /1 changed/);
    assert.doesNotMatch(await Deno.readTextFile(join(checkout, "__init__.py")), /my local hack/);
    assert.equal((await gitIn(checkout, "status", "--porcelain")).stdout, "");
    const trash = /kept in (\S+)/.exec(r.stdout)?.[1];
    assert.ok(trash, r.stdout);
    const kept = await listFiles(trash);
    const hack = kept.find((f) => f.endsWith("/__init__.py"));
    assert.ok(hack && kept.some((f) => f.endsWith("/scratch.py")), kept.join(", "));
    assert.match(await Deno.readTextFile(join(trash, hack)), /my local hack/);
    assert.equal((await run("plan", "--detailed-exitcode")).code, 0);

    // The first way to keep edits, as the hint prints it (from any directory): the checkout becomes a dev
    // node in place; the code stays where it is and the plan is clean.
    await Deno.writeTextFile(join(checkout, "__init__.py"), "\n# kept this time\n", { append: true });
    r = await cli(["node", "add", "ComfyUI/custom_nodes/delta-pack", "--dev", "--yes"], { env, cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      await Deno.readTextFile(paths.pyproject),
      /\[tool\.comfydock\.nodes\.delta-pack\]\s*source = "dev"\s*path = "ComfyUI\/custom_nodes\/delta-pack"/,
    );
    assert.equal((await run("plan", "--detailed-exitcode")).code, 0);
    assert.match(await Deno.readTextFile(join(checkout, "__init__.py")), /kept this time/);
  });
});
