/**
 * `comfydock capture`: what was installed by hand is written into .cec in one commit, so the next apply
 * keeps it instead of moving it to the trash.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse } from "smol-toml";
import { cli, jsonData } from "../../fixtures/cli.ts";
import { makeNodeRepo } from "../../fixtures/node_git.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { run } from "../../lib/proc.ts";

Deno.test("capture: a plain node folder, a clean git checkout and a hand-installed package; a dirty checkout is skipped", async () => {
  await withTempDir(async (dir) => {
    const { paths, env } = await createRealEnv(join(dir, "home"), "e");
    const cmd = (...args: string[]) => cli(args, { env });

    await Deno.mkdir(join(paths.customNodes, "my-tweaks"));
    await Deno.writeTextFile(
      join(paths.customNodes, "my-tweaks", "__init__.py"),
      "NODE_CLASS_MAPPINGS = {}\n",
    );
    await Deno.writeTextFile(join(paths.customNodes, "my-tweaks", "requirements.txt"), "epsilon\n");
    const repo = await makeNodeRepo(dir, "git-pack", [{ tag: "v1" }]);
    await run("git", ["clone", "--quiet", repo.url, join(paths.customNodes, "git-pack")]);
    await run("git", ["clone", "--quiet", repo.url, join(paths.customNodes, "dirty-pack")]);
    await Deno.writeTextFile(join(paths.customNodes, "dirty-pack", "__init__.py"), "# edited by hand\n");
    const wheels = /find-links = \[\s*"([^"]+)"/.exec(await Deno.readTextFile(paths.pyproject))![1];
    const uv = env.COMFYDOCK_UV ?? "uv";
    await run(uv, [
      "pip",
      "install",
      "--python",
      join(paths.venv, "bin", "python"),
      "--no-index",
      "--find-links",
      wheels,
      "zeta-pkg",
    ], { env: { UV_PYTHON_DOWNLOADS: "never", UV_CACHE_DIR: join(dir, "uv-cache") } }); // not ~/.cache/uv

    const before = await cmd("plan", "--json");
    const planned = jsonData(before).actions.map((a: { address: string; kind: string }) =>
      `${a.kind} ${a.address}`
    );
    assert.ok(
      planned.includes("delete node.my-tweaks") && planned.includes("delete node.git-pack"),
      planned.join(", "),
    );

    const r = await cmd("capture", "--json");
    assert.equal(r.code, 0, r.stderr);
    const summary = jsonData(r);
    assert.deepEqual(summary.nodes.sort(), ["git-pack", "my-tweaks"]);
    assert.deepEqual(summary.packages, ["zeta-pkg==3.0.0"]);
    assert.match(summary.skipped.join("\n"), /dirty-pack: has uncommitted changes/);

    const data = parse(await Deno.readTextFile(paths.pyproject)) as {
      tool: { comfydock: { nodes: Record<string, Record<string, string>> } };
      "dependency-groups": Record<string, string[]>;
    };
    const nodes = data.tool.comfydock.nodes;
    assert.equal(nodes["my-tweaks"].source, "local");
    assert.equal(nodes["git-pack"].source, "git");
    assert.equal(nodes["git-pack"].commit, repo.commits[0].sha);
    assert.deepEqual(data["dependency-groups"]["my-tweaks"], ["epsilon"]);
    assert.deepEqual(data["dependency-groups"].user, ["zeta-pkg==3.0.0"]);
    const last = (await run("git", ["-C", paths.cec, "log", "-1", "--format=%s", "--name-only"])).stdout;
    assert.match(last, /^capture: node git-pack, node my-tweaks, package zeta-pkg==3\.0\.0/);
    assert.match(last, /uv\.lock/, "the capture commit carries its lock");

    // Nothing captured is planned away any more; the dirty checkout is drift that apply keeps without --force.
    const after = jsonData(await cmd("plan", "--json"));
    const left = after.actions.filter((a: { type: string }) => a.type === "node").map((
      a: { address: string; reason: string },
    ) => `${a.address}: ${a.reason}`);
    assert.deepEqual(left, [
      "node.dirty-pack: not in .cec (installed by hand); run 'comfydock capture' to keep it; 1 file with " +
      "uncommitted changes",
    ]);
    const applied = jsonData(await cmd("apply", "--yes", "--json"));
    assert.equal(applied.applied, true);
    assert.deepEqual(applied.plan.actions.map((a: { address: string }) => a.address), [
      "node.dirty-pack",
      "packages",
    ]);
    assert.deepEqual(applied.kept.map((k: { address: string }) => k.address), ["node.dirty-pack"]);
    assert.equal(
      await Deno.readTextFile(join(paths.customNodes, "dirty-pack", "__init__.py")),
      "# edited by hand\n",
    );
  });
});
