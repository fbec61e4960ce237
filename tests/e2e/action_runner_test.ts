/**
 * The Action on a self-hosted runner, job after job, as GitHub runs it (DESIGN §9): real git checkouts of a
 * bare origin (`git clean -ffdx && git reset --hard` between jobs, as actions/checkout does), `comfydock
 * action` as a subprocess configured by INPUT_* and GITHUB_*, the real engine, the local GitHub API server.
 * One pull request's life: first apply, a no-op apply after a clean, a PR plan that touches nothing, a
 * stale lock refused up front, the merge applying the approved plan, and an approved plan that no longer
 * matches the machine.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { run } from "../../lib/proc.ts";
import { findPython } from "../../providers/packages/python.ts";
import { testSettings } from "../../fixtures/app.ts";
import { startGitHubServer } from "../../fixtures/github_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { createGitOpsRepo, createRunner, type GitOpsRepo, type Job, REPO } from "../../fixtures/runner.ts";

const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

async function cecHead(envRoot: string): Promise<{ sha: string; message: string }> {
  const out = (await run("git", ["-C", join(envRoot, ".cec"), "log", "-1", "--format=%H%n%B"])).stdout;
  const [sha, ...message] = out.trim().split("\n");
  return { sha, message: message.join("\n") };
}

async function installed(envRoot: string): Promise<string[]> {
  const site = (await Array.fromAsync(Deno.readDir(join(envRoot, ".venv", "lib"))))[0].name;
  return (await Array.fromAsync(Deno.readDir(join(envRoot, ".venv", "lib", site, "site-packages"))))
    .map((e) => e.name).filter((n) => n.endsWith(".dist-info")).map((n) => n.split("-")[0].toLowerCase())
    .sort();
}

/**
 * The developer's change of pyproject.toml on `branch`, locked with `uv lock` (what the fix hint tells them to
 * run) and committed with its uv.lock.
 */
async function lockedChange(repo: GitOpsRepo, branch: string, pyproject: string): Promise<void> {
  await repo.checkoutBranch(branch);
  const cec = join(repo.author, repo.cecRel);
  await Deno.writeTextFile(join(cec, "pyproject.toml"), pyproject);
  const python = await findPython(testSettings().system, "3.12");
  await run(repo.env.COMFYDOCK_UV ?? "uv", ["lock", "--quiet", "--python", python.path], {
    cwd: cec,
    env: { UV_PYTHON_DOWNLOADS: "never" },
  });
  await repo.commit(branch, `Change and lock ${branch}`, {
    [`${repo.cecRel}/pyproject.toml`]: pyproject,
    [`${repo.cecRel}/uv.lock`]: await Deno.readTextFile(join(cec, "uv.lock")),
  });
}

function assertCheckoutUntouched(job: Job, what: string) {
  assert.equal(job.statusAfter, job.statusBefore, `${what}: nothing was written into the checkout`);
}

