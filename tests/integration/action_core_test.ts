/**
 * The Action's core against the local GitHub API server (real HTTP, real octokit), with the per-environment
 * work injected as real Plans built as plain data.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CdError } from "../../lib/errors.ts";
import type { Action, Plan } from "../../reconcile/types.ts";
import { parsePyproject } from "../../reconcile/desired.ts";
import { type GitHubServer, startGitHubServer } from "../../fixtures/github_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { type ActionInputs, readActionInputs } from "../../action/inputs.ts";
import { type EnvOutcome, type EnvRunner, runAction } from "../../action/run.ts";
import { renderPlan } from "../../views/plan_text.ts";
import { type WorkspacePaths, workspacePaths } from "../../reconcile/paths.ts";
import { parseOutputs } from "../../fixtures/runner.ts";

const REPO = "acme/studio";

function action(address: string, kind: Action["kind"], reason: string, details?: string[]): Action {
  const type = address.split(".")[0] as Action["type"];
  return { address, type, kind, reason, before: null, after: kind === "delete" ? null : { v: 1 }, details };
}

function plan(environment: string, actions: Action[], notes: string[] = []): Plan {
  return {
    format_version: 1,
    environment,
    created_at: "2026-11-25T04:00:00.000Z",
    fingerprints: { desired: "d".repeat(64), observed: "o".repeat(64) },
    actions,
    notes,
  };
}

const outcome = (p: Plan): EnvOutcome => ({
  plan: p,
  rendered: renderPlan(p),
  exitcode: p.actions.length ? 2 : 0,
});

/** A runner that returns, per environment name, the next plan of its queue. */
function scripted(plans: Record<string, (Plan | Error)[]>): EnvRunner {
  return (spec) => {
    const next = plans[spec.paths.name]?.shift();
    if (!next) throw new Error(`no scripted plan left for ${spec.paths.name}`);
    if (next instanceof Error) return Promise.reject(next);
    return Promise.resolve(outcome(next));
  };
}

interface Run {
  dir: string;
  /** The workspace (COMFYDOCK_HOME) environment names resolve in. */
  ws: WorkspacePaths;
  server: GitHubServer;
  pr: number;
  inputs(over: Record<string, string>): Promise<ActionInputs>;
  outputs(): Promise<Record<string, string>>;
  summary(): Promise<string>;
}

async function withRun(fn: (r: Run) => Promise<void>): Promise<void> {
  await withTempDir(async (dir) => {
    const server = startGitHubServer();
    try {
      for (const env of ["prod", "staging"]) {
        await Deno.mkdir(join(dir, "repo", "envs", env, ".cec"), { recursive: true });
        await Deno.writeTextFile(join(dir, "repo", "envs", env, ".cec", "pyproject.toml"), "[project]\n");
      }
      const pr = server.addPullRequest(REPO);
      await Deno.writeTextFile(
        join(dir, "event.json"),
        JSON.stringify({
          action: "synchronize",
          number: pr,
          pull_request: { number: pr, head: { sha: "abcdef1234567890" } },
        }),
      );
      let n = 0;
      const r: Run = {
        dir,
        ws: workspacePaths(join(dir, "home")),
        server,
        pr,
        inputs: (over) => {
          n++;
          return Promise.resolve(readActionInputs({
            "INPUT_GITHUB-TOKEN": server.token,
            "INPUT_ENVIRONMENT": "envs/prod/.cec",
            "INPUT_WORKING-DIRECTORY": join(dir, "repo"),
            GITHUB_API_URL: server.url,
            GITHUB_REPOSITORY: REPO,
            GITHUB_EVENT_NAME: "pull_request",
            GITHUB_EVENT_PATH: join(dir, "event.json"),
            GITHUB_OUTPUT: join(dir, `output-${n}`),
            GITHUB_STEP_SUMMARY: join(dir, `summary-${n}`),
            GITHUB_WORKSPACE: join(dir, "repo"),
            GITHUB_SERVER_URL: "https://github.com",
            GITHUB_RUN_ID: "42",
            RUNNER_TEMP: dir,
            RUNNER_NAME: "gpu-1",
            ...over,
          }, dir));
        },
        outputs: async () => parseOutputs(await Deno.readTextFile(join(dir, `output-${n}`))),
        summary: () => Deno.readTextFile(join(dir, `summary-${n}`)),
      };
      await fn(r);
    } finally {
      await server.close();
    }
  });
}

const NODE_PLAN = (env: string) =>
  plan(env, [
    action("node.comfyui-impact-pack", "create", "not installed", ["registry 8.1.0, 2.1 MB"]),
    action("model.sdxl-base", "create", "not on disk", ["download 6.9 GB from huggingface"]),
  ]);

