/**
 * `comfydock action` as GitHub runs it: a subprocess configured only by INPUT_* and GITHUB_* variables,
 * planning with the real engine, talking to the local GitHub API server.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, type CliResult } from "../../fixtures/cli.ts";
import { startGitHubServer } from "../../fixtures/github_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";

const REPO = "acme/studio";

function outputsOf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/^([\w-]+)<<(\S+)\n([\s\S]*?)\n\2$/gm)) out[m[1]] = m[3];
  return out;
}

Deno.test("comfydock action (subprocess): plan comments once per PR, outputs and summary, never the token", async () => {
  await withTempDir(async (dir) => {
    const server = startGitHubServer();
    try {
      // An environment's own .cec given by its path in the workspace: that environment, planned from it (the
      // runner scenarios with a separate checkout are in action_runner_test.ts).
      const { paths, env: realEnv } = await createRealEnv(join(dir, "repo"), "prod");
      const cec = paths.cec;
      const PYPROJECT = await Deno.readTextFile(paths.pyproject);
      const COMMIT = /comfyui_commit = "([0-9a-f]{40})"/.exec(PYPROJECT)![1];
      const commitLine = PYPROJECT.split("\n").findIndex((l) => l.startsWith("comfyui_commit")) + 1;
      const pr = server.addPullRequest(REPO);
      await Deno.writeTextFile(
        join(dir, "event.json"),
        JSON.stringify({ number: pr, pull_request: { number: pr } }),
      );
      let n = 0;
      const run = async (
        over: Record<string, string> = {},
      ): Promise<CliResult & { out: string; summary: string }> => {
        n++;
        const out = join(dir, `out-${n}`);
        const summary = join(dir, `summary-${n}`);
        const r = await cli(["action"], {
          cwd: join(dir, "repo"),
          env: {
            ...realEnv,
            INPUT_COMMAND: "plan",
            INPUT_ENVIRONMENT: "environments/prod/.cec",
            "INPUT_GITHUB-TOKEN": server.token,
            GITHUB_API_URL: server.url,
            GITHUB_REPOSITORY: REPO,
            GITHUB_EVENT_NAME: "pull_request",
            GITHUB_EVENT_PATH: join(dir, "event.json"),
            GITHUB_OUTPUT: out,
            GITHUB_STEP_SUMMARY: summary,
            GITHUB_WORKSPACE: join(dir, "repo"),
            RUNNER_TEMP: dir,
            RUNNER_NAME: "gpu-1",
            ...over,
          },
        });
        const read = (p: string) => Deno.readTextFile(p).catch(() => "");
        return { ...r, out: await read(out), summary: await read(summary) };
      };

      const first = await run();
      assert.equal(first.code, 0, first.stderr);
      const outputs = outputsOf(first.out);
      assert.equal(outputs.changes, "false");
      assert.equal(outputs.exitcode, "0");
      const saved = JSON.parse(await Deno.readTextFile(outputs["plan-json"]));
      assert.equal(saved.format_version, 1);
      assert.equal(saved.environment, "prod");
      assert.match(first.summary, /ComfyDock plan: `prod`[\s\S]*No changes\. Environment matches \.cec\./);
      assert.match(first.stdout, /plan comment created on #1/);

      const second = await run();
      assert.equal(second.code, 0, second.stderr);
      const comments = server.comments(REPO, pr);
      assert.equal(comments.length, 1, "the second run edits the same comment");
      assert.match(comments[0].body, /^<!-- comfydock:plan:gpu-1\/prod -->/);

      // An invalid pyproject: annotation on the right line, error in the comment, step fails.
      await Deno.writeTextFile(join(cec, "pyproject.toml"), PYPROJECT.replace(`"${COMMIT}"`, '"main"'));
      const invalid = await run();
      assert.equal(invalid.code, 1);
      assert.match(
        invalid.stdout,
        new RegExp(
          `^::error file=environments/prod/\\.cec/pyproject\\.toml,line=${commitLine},` +
            "title=Invalid \\.cec/pyproject\\.toml::tool\\.comfydock\\.comfyui_commit: ",
          "m",
        ),
      );
      assert.equal(outputsOf(invalid.out).exitcode, "1");
      assert.equal(server.comments(REPO, pr).length, 1);
      assert.match(server.comments(REPO, pr)[0].body, /PYPROJECT_INVALID/);

      // A rejected token: clear error, summary still written, token nowhere.
      await Deno.writeTextFile(join(cec, "pyproject.toml"), PYPROJECT);
      const wrong = "ghs_thisisnottherighttoken000";
      const denied = await run({ "INPUT_GITHUB-TOKEN": wrong });
      assert.equal(denied.code, 1);
      assert.match(
        denied.stdout,
        /::error title=GitHub API::GitHub API 401 failed on GET .*comments: Bad credentials/,
      );
      assert.match(denied.stderr, /hint \(GITHUB_API\): the token was rejected/);
      assert.match(denied.summary, /No changes\. Environment matches \.cec\./);
      for (const r of [first, second, invalid, denied]) {
        for (const text of [r.stdout, r.stderr, r.out, r.summary]) {
          assert.ok(!text.includes(server.token) && !text.includes(wrong), "the token is never printed");
        }
      }

      // Drift on a clean environment opens nothing.
      const scheduled = { GITHUB_EVENT_NAME: "schedule", GITHUB_EVENT_PATH: "" };
      const drift = await run({ ...scheduled, INPUT_COMMAND: "drift" });
      assert.equal(drift.code, 0, drift.stderr);
      assert.equal(outputsOf(drift.out).changes, "false");
      assert.equal(server.issues(REPO).length, 0);
      // Synced and healthy: drift also starts ComfyUI (the fixture's, with the node file it ships) and
      // says so in the summary.
      assert.match(
        drift.summary,
        /\*\*Health\*\*: ✅ healthy: ComfyUI started, 1 custom node pack\(s\) loaded/,
      );

      // A node pack installed by hand is drift: one issue with the report, closed once the machine is clean.
      const stray = join(paths.customNodes, "hand-installed");
      await Deno.mkdir(stray);
      const drifted = await run({ ...scheduled, INPUT_COMMAND: "drift" });
      assert.equal(drifted.code, 0, drifted.stderr);
      assert.equal(outputsOf(drifted.out).changes, "true");
      const issues = server.issues(REPO);
      assert.equal(issues.length, 1);
      assert.equal(issues[0].state, "open");
      assert.match(issues[0].body ?? "", /hand-installed/);
      // The stray folder has no __init__.py: ComfyUI cannot import it, and the summary names it.
      assert.match(drifted.summary, /\*\*Health\*\*: ❌ unhealthy: 1 of 2 custom node pack\(s\) failed/);
      assert.match(drifted.summary, /- `hand-installed`: hand-installed: IMPORT FAILED: FileNotFoundError/);
      // The Action's apply removes it, and records the apply in the environment's log like the CLI does.
      const applied = await run({ ...scheduled, INPUT_COMMAND: "apply" });
      assert.equal(applied.code, 0, applied.stderr);
      assert.equal(outputsOf(applied.out).changes, "true");
      assert.match(applied.summary, /Apply complete: 0 added, 0 changed, 1 removed\./);
      assert.match(applied.summary, /\*\*Health\*\*: ✅ healthy/);
      assert.equal(await Deno.stat(stray).then(() => true, () => false), false);
      const log = await Deno.readTextFile(join(dir, "repo", "logs", "prod.log"));
      assert.match(log, /\] apply: ok\n[\s\S]*hand-installed[\s\S]*result: 1 action\(s\) applied/);
      const clean = await run({ ...scheduled, INPUT_COMMAND: "drift" });
      assert.equal(clean.code, 0, clean.stderr);
      assert.equal(server.issues(REPO)[0].state, "closed");
    } finally {
      await server.close();
    }
  });
});

Deno.test("comfydock action (subprocess): a bad command input fails with a clear error", async () => {
  await withTempDir(async (dir) => {
    const r = await cli(["action"], {
      cwd: dir,
      env: { COMFYDOCK_HOME: join(dir, "home"), INPUT_COMMAND: "deploy" },
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /input 'command' is 'deploy', not plan, apply, drift or validate/);
  });
});
