/**
 * Git nodes move in one step (issue #19): `node update ID --ref REF` re-pins the commit (branch, tag or
 * commit; `--repository` for a fork) and re-reads that commit's requirements into the node's group; a commit
 * edited by hand in `.cec` is noticed by validate and, once the checkout moved, by plan. The CLI as a user
 * types it, on a real environment, real git repositories and real uv.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse } from "smol-toml";
import { cli, jsonData } from "../../fixtures/cli.ts";
import { gitIn, makeNodeRepo } from "../../fixtures/node_git.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { deadUrl } from "../../fixtures/registry_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";

type Doc = {
  tool: { comfydock: { nodes: Record<string, Record<string, string>> } };
  "dependency-groups": Record<string, string[]>;
};

Deno.test("git node: node update --ref moves the pin with its requirements; a hand-edited commit is noticed", async () => {
  await withTempDir(async (dir) => {
    const { paths, env: base } = await createRealEnv(join(dir, "home"), "e");
    const env = { ...base, COMFYDOCK_REGISTRY_URL: await deadUrl(), COMFYDOCK_HTTP_RETRY_BASE_MS: "1" };
    const run = (...args: string[]) => cli(args, { env });
    const doc = async () => parse(await Deno.readTextFile(paths.pyproject)) as Doc;
    const repo = await makeNodeRepo(dir, "omega-pack", [
      { tag: "v1", pack: { requirements: ["epsilon"] } },
      { tag: "v2", pack: { requirements: ["gamma==1.0.0"] } },
    ]);
    const [v1, v2] = repo.commits;
    const head = async () =>
      (await gitIn(join(paths.customNodes, "omega-pack"), "rev-parse", "HEAD")).stdout.trim();

    let r = await run("node", "add", `${repo.url}@v1`, "--yes");
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((await doc())["dependency-groups"]["omega-pack"], ["epsilon"]);

    // The old dead ends now point at the one way that works.
    r = await run("node", "update", "omega-pack", "--version", v2.sha);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--version applies to registry nodes/);
    assert.match(r.stderr, new RegExp(`comfydock node update omega-pack --ref ${v2.sha}`));
    r = await run("node", "add", `${repo.url}@v2`, "--no-apply");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /comfydock node update omega-pack --ref v2/);

    // One step: pin, requirements, lock, checkout.
    r = await run("node", "update", "omega-pack", "--ref", "v2", "--yes");
    assert.equal(r.code, 0, r.stderr);
    let node = (await doc()).tool.comfydock.nodes["omega-pack"];
    assert.equal(node.commit, v2.sha);
    assert.equal(node.ref, "v2");
    assert.deepEqual((await doc())["dependency-groups"]["omega-pack"], ["gamma==1.0.0"]);
    assert.match(await Deno.readTextFile(paths.uvLock), /name = "gamma"/);
    assert.equal(await head(), v2.sha);
    assert.equal((await run("plan", "--detailed-exitcode")).code, 0);

    // A commit sha is a pin of its own: no branch or tag is recorded for it.
    r = await run("node", "update", "omega-pack", "--ref", v1.sha.slice(0, 10), "--yes");
    assert.equal(r.code, 0, r.stderr);
    node = (await doc()).tool.comfydock.nodes["omega-pack"];
    assert.equal(node.commit, v1.sha);
    assert.equal(node.ref, undefined);
    assert.deepEqual((await doc())["dependency-groups"]["omega-pack"], ["epsilon"]);
    assert.equal(await head(), v1.sha);

    // A fork: another repository, same node.
    const fork = join(dir, "omega-fork");
    await gitIn(dir, "clone", "--quiet", repo.path, fork);
    await Deno.writeTextFile(join(fork, "requirements.txt"), "epsilon\ngamma\n");
    await gitIn(fork, "commit", "--quiet", "-am", "my fix");
    await gitIn(fork, "tag", "mine");
    r = await run("node", "update", "omega-pack", "--ref", "mine", "--repository", `file://${fork}`, "--yes");
    assert.equal(r.code, 0, r.stderr);
    node = (await doc()).tool.comfydock.nodes["omega-pack"];
    assert.equal(node.repository, `file://${fork}`);
    assert.deepEqual((await doc())["dependency-groups"]["omega-pack"], ["epsilon", "gamma"]);
    assert.equal((await run("plan", "--detailed-exitcode")).code, 0);

    // Back to upstream v1, then `commit =` edited by hand to v2: the group still holds v1's requirements.
    r = await run("node", "update", "omega-pack", "--ref", "v1", "--repository", repo.url, "--yes");
    assert.equal(r.code, 0, r.stderr);
    const text = await Deno.readTextFile(paths.pyproject);
    await Deno.writeTextFile(paths.pyproject, text.replace(`commit = "${v1.sha}"`, `commit = "${v2.sha}"`));
    assert.equal((await run("commit", "-m", "omega to v2 by hand")).code, 0);
    r = await run("validate");
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stdout + r.stderr,
      new RegExp(
        `node omega-pack: \\[dependency-groups\\]\\.omega-pack does not match the requirements of commit ` +
          `${v2.sha.slice(0, 12)} \\(missing: gamma==1\\.0\\.0; not required: epsilon\\)`,
      ),
    );
    assert.match(r.stdout + r.stderr, /comfydock node update omega-pack --ref/);
    // Apply moves the checkout as pinned; from then on plan says the group does not follow the commit.
    r = await run("apply", "--yes");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await head(), v2.sha);
    const plan = jsonData(await run("plan", "--json"));
    assert.match(plan.notes.join("\n"), /node\.omega-pack: \[dependency-groups\]\.omega-pack does not match/);
    r = await run("status");
    assert.match(r.stdout, /! node\.omega-pack +\[dependency-groups\]\.omega-pack does not match/);

    // The fix is the one step above; then everything agrees again.
    r = await run("node", "update", "omega-pack", "--ref", v2.sha, "--yes");
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((await doc())["dependency-groups"]["omega-pack"], ["gamma==1.0.0"]);
    assert.equal((await run("validate")).code, 0);
    assert.deepEqual(jsonData(await run("plan", "--json")).notes, []);
  });
});

Deno.test("node add: requirements.txt as pip reads it; every line that cannot be kept is named", async () => {
  await withTempDir(async (dir) => {
    const { paths, env: base } = await createRealEnv(join(dir, "home"), "e");
    const env = { ...base, COMFYDOCK_REGISTRY_URL: await deadUrl(), COMFYDOCK_HTTP_RETRY_BASE_MS: "1" };
    const repo = await makeNodeRepo(dir, "sigma-pack", [{
      tag: "v1",
      pack: {
        requirements: [
          "-r requirements/base.txt",
          "--extra-index-url https://download.pytorch.org/whl/cu121",
          "git+https://github.com/facebookresearch/sam2.git",
          "torch",
        ],
      },
    }]);
    await Deno.mkdir(join(repo.path, "requirements"));
    await Deno.writeTextFile(
      join(repo.path, "requirements", "base.txt"),
      'epsilon  # the pack\'s own needs\ndelta[fast]==0.5.0 ; python_version >= "3.8"\n',
    );
    await gitIn(repo.path, "add", "-A");
    await gitIn(repo.path, "commit", "--quiet", "-m", "split requirements");
    await gitIn(repo.path, "tag", "v2");

    const r = await cli(["node", "add", `${repo.url}@v2`, "--yes"], { env });
    assert.equal(r.code, 0, r.stderr);
    const group = (parse(await Deno.readTextFile(paths.pyproject)) as Doc)["dependency-groups"]["sigma-pack"];
    assert.deepEqual(group, ["epsilon", 'delta[fast]==0.5.0 ; python_version >= "3.8"']);
    assert.match(
      r.stderr,
      /warning: sigma-pack: requirements\.txt line 2 '--extra-index-url https:\/\/download\.pytorch\.org\/whl\/cu121' not kept/,
    );
    assert.match(
      r.stderr,
      /warning: sigma-pack: requirements\.txt line 3 'git\+https:\/\/github\.com\/facebookresearch\/sam2\.git' not kept: a URL without a package name/,
    );
    assert.match(r.stderr, /warning: sigma-pack: requirements\.txt line 4 'torch' not kept/);
    assert.doesNotMatch(await Deno.readTextFile(paths.pyproject), /download\.pytorch\.org\/whl\/cu121/);
    // The included requirements are installed: the lock and the venv hold them.
    assert.match(await Deno.readTextFile(paths.uvLock), /name = "delta"/);
    assert.equal((await cli(["plan", "--detailed-exitcode"], { env })).code, 0);
  });
});