Deno.test("a self-hosted runner through a pull request's life: the environment lives outside the checkout", async (t) => {
  await withTempDir(async (dir) => {
    const server = startGitHubServer();
    try {
      const repo = await createGitOpsRepo(dir, server);
      const gpu = createRunner(dir, "gpu-1", repo);
      const env = join(gpu.home, "environments", "prod");
      const apply = { command: "apply", environment: repo.cecRel };
      const base = await repo.mainSha();
      let mainPyproject = await repo.read(`${repo.cecRel}/pyproject.toml`);

      await t.step(
        "a plan on a machine without the environment plans its first apply, creating nothing",
        async () => {
          const plan = await gpu.job({ name: "schedule" }, { command: "plan", environment: repo.cecRel });
          assert.equal(plan.code, 0, plan.stderr);
          assert.equal(plan.outputs.changes, "true");
          assert.match(plan.summary, /Environment `prod` on `gpu-1` does not exist yet[\s\S]*\+ \+ comfyui/);
          assertCheckoutUntouched(plan, "plan");
          const left = await Array.fromAsync(Deno.readDir(join(gpu.home, "environments"))).catch(() => []);
          assert.deepEqual(left, [], "no environment, no scratch folder left");
        },
      );

      await t.step(
        "the first apply creates the environment in the runner's workspace from the checkout",
        async () => {
          const first = await gpu.job({ name: "push", sha: base }, apply);
          assert.equal(first.code, 0, first.stderr);
          assertCheckoutUntouched(first, "first apply");
          assert.ok(await exists(join(env, "ComfyUI", ".git")), "ComfyUI is in the runner's workspace");
          assert.ok(await exists(join(env, ".venv")), "the venv is in the runner's workspace");
          assert.ok(
            !await exists(join(gpu.work, "envs", "prod", "ComfyUI")),
            "nothing is built in the checkout",
          );
          assert.match(
            (await cecHead(env)).message,
            new RegExp(`${REPO}@${base}`),
            "history names the commit",
          );
          assert.equal(first.outputs.changes, "true");
          assert.match(first.summary, /ComfyDock apply: `prod` on `gpu-1`[\s\S]*Apply complete: \d+ added/);
          assert.ok(first.outputs["plan-json"].startsWith(gpu.temp), "the plan JSON is under RUNNER_TEMP");
          assert.match(first.stdout, /^::group::/m, "uv and git output are folded");
          assert.match(first.stdout, /^::endgroup::$/m);
        },
      );

      await t.step(
        "a second apply after the checkout's clean finds nothing to do and rebuilds nothing",
        async () => {
          const mainPy = (await Deno.stat(join(env, "ComfyUI", "main.py"))).ino;
          const venvCfg = (await Deno.stat(join(env, ".venv", "pyvenv.cfg"))).mtime?.getTime();
          const before = await cecHead(env);
          const second = await gpu.job({ name: "push", sha: base }, apply);
          assert.equal(second.code, 0, second.stderr);
          assertCheckoutUntouched(second, "second apply");
          assert.equal(second.outputs.changes, "false");
          assert.match(second.summary, /nothing to do/);
          assert.equal((await Deno.stat(join(env, "ComfyUI", "main.py"))).ino, mainPy, "ComfyUI kept");
          assert.equal(
            (await Deno.stat(join(env, ".venv", "pyvenv.cfg"))).mtime?.getTime(),
            venvCfg,
            "venv kept",
          );
          assert.deepEqual(await cecHead(env), before, "no new .cec commit");
          const plan = await gpu.job({ name: "schedule" }, { command: "plan", environment: repo.cecRel });
          assert.equal(plan.code, 0, plan.stderr);
          assert.equal(plan.outputs.changes, "false");
          const drift = await gpu.job({ name: "schedule" }, { command: "drift", environment: repo.cecRel });
          assert.equal(drift.code, 0, drift.stderr);
          assert.equal(server.issues(REPO).length, 0, "no drift issue");
        },
      );

      // A pull request adds a package (with its uv.lock): planned on the runner, nothing applied.
      mainPyproject += '\n[dependency-groups]\nuser = ["delta"]\n';
      await lockedChange(repo, "add-delta", mainPyproject);
      const pr = await repo.openPullRequest("add-delta");

      await t.step(
        "a pull request's plan shows its change and touches neither the environment nor its .cec",
        async () => {
          const before = await cecHead(env);
          const packages = await installed(env);
          const plan = await gpu.job({ name: "pull_request", pr }, {
            command: "plan",
            environment: repo.cecRel,
          });
          assert.equal(plan.code, 0, plan.stderr);
          assertCheckoutUntouched(plan, "PR plan");
          assert.equal(plan.outputs.changes, "true");
          assert.deepEqual(await cecHead(env), before, "the environment's .cec is unchanged");
          assert.deepEqual(await installed(env), packages, "the venv is unchanged");
          const comments = server.comments(REPO, pr.number);
          assert.equal(comments.length, 1);
          assert.match(comments[0].body, /^<!-- comfydock:plan:gpu-1\/prod -->/);
          assert.match(comments[0].body, /ComfyDock plan: `prod` on `gpu-1`/);
          assert.match(comments[0].body, /~ packages: .*delta/);
          assert.match(comments[0].body, /Plan hash: `[0-9a-f]{64}`/);
        },
      );

      await t.step("a stale uv.lock fails before anything changes, naming the fix", async () => {
        const stalePyproject = mainPyproject.replace('user = ["delta"]', 'user = ["delta", "epsilon"]');
        const staleSha = await repo.commit("stale", "Add epsilon without locking", {
          [`${repo.cecRel}/pyproject.toml`]: stalePyproject,
        });
        const stalePr = await repo.openPullRequest("stale");
        const before = await cecHead(env);
        const packages = await installed(env);
        const plan = await gpu.job(
          { name: "pull_request", pr: stalePr },
          { command: "plan", environment: repo.cecRel },
        );
        assert.equal(plan.code, 1);
        const fix =
          "uv.lock is out of date with pyproject.toml: run 'comfydock apply' locally (or 'uv lock') " +
          "and commit uv.lock";
        assert.ok(plan.summary.includes(fix), plan.summary);
        const applied = await gpu.job({ name: "push", sha: staleSha }, apply);
        assert.equal(applied.code, 1);
        assert.ok(
          applied.stdout.includes(fix) || applied.stderr.includes(fix),
          applied.stdout + applied.stderr,
        );
        assert.doesNotMatch(applied.stdout + applied.stderr, /GIT_FAILED|install git/);
        assertCheckoutUntouched(applied, "apply with a stale lock");
        assert.deepEqual(await cecHead(env), before, "the environment's .cec is unchanged");
        assert.deepEqual(await installed(env), packages, "the venv is unchanged");
        assert.equal(applied.outputs.exitcode, "1");
      });

      await t.step("merging applies the plan approved on the pull request", async () => {
        const merged = await repo.merge(pr);
        const job = await gpu.job({ name: "push", sha: merged }, { ...apply, "approved-plan": "required" });
        assert.equal(job.code, 0, job.stdout + job.stderr);
        assertCheckoutUntouched(job, "approved apply");
        assert.ok((await installed(env)).includes("delta"));
        assert.match(job.summary, new RegExp(`approved on #${pr.number}`));
        const head = await cecHead(env);
        assert.match(head.message, new RegExp(`${REPO}@${merged}`), "the applied revision is recorded");
        assert.equal(
          await Deno.readTextFile(join(env, ".cec", "uv.lock")),
          await repo.read(`${repo.cecRel}/uv.lock`),
          "the environment's .cec holds the repository's lock",
        );
      });

      await t.step("an approved plan that no longer matches the machine is refused, saying why", async () => {
        await lockedChange(
          repo,
          "add-epsilon",
          mainPyproject.replace('user = ["delta"]', 'user = ["delta", "epsilon"]'),
        );
        const pr2 = await repo.openPullRequest("add-epsilon");
        const plan = await gpu.job({ name: "pull_request", pr: pr2 }, {
          command: "plan",
          environment: repo.cecRel,
        });
        assert.equal(plan.code, 0, plan.stderr);
        // Someone installs a node by hand on the machine between the review and the merge.
        await Deno.mkdir(join(env, "ComfyUI", "custom_nodes", "hand-made"));
        const before = await cecHead(env);
        const merged = await repo.merge(pr2);
        const refused = await gpu.job({ name: "push", sha: merged }, {
          ...apply,
          "approved-plan": "required",
        });
        assert.equal(refused.code, 1);
        assert.match(refused.summary, /PLAN_NOT_APPROVED/);
        assert.match(refused.summary, /node\.hand-made/);
        assert.ok(!(await installed(env)).includes("epsilon"), "nothing was applied");
        assert.ok(await exists(join(env, "ComfyUI", "custom_nodes", "hand-made")));
        assert.deepEqual(await cecHead(env), before);
        // Reviewed by a person in the failed run's summary: applied with auto-approve (a manual run).
        const manual = await gpu.job({ name: "workflow_dispatch" }, {
          ...apply,
          "approved-plan": "auto-approve",
        });
        assert.equal(manual.code, 0, manual.stderr);
        assert.ok((await installed(env)).includes("epsilon"));
      });
    } finally {
      await server.close();
    }
  });
});
