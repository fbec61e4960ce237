/**
 * A fleet (DESIGN §9): two self-hosted GPU runners reconciling the same `.cec`, plus a hosted runner that only
 * validates. Each machine keeps its own plan comment and drift issue, named after it; a drift issue gets a
 * comment only when its report changed; a fork's pull request is planned untrusted with no comment; validate
 * needs no environment. Real checkouts, the real engine, `comfydock action` as a subprocess.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startGitHubServer } from "../../fixtures/github_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { createGitOpsRepo, createRunner, REPO } from "../../fixtures/runner.ts";
import { run } from "../../lib/proc.ts";

Deno.test("a fleet of two GPU machines and a hosted runner: comments and issues per machine", async (t) => {
  await withTempDir(async (dir) => {
    const server = startGitHubServer();
    try {
      const repo = await createGitOpsRepo(dir, server);
      const machines = [createRunner(dir, "gpu-1", repo), createRunner(dir, "gpu-2", repo)];
      const inputs = (command: string) => ({ command, environment: repo.cecRel });
      const main = await repo.mainSha();
      for (const m of machines) {
        const job = await m.job({ name: "push", sha: main }, inputs("apply"));
        assert.equal(job.code, 0, job.stderr);
      }

      const pyproject = await repo.read(`${repo.cecRel}/pyproject.toml`);
      await repo.commit("portrait", "Track the portrait workflow", {
        [`${repo.cecRel}/workflows/portrait.json`]: '{"nodes": [], "links": []}\n',
        [`${repo.cecRel}/pyproject.toml`]: pyproject +
          '\n[tool.comfydock.workflows.tracked.portrait]\nfile = "workflows/portrait.json"\n',
      });
      const pr = await repo.openPullRequest("portrait");

      await t.step("each machine plans the pull request into its own comment, named after it", async () => {
        for (const m of machines) {
          const job = await m.job({ name: "pull_request", pr }, inputs("plan"));
          assert.equal(job.code, 0, job.stderr);
          assert.equal(job.statusAfter, job.statusBefore);
        }
        const comments = server.comments(REPO, pr.number);
        assert.equal(comments.length, 2);
        for (const [i, m] of machines.entries()) {
          assert.match(comments[i].body, new RegExp(`^<!-- comfydock:plan:${m.name}/prod -->`));
          assert.match(comments[i].body, new RegExp(`ComfyDock plan: \`prod\` on \`${m.name}\``));
          assert.match(comments[i].body, /\+ \+ workflow\.portrait: missing in ComfyUI/);
        }
      });

      await t.step(
        "drift on one machine opens its issue only; the same report again adds nothing",
        async () => {
          await Deno.mkdir(
            join(machines[1].home, "environments", "prod", "ComfyUI", "custom_nodes", "hand-made"),
          );
          for (const m of machines) {
            const job = await m.job({ name: "schedule" }, inputs("drift"));
            assert.equal(job.code, 0, job.stderr);
          }
          let issues = server.issues(REPO);
          assert.deepEqual(issues.map((i) => i.title), [
            "Drift: environment prod on gpu-2 differs from its .cec",
          ]);
          assert.match(issues[0].body!, /node\.hand-made/);
          const again = await machines[1].job({ name: "schedule" }, inputs("drift"));
          assert.match(again.stdout, /drift issue #\d+ unchanged/);
          assert.equal(server.comments(REPO, issues[0].number).length, 0, "no comment for the same report");
          await Deno.mkdir(
            join(machines[1].home, "environments", "prod", "ComfyUI", "custom_nodes", "second"),
          );
          await machines[1].job({ name: "schedule" }, inputs("drift"));
          assert.equal(server.comments(REPO, issues[0].number).length, 1, "a changed report is commented");
          issues = server.issues(REPO);
          assert.equal(issues.length, 1);
        },
      );

      await t.step("a fork's pull request is planned untrusted, into the summary only", async () => {
        await repo.commit("fork-change", "From a fork", {
          [`${repo.cecRel}/workflows/fork.json`]: '{"nodes": []}\n',
        });
        const forkPr = await repo.openPullRequest("fork-change", { fork: true });
        const job = await machines[0].job({ name: "pull_request", pr: forkPr }, inputs("plan"));
        assert.equal(job.code, 0, job.stderr);
        assert.match(job.summary, /comes from a fork[\s\S]*untrusted mode/);
        assert.match(job.summary, /ComfyDock plan: `prod` on `gpu-1`/);
        assert.equal(server.comments(REPO, forkPr.number).length, 0);
        assert.equal(job.statusAfter, job.statusBefore);
      });

      await t.step("validate on a hosted runner needs no environment and creates none", async () => {
        const hosted = createRunner(dir, "hosted", repo);
        const ok = await hosted.job({ name: "pull_request", pr }, {
          ...inputs("validate"),
          comment: "false",
        });
        assert.equal(ok.code, 0, ok.stdout + ok.stderr);
        assert.match(ok.summary, /ComfyDock validate: `prod` on `hosted`[\s\S]*Valid\./);
        assert.equal(ok.statusAfter, ok.statusBefore, "nothing written into the checkout");
        assert.deepEqual(
          await Array.fromAsync(Deno.readDir(join(hosted.home, "environments"))).catch(() => []),
          [],
          "no environment was made, and the scratch folder is gone",
        );
        const stale = await repo.commit("stale", "Add a package without locking", {
          [`${repo.cecRel}/pyproject.toml`]: pyproject + '\n[dependency-groups]\nuser = ["delta"]\n',
        });
        const bad = await hosted.job({ name: "push", sha: stale }, inputs("validate"));
        assert.equal(bad.code, 1);
        assert.match(
          bad.stdout,
          /^::error title=comfydock validate \(prod on hosted\)::.*uv\.lock is out of date/m,
        );
        assert.equal(bad.outputs.exitcode, "1");

        // locked: false lets apply re-lock: into the environment's .cec, never the checkout.
        const relocked = await machines[0].job({ name: "push", sha: stale }, {
          ...inputs("apply"),
          locked: "false",
        });
        assert.equal(relocked.code, 0, relocked.stdout + relocked.stderr);
        assert.equal(relocked.statusAfter, relocked.statusBefore, "the checkout's uv.lock is untouched");
        const envCec = join(machines[0].home, "environments", "prod", ".cec");
        assert.match(await Deno.readTextFile(join(envCec, "uv.lock")), /name = "delta"/);
        assert.doesNotMatch(await repo.read(`${repo.cecRel}/uv.lock`, stale), /name = "delta"/);
        const committed = await run("git", ["-C", envCec, "status", "--porcelain"]);
        assert.equal(committed.stdout, "", "the re-lock is committed in the environment's .cec");
      });
    } finally {
      await server.close();
    }
  });
});