Deno.test("plan on a pull request: one sticky comment per environment, updated in place on the next run", async () => {
  await withRun(async (r) => {
    r.server.addComment(REPO, r.pr, "LGTM, but please pin the node");
    const runEnv = scripted({
      prod: [
        NODE_PLAN("prod"),
        plan("prod", [action("node.comfyui-impact-pack", "create", "not installed")]),
      ],
      staging: [plan("staging", []), plan("staging", [])],
    });

    const first = await runAction(
      await r.inputs({ INPUT_COMMAND: "plan", INPUT_ENVIRONMENT: "envs/prod/.cec\nenvs/staging/.cec" }),
      { ws: r.ws, runEnv },
    );
    assert.equal(first.exitcode, 2);
    assert.deepEqual(await r.outputs(), {
      changes: "true",
      "plan-json": first.planJsonPath,
      exitcode: "2",
    });
    const saved = JSON.parse(await Deno.readTextFile(first.planJsonPath)) as Plan[];
    assert.deepEqual(saved.map((p) => [p.environment, p.actions.length]), [["prod", 2], ["staging", 0]]);
    let comments = r.server.comments(REPO, r.pr);
    assert.equal(comments.length, 3, "the foreign comment plus one per environment");
    const prod = comments.find((c) => c.body.includes("<!-- comfydock:plan:gpu-1/prod -->"))!;
    assert.match(prod.body, /### ComfyDock plan: `prod` on `gpu-1`/);
    assert.match(prod.body, /Plan: 2 to add, 0 to change, 0 to remove\./);
    assert.match(
      prod.body,
      /^\+ \+ node\.comfyui-impact-pack: not installed\n {6}registry 8\.1\.0, 2\.1 MB$/m,
    );
    assert.match(
      prod.body,
      /commit abcdef1 · \[run\]\(https:\/\/github\.com\/acme\/studio\/actions\/runs\/42\)/,
    );
    const staging = comments.find((c) => c.body.includes("<!-- comfydock:plan:gpu-1/staging -->"))!;
    assert.match(staging.body, /No changes\. Environment matches \.cec\./);
    assert.match(
      await r.summary(),
      /ComfyDock plan: `prod` on `gpu-1`[\s\S]*Plan: 2 to add[\s\S]*plan comment created on #1/,
    );

    const second = await runAction(
      await r.inputs({ INPUT_COMMAND: "plan", INPUT_ENVIRONMENT: "envs/prod/.cec, envs/staging/.cec" }),
      { ws: r.ws, runEnv },
    );
    assert.equal(second.exitcode, 2);
    comments = r.server.comments(REPO, r.pr);
    assert.equal(comments.length, 3, "no new comment on the second run");
    const prod2 = comments.find((c) => c.id === prod.id)!;
    assert.match(prod2.body, /Plan: 1 to add, 0 to change, 0 to remove\./);
    assert.ok(!prod2.body.includes("sdxl-base"), "the comment shows the new plan only");
    assert.equal(comments.find((c) => c.id === staging.id)!.body, staging.body);
    assert.deepEqual(second.envs.map((e) => e.github?.split(":")[0]), [
      "plan comment updated on #1",
      "plan comment unchanged on #1",
    ]);
    const patches = r.server.calls.filter((c) => c.method === "PATCH");
    assert.deepEqual(patches.map((c) => c.path), [`/repos/${REPO}/issues/comments/${prod.id}`]);
    assert.equal(comments[0].body, "LGTM, but please pin the node", "other people's comments are left alone");
  });
});

Deno.test("the sticky comment is found past the first page of comments", async () => {
  await withRun(async (r) => {
    for (let i = 0; i < 130; i++) r.server.addComment(REPO, r.pr, `comment ${i}`);
    const runEnv = scripted({ prod: [NODE_PLAN("prod"), plan("prod", [])] });
    await runAction(await r.inputs({ INPUT_COMMAND: "plan" }), { ws: r.ws, runEnv });
    const result = await runAction(await r.inputs({ INPUT_COMMAND: "plan" }), { ws: r.ws, runEnv });
    assert.equal(result.exitcode, 0);
    assert.equal(r.server.comments(REPO, r.pr).length, 131);
    assert.match(r.server.comments(REPO, r.pr)[130].body, /No changes/);
    const pages = r.server.calls.filter((c) => c.method === "GET" && c.path.endsWith("/comments")).map((c) =>
      c.query.page ?? "1"
    );
    assert.deepEqual(pages, ["1", "2", "1", "2"]);
  });
});

Deno.test("drift: opens one issue, comments on the next drift run, closes it when clean, reopens on new drift", async () => {
  await withRun(async (r) => {
    const drifted = plan("prod", [
      action("node.ComfyUI-Manager-extra", "delete", "installed on disk, not in .cec"),
      action("workflow.portrait", "update", "changed in the ComfyUI editor"),
    ], ["untracked workflow: scratch.json"]);
    const moreDrift = plan("prod", [...drifted.actions, action("model.sdxl", "create", "not on disk")]);
    const runEnv = scripted({
      // A later run finding the same drift (at another time, by another run) is not news.
      prod: [
        drifted,
        { ...drifted, created_at: "2026-11-26T04:00:00.000Z" },
        moreDrift,
        plan("prod", []),
        plan("prod", []),
        drifted,
      ],
      staging: [plan("staging", [])],
    });
    const inputs = (over: Record<string, string> = {}) =>
      r.inputs({ INPUT_COMMAND: "drift", GITHUB_EVENT_NAME: "schedule", GITHUB_EVENT_PATH: "", ...over });

    const first = await runAction(await inputs({ INPUT_ENVIRONMENT: "envs/prod/.cec\nenvs/staging/.cec" }), {
      ws: r.ws,
      runEnv,
    });
    assert.equal(first.exitcode, 2);
    let issues = r.server.issues(REPO);
    assert.equal(issues.length, 1, "a clean environment opens no issue");
    const issue = issues[0];
    assert.equal(issue.state, "open");
    assert.deepEqual(issue.labels, ["comfydock-drift"]);
    assert.equal(issue.title, "Drift: environment prod on gpu-1 differs from its .cec");
    assert.match(issue.body!, /<!-- comfydock:drift:gpu-1\/prod -->/);
    assert.match(issue.body!, /### Drift: environment `prod` on `gpu-1` differs from its \.cec/);
    assert.match(issue.body!, /Unmanaged custom nodes[\s\S]*`node\.ComfyUI-Manager-extra`/);
    assert.match(issue.body!, /Edited workflows[\s\S]*`workflow\.portrait`/);
    assert.match(issue.body!, /untracked workflow: scratch\.json/);
    assert.equal(r.server.labels(REPO).length, 1);
    assert.match(first.envs[0].github!, /drift issue #2 opened/);

    const writes = () => r.server.calls.filter((c) => c.method !== "GET").length;
    const before = writes();
    const same = await runAction(await inputs(), { ws: r.ws, runEnv });
    assert.match(same.envs[0].github!, /drift issue #2 unchanged/);
    assert.equal(r.server.comments(REPO, issue.number).length, 0, "the same report adds no comment");
    assert.equal(writes(), before, "nor any other write");

    const second = await runAction(await inputs(), { ws: r.ws, runEnv });
    assert.match(second.envs[0].github!, /drift issue #2 commented/);
    issues = r.server.issues(REPO);
    assert.equal(issues.length, 1, "still one issue");
    assert.equal(r.server.comments(REPO, issue.number).length, 1);
    assert.match(r.server.comments(REPO, issue.number)[0].body, /Missing models[\s\S]*model\.sdxl/);
    assert.match(issues[0].body!, /model\.sdxl/, "the body shows the latest report");

    const clean = await runAction(await inputs(), { ws: r.ws, runEnv });
    assert.equal(clean.exitcode, 0);
    assert.equal((await r.outputs()).changes, "false");
    assert.match(clean.envs[0].github!, /drift issue #2 closed/);
    assert.equal(r.server.issues(REPO)[0].state, "closed");
    assert.match(r.server.comments(REPO, issue.number).at(-1)!.body, /No drift any more/);

    const stillClean = await runAction(await inputs(), { ws: r.ws, runEnv });
    assert.equal(stillClean.envs[0].github, null, "nothing to do for a closed issue and a clean environment");
    assert.equal(r.server.comments(REPO, issue.number).length, 2);

    const again = await runAction(await inputs(), { ws: r.ws, runEnv });
    assert.match(again.envs[0].github!, /drift issue #2 reopened/);
    issues = r.server.issues(REPO);
    assert.equal(issues.length, 1, "the same issue is reopened, not a new one");
    assert.equal(issues[0].state, "open");
    const labelCreates = r.server.calls.filter((c) => c.method === "POST" && c.path.endsWith("/labels"));
    assert.equal(labelCreates.length, 1, "the label is created once");
  });
});

Deno.test("a failed drift check leaves the drift issue alone and fails the step", async () => {
  await withRun(async (r) => {
    const runEnv = scripted({
      prod: [
        plan("prod", [action("packages", "update", "3 packages differ from uv.lock")]),
        new Error("disk on fire"),
      ],
    });
    const inputs = () =>
      r.inputs({ INPUT_COMMAND: "drift", GITHUB_EVENT_NAME: "schedule", GITHUB_EVENT_PATH: "" });
    await runAction(await inputs(), { ws: r.ws, runEnv });
    const calls = r.server.calls.length;
    const failed = await runAction(await inputs(), { ws: r.ws, runEnv });
    assert.equal(failed.exitcode, 1);
    assert.equal(r.server.calls.length, calls, "no API call for an environment that could not be checked");
    assert.equal(r.server.issues(REPO)[0].state, "open");
    assert.match(await r.summary(), /disk on fire/);
    assert.deepEqual(failed.annotations, ["::error title=comfydock drift (prod on gpu-1)::disk on fire"]);
  });
});

for (
  const [status, route, expect] of [
    [
      401,
      null,
      /GitHub API 401 failed on GET \/repos\/\{owner\}\/\{repo\}\/issues\/\{issue_number\}\/comments: Bad credentials/,
    ],
    [403, /\/comments$/, /GitHub API 403 failed on GET .*comments: Resource not accessible by integration/],
    [500, /\/comments$/, /GitHub API 500 failed on GET .*comments: Server Error/],
  ] as const
) {
  Deno.test(`plan: an API ${status} is a clear error and the plan still lands in the step summary`, async () => {
    await withRun(async (r) => {
      const over: Record<string, string> = { INPUT_COMMAND: "plan" };
      if (status === 401) over["INPUT_GITHUB-TOKEN"] = "ghs_wrongwrongwrong";
      else r.server.fail({ path: route!, status });
      const result = await runAction(await r.inputs(over), {
        ws: r.ws,
        runEnv: scripted({ prod: [NODE_PLAN("prod")] }),
      });
      assert.equal(result.exitcode, 1);
      assert.equal(result.changes, true);
      const err = result.envs[0].githubError!;
      assert.equal(err.code, "GITHUB_API");
      assert.match(err.message, expect);
      assert.match(
        err.hint!,
        status === 401 ? /github-token/ : status === 403 ? /pull-requests: write/ : /re-run/,
      );
      const summary = await r.summary();
      assert.match(summary, /Plan: 2 to add, 0 to change, 0 to remove\./);
      assert.match(summary, /node\.comfyui-impact-pack/);
      assert.match(summary, new RegExp(`GitHub API error\\*\\*: GitHub API ${status}`));
      assert.deepEqual(await r.outputs(), {
        changes: "true",
        "plan-json": result.planJsonPath,
        exitcode: "1",
      });
      assert.match(
        result.annotations.join("\n"),
        new RegExp(`::error title=GitHub API::GitHub API ${status}`),
      );
      for (const text of [summary, result.annotations.join("\n"), JSON.stringify(err), err.hint!]) {
        assert.ok(!text.includes(r.server.token), "the token never appears");
        assert.ok(!text.includes("ghs_wrongwrongwrong"), "a wrong token never appears either");
      }
      assert.equal(r.server.comments(REPO, r.pr).length, 0);
    });
  });
}

Deno.test("drift: a 403 on creating the issue names the permission to add", async () => {
  await withRun(async (r) => {
    r.server.fail({ method: "POST", path: /\/issues$/, status: 403 });
    const result = await runAction(
      await r.inputs({ INPUT_COMMAND: "drift", GITHUB_EVENT_NAME: "schedule" }),
      { ws: r.ws, runEnv: scripted({ prod: [NODE_PLAN("prod")] }) },
    );
    assert.equal(result.exitcode, 1);
    assert.match(
      result.envs[0].githubError!.message,
      /403 failed on POST \/repos\/\{owner\}\/\{repo\}\/issues:/,
    );
    assert.match(result.envs[0].githubError!.hint!, /issues: write/);
    assert.match(await r.summary(), /Missing custom nodes[\s\S]*node\.comfyui-impact-pack/);
  });
});

Deno.test("plan outside a pull request, or with comment: false, calls no API and needs no token", async () => {
  await withRun(async (r) => {
    const runEnv = scripted({ prod: [NODE_PLAN("prod"), NODE_PLAN("prod")] });
    const push = await runAction(
      await r.inputs({
        INPUT_COMMAND: "plan",
        GITHUB_EVENT_NAME: "push",
        GITHUB_EVENT_PATH: "",
        "INPUT_GITHUB-TOKEN": "",
      }),
      { ws: r.ws, runEnv },
    );
    assert.equal(push.exitcode, 2);
    assert.match(await r.summary(), /Not a pull request \(push\): no plan comment posted/);
    const quiet = await runAction(
      await r.inputs({ INPUT_COMMAND: "plan", INPUT_COMMENT: "false", "INPUT_GITHUB-TOKEN": "" }),
      { ws: r.ws, runEnv },
    );
    assert.equal(quiet.exitcode, 2);
    assert.equal(r.server.calls.length, 0);
  });
});

Deno.test("apply: the result goes to the step summary; exitcode 0; changes true", async () => {
  await withRun(async (r) => {
    const applied = plan("prod", [
      action("node.a", "create", "not installed"),
      action("node.b", "delete", "not in .cec"),
    ]);
    const result = await runAction(
      await r.inputs({ INPUT_COMMAND: "apply", GITHUB_EVENT_NAME: "push", GITHUB_EVENT_PATH: "" }),
      {
        ws: r.ws,
        runEnv: (spec) =>
          Promise.resolve({ ...outcome(applied), exitcode: spec.command === "apply" ? 0 : 2 }),
      },
    );
    assert.equal(result.exitcode, 0);
    assert.deepEqual(await r.outputs(), { changes: "true", "plan-json": result.planJsonPath, exitcode: "0" });
    assert.match(
      await r.summary(),
      /ComfyDock apply: `prod` on `gpu-1`[\s\S]*Apply complete: 1 added, 0 changed, 1 removed\./,
    );
    assert.equal(r.server.calls.length, 0, "apply posts nothing to the API");
    assert.equal((JSON.parse(await Deno.readTextFile(result.planJsonPath)) as Plan).environment, "prod");
  });
});

Deno.test("pyproject validation errors become ::error annotations pinned to the file and line", async () => {
  await withRun(async (r) => {
    const pyproject = join(r.dir, "repo", "envs", "prod", ".cec", "pyproject.toml");
    const text = [
      "[project]",
      'name = "prod"',
      "",
      "[tool.comfydock]",
      'comfyui_version = "v0.3.60"',
      'comfyui_commit = "abc"',
      'python_version = "3.12"',
      "",
    ].join("\n");
    await Deno.writeTextFile(pyproject, text);
    const runEnv: EnvRunner = async (spec) => {
      const file = join(spec.checkout!.dir, "pyproject.toml");
      parsePyproject(await Deno.readTextFile(file), file);
      throw new Error("unreachable: the pyproject above is invalid");
    };
    const result = await runAction(await r.inputs({ INPUT_COMMAND: "plan" }), { ws: r.ws, runEnv });
    assert.equal(result.exitcode, 1);
    assert.deepEqual(result.annotations, [
      "::error file=envs/prod/.cec/pyproject.toml,line=6,title=Invalid .cec/pyproject.toml::" +
      'tool.comfydock.comfyui_commit: must be a full 40-hex git commit sha (got "abc")',
    ]);
    assert.match(r.server.comments(REPO, r.pr)[0].body, /PYPROJECT_INVALID[\s\S]*comfyui_commit/);

    await Deno.writeTextFile(pyproject, '[project]\nname = "prod"\nname = "again"\n');
    const syntax = await runAction(await r.inputs({ INPUT_COMMAND: "plan" }), { ws: r.ws, runEnv });
    assert.match(
      syntax.annotations[0],
      /^::error file=envs\/prod\/\.cec\/pyproject\.toml,line=3,col=\d+,title=Invalid \.cec\/pyproject\.toml::/,
    );
  });
});

Deno.test("bad inputs: a clear error, outputs still written", async () => {
  await withRun(async (r) => {
    assert.throws(
      () => readActionInputs({ INPUT_COMMAND: "destroy" }, r.dir),
      (e: unknown) =>
        e instanceof CdError && e.code === "ACTION_INPUT" &&
        /'destroy', not plan, apply, drift or validate/.test(e.message),
    );
    const result = await runAction(
      await r.inputs({ INPUT_COMMAND: "plan", INPUT_ENVIRONMENT: "envs/nope/.cec\nenvs/prod/.cec" }),
      {
        ws: r.ws,
        runEnv: scripted({ prod: [plan("prod", [])] }),
      },
    );
    assert.equal(result.exitcode, 1);
    assert.equal(result.envs[0].error!.code, "ACTION_ENVIRONMENT");
    assert.match(result.envs[0].error!.message, /envs\/nope\/\.cec/);
    assert.equal(result.envs[1].outcome!.plan!.environment, "prod", "the good environment is still planned");
    assert.deepEqual(await r.outputs(), {
      changes: "false",
      "plan-json": result.planJsonPath,
      exitcode: "1",
    });
  });
});

Deno.test("a token echoed by a failing step (a git URL with credentials) is scrubbed from comment, summary and annotations", async () => {
  await withRun(async (r) => {
    const leak = new CdError(
      "GIT_CLONE",
      `git clone https://x-access-token:${r.server.token}@github.com/a/b failed`,
    );
    const result = await runAction(await r.inputs({ INPUT_COMMAND: "plan" }), {
      ws: r.ws,
      runEnv: scripted({ prod: [leak] }),
    });
    assert.equal(result.exitcode, 1);
    const comment = r.server.comments(REPO, r.pr)[0].body;
    assert.match(comment, /https:\/\/\*\*\*@github\.com/);
    for (const text of [comment, await r.summary(), result.annotations.join("\n"), result.summary]) {
      assert.ok(!text.includes(r.server.token));
    }
  });
});

Deno.test("environment inputs: a workspace environment name, a folder holding a .cec, a .cec path", async () => {
  await withRun(async (r) => {
    const home = join(r.dir, "home", "environments", "gpu", ".cec");
    await Deno.mkdir(home, { recursive: true });
    await Deno.writeTextFile(join(home, "pyproject.toml"), "[project]\n");
    const seen: string[] = [];
    const runEnv: EnvRunner = (spec) => {
      seen.push(
        `${spec.paths.name}:${spec.paths.root}:${spec.checkout?.label ?? "own .cec"}:${spec.command}`,
      );
      return Promise.resolve(outcome(plan(spec.paths.name, [])));
    };
    const result = await runAction(
      await r.inputs({
        INPUT_COMMAND: "plan",
        INPUT_COMMENT: "false",
        INPUT_ENVIRONMENT: "gpu\nenvs/staging\nenvs/prod/.cec",
      }),
      { ws: r.ws, runEnv },
    );
    assert.equal(result.exitcode, 0);
    // The environments live in the workspace on the runner; the checkout only supplies their .cec.
    assert.deepEqual(seen, [
      `gpu:${join(r.dir, "home", "environments", "gpu")}:own .cec:plan`,
      `staging:${join(r.dir, "home", "environments", "staging")}:envs/staging/.cec:plan`,
      `prod:${join(r.dir, "home", "environments", "prod")}:envs/prod/.cec:plan`,
    ]);
    const unknown = await runAction(
      await r.inputs({ INPUT_COMMAND: "plan", INPUT_COMMENT: "false", INPUT_ENVIRONMENT: "nope" }),
      {
        ws: r.ws,
        runEnv,
      },
    );
    assert.equal(unknown.envs[0].error!.code, "UNKNOWN_ENVIRONMENT");
    assert.equal(unknown.planJsonPath, "");
  });
});

Deno.test("fleets: two machines planning and checking the same .cec keep their own comment and issue", async () => {
  await withRun(async (r) => {
    const runEnv = scripted({
      prod: [NODE_PLAN("prod"), plan("prod", []), NODE_PLAN("prod"), NODE_PLAN("prod")],
    });
    for (const machine of ["gpu-1", "gpu-2"]) {
      const result = await runAction(await r.inputs({ INPUT_COMMAND: "plan", RUNNER_NAME: machine }), {
        ws: r.ws,
        runEnv,
      });
      assert.match(result.summary, new RegExp(`ComfyDock plan: \`prod\` on \`${machine}\``));
    }
    const comments = r.server.comments(REPO, r.pr);
    assert.equal(comments.length, 2, "one comment per machine, not one overwriting the other");
    assert.match(comments[0].body, /<!-- comfydock:plan:gpu-1\/prod -->[\s\S]*Plan: 2 to add/);
    assert.match(comments[1].body, /<!-- comfydock:plan:gpu-2\/prod -->[\s\S]*No changes/);
    // The `machine` input names a machine when the runner's name is not the right one.
    for (const machine of ["gpu-1", "render-box"]) {
      await runAction(
        await r.inputs({
          INPUT_COMMAND: "drift",
          INPUT_MACHINE: machine === "render-box" ? machine : "",
          GITHUB_EVENT_NAME: "schedule",
          GITHUB_EVENT_PATH: "",
        }),
        { ws: r.ws, runEnv },
      );
    }
    assert.deepEqual(r.server.issues(REPO).map((i) => i.title), [
      "Drift: environment prod on gpu-1 differs from its .cec",
      "Drift: environment prod on render-box differs from its .cec",
    ]);
  });
});

Deno.test("plan notes become ::warning annotations naming the environment and the machine", async () => {
  await withRun(async (r) => {
    const result = await runAction(await r.inputs({ INPUT_COMMAND: "plan", INPUT_COMMENT: "false" }), {
      ws: r.ws,
      runEnv: scripted({
        prod: [plan("prod", [], ["workflow.x: changed in ComfyUI, run 'comfydock capture'"])],
      }),
    });
    assert.equal(result.exitcode, 0);
    assert.deepEqual(result.annotations, [
      "::warning title=comfydock plan (prod on gpu-1)::workflow.x: changed in ComfyUI, run 'comfydock capture'",
    ]);
  });
});

/** The approved-plan round trip: a PR plan job comments, the PR is merged, a push job applies. */
async function approvalRun(
  r: Run,
  approvedPlan: Plan,
  appliedPlan: Plan,
  opts: { merge?: boolean; sha?: string } = {},
) {
  await runAction(await r.inputs({ INPUT_COMMAND: "plan" }), {
    ws: r.ws,
    runEnv: scripted({ prod: [approvedPlan] }),
  });
  const merge = "a".repeat(40);
  if (opts.merge !== false) r.server.mergePullRequest(REPO, r.pr, merge);
  let seen: Plan | null = null;
  const result = await runAction(
    await r.inputs({
      INPUT_COMMAND: "apply",
      "INPUT_APPROVED-PLAN": "required",
      GITHUB_EVENT_NAME: "push",
      GITHUB_EVENT_PATH: "",
      GITHUB_SHA: opts.sha ?? merge,
    }),
    {
      ws: r.ws,
      runEnv: (spec) => {
        spec.context.approve!(appliedPlan);
        seen = appliedPlan;
        return Promise.resolve({ ...outcome(appliedPlan), exitcode: 0 });
      },
    },
  );
  return { result, applied: seen as Plan | null };
}

Deno.test("approved plans: the push applies the plan approved on the merged pull request", async () => {
  await withRun(async (r) => {
    // Made later on the same machine: another time, another observed fingerprint, same actions.
    const later = { ...NODE_PLAN("prod"), created_at: "2026-11-26T00:00:00.000Z" };
    later.fingerprints = { ...later.fingerprints, observed: "x".repeat(64) };
    const { result, applied } = await approvalRun(r, NODE_PLAN("prod"), later);
    assert.equal(result.exitcode, 0, result.summary);
    assert.ok(applied, "applied");
    assert.match(await r.summary(), /Applied the plan approved on #1/);
    assert.ok(
      r.server.calls.some((c) => c.path === `/repos/${REPO}/commits/${"a".repeat(40)}/pulls`),
      "the pull request was found from the merge commit",
    );
  });
});

Deno.test("approved plans: another action, another .cec, no merged pull request: nothing applied, reasons named", async () => {
  await withRun(async (r) => {
    const extra = plan("prod", [...NODE_PLAN("prod").actions, action("node.stray", "delete", "not in .cec")]);
    const other = await approvalRun(r, NODE_PLAN("prod"), extra);
    assert.equal(other.result.exitcode, 1);
    assert.equal(other.applied, null);
    const err = other.result.envs[0].error!;
    assert.equal(err.code, "PLAN_NOT_APPROVED");
    assert.match(
      err.message,
      /not the one approved on #1:\n- node\.stray: delete \(not in \.cec\) is not in the approved plan/,
    );
    assert.match(err.hint!, /approved-plan: auto-approve/);
    assert.match(await r.summary(), /Plan made now: Plan: 2 to add, 0 to change, 1 to remove/);
  });
  await withRun(async (r) => {
    const moved = {
      ...NODE_PLAN("prod"),
      fingerprints: { desired: "e".repeat(64), observed: "o".repeat(64) },
    };
    const { result } = await approvalRun(r, NODE_PLAN("prod"), moved);
    assert.match(result.envs[0].error!.message, /\.cec differs from the one the plan was approved for/);
  });
  await withRun(async (r) => {
    const { result } = await approvalRun(r, NODE_PLAN("prod"), NODE_PLAN("prod"), { merge: false });
    assert.equal(result.envs[0].error!.code, "NO_APPROVED_PLAN");
    assert.match(result.envs[0].error!.message, /is not the merge of a pull request/);
  });
});

Deno.test("approved plans: only the bot's comment counts, and an edited one is refused", async () => {
  await withRun(async (r) => {
    // A person's comment that will hold a forged plan comment, listed before the bot's real one.
    const personal = r.server.addComment(REPO, r.pr, "placeholder");
    await runAction(await r.inputs({ INPUT_COMMAND: "plan" }), {
      ws: r.ws,
      runEnv: scripted({ prod: [NODE_PLAN("prod")] }),
    });
    const ours = r.server.comments(REPO, r.pr).find((c) => c.author === "bot")!;
    // The forgery: a genuine plan comment of this machine, for another plan (made on another pull request).
    const forged = plan("prod", [action("node.evil", "create", "not installed")]);
    const other = r.server.addPullRequest(REPO);
    await Deno.writeTextFile(join(r.dir, "other.json"), JSON.stringify({ pull_request: { number: other } }));
    await runAction(await r.inputs({ INPUT_COMMAND: "plan", GITHUB_EVENT_PATH: join(r.dir, "other.json") }), {
      ws: r.ws,
      runEnv: scripted({ prod: [forged] }),
    });
    r.server.comments(REPO, r.pr).find((c) => c.id === personal)!.body =
      r.server.comments(REPO, other)[0].body;
    r.server.mergePullRequest(REPO, r.pr, "b".repeat(40));
    const apply = async (plan: Plan) =>
      await runAction(
        await r.inputs({
          INPUT_COMMAND: "apply",
          "INPUT_APPROVED-PLAN": "required",
          GITHUB_EVENT_NAME: "push",
          GITHUB_EVENT_PATH: "",
          GITHUB_SHA: "b".repeat(40),
        }),
        {
          ws: r.ws,
          runEnv: (spec) => {
            spec.context.approve!(plan);
            return Promise.resolve({ ...outcome(plan), exitcode: 0 });
          },
        },
      );
    const refused = await apply(forged);
    assert.equal(refused.envs[0].error?.code, "PLAN_NOT_APPROVED", "the person's comment is not read");
    assert.equal((await apply(NODE_PLAN("prod"))).exitcode, 0, "the bot's comment is");
    // The bot's own comment edited to show another hash: refused as edited.
    ours.body = ours.body.replace(/Plan hash: `[0-9a-f]{64}`/, `Plan hash: \`${"0".repeat(64)}\``);
    const tampered = await apply(NODE_PLAN("prod"));
    assert.equal(tampered.envs[0].error!.code, "NO_APPROVED_PLAN");
    assert.match(tampered.envs[0].error!.message, /not the one whose hash the comment shows/);
  });
});

Deno.test("pull requests from forks: planned untrusted, summary only (read-only token); apply never runs on a PR", async () => {
  await withRun(async (r) => {
    await Deno.writeTextFile(
      join(r.dir, "fork.json"),
      JSON.stringify({
        number: r.pr,
        pull_request: {
          number: r.pr,
          head: { sha: "f".repeat(40), repo: { full_name: "someone/studio", fork: true } },
          base: { repo: { full_name: REPO } },
        },
      }),
    );
    const contexts: boolean[] = [];
    const runEnv: EnvRunner = (spec) => {
      contexts.push(spec.context.untrusted);
      return Promise.resolve(outcome(NODE_PLAN("prod")));
    };
    const fork = await runAction(
      await r.inputs({ INPUT_COMMAND: "plan", GITHUB_EVENT_PATH: join(r.dir, "fork.json") }),
      { ws: r.ws, runEnv },
    );
    assert.equal(fork.exitcode, 2);
    assert.deepEqual(contexts, [true]);
    assert.equal(r.server.calls.length, 0, "no comment with a read-only token");
    assert.match(await r.summary(), /comes from a fork[\s\S]*untrusted mode[\s\S]*Plan: 2 to add/);
    const own = await runAction(await r.inputs({ INPUT_COMMAND: "plan" }), { ws: r.ws, runEnv });
    assert.equal(own.exitcode, 2);
    assert.deepEqual(contexts, [true, false]);

    const applied: string[] = [];
    const onPr = await runAction(await r.inputs({ INPUT_COMMAND: "apply" }), {
      ws: r.ws,
      runEnv: (spec) => {
        applied.push(spec.paths.name);
        return Promise.resolve(outcome(NODE_PLAN("prod")));
      },
    });
    assert.equal(onPr.exitcode, 1);
    assert.deepEqual(applied, []);
    assert.equal(onPr.errors[0].code, "ACTION_APPLY_ON_PULL_REQUEST");
  });
});

Deno.test("validate: problems are ::error annotations on pyproject.toml lines; warnings are ::warning", async () => {
  await withRun(async (r) => {
    const pyproject = join(r.dir, "repo", "envs", "prod", ".cec", "pyproject.toml");
    await Deno.writeTextFile(
      pyproject,
      '[project]\nname = "prod"\n\n[dependency-groups]\nold-node = ["x"]\n',
    );
    const result = await runAction(await r.inputs({ INPUT_COMMAND: "validate", GITHUB_EVENT_NAME: "push" }), {
      ws: r.ws,
      runEnv: () =>
        Promise.resolve({
          plan: null,
          rendered: "",
          exitcode: 1,
          validation: {
            errors: [`${pyproject}: dependency-groups.old-node: no node 'old-node' in tool.comfydock.nodes`],
            warnings: ["model sdxl (sdxl.safetensors) has no download source"],
          },
        }),
    });
    assert.equal(result.exitcode, 1);
    assert.deepEqual(result.annotations, [
      "::error file=envs/prod/.cec/pyproject.toml,line=5,title=Invalid .cec/pyproject.toml::" +
      "dependency-groups.old-node: no node 'old-node' in tool.comfydock.nodes",
      "::warning title=comfydock validate (prod on gpu-1)::model sdxl (sdxl.safetensors) has no download source",
    ]);
    assert.match(await r.summary(), /ComfyDock validate: `prod` on `gpu-1`[\s\S]*Invalid: 1 problem/);
    assert.equal((await r.outputs())["plan-json"], "");
  });
});

Deno.test("environment inputs: 'name' for one environment; a workspace inside the checkout is refused", async () => {
  await withRun(async (r) => {
    const names: string[] = [];
    const runEnv: EnvRunner = (spec) => {
      names.push(spec.paths.name);
      return Promise.resolve(outcome(plan(spec.paths.name, [])));
    };
    await runAction(
      await r.inputs({ INPUT_COMMAND: "plan", INPUT_COMMENT: "false", INPUT_NAME: "prod-eu" }),
      {
        ws: r.ws,
        runEnv,
      },
    );
    assert.deepEqual(names, ["prod-eu"]);
    assert.throws(
      () =>
        readActionInputs(
          { INPUT_COMMAND: "plan", INPUT_NAME: "x", INPUT_ENVIRONMENT: "a/.cec\nb/.cec" },
          "/",
        ),
      /input 'name' \('x'\) names one environment, but 2 are given/,
    );
    const inside = await runAction(await r.inputs({ INPUT_COMMAND: "plan", INPUT_COMMENT: "false" }), {
      ws: workspacePaths(join(r.dir, "repo", "comfydock")),
      runEnv,
    });
    assert.equal(inside.exitcode, 1);
    assert.equal(inside.envs[0].error!.code, "ACTION_WORKSPACE_IN_CHECKOUT");
    assert.match(inside.envs[0].error!.hint!, /actions\/checkout deletes everything in its folder/);
  });
});
