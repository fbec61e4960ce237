/** logs/<name>.log: block format, .cec commit catch-up, a Session's apply success/failure, secrets redacted. */
import assert from "node:assert/strict";
import { redactSecrets } from "../../lib/redact.ts";
import { join } from "node:path";
import { withTempDir } from "../../fixtures/tmp.ts";
import * as git from "../../providers/git/git.ts";
import { exists } from "../../lib/fsx.ts";
import { appendEnvLog, envLogPath, logEnvEvent } from "../../workspace/env_log.ts";
import { envPaths, workspacePaths } from "../../reconcile/paths.ts";
import { withSession } from "../../workspace/session.ts";
import { workflowProvider } from "../../providers/workflows/provider.ts";
import { makeEnvSkeleton } from "../../fixtures/env_skeleton.ts";
import { testApp, testSettings } from "../../fixtures/app.ts";

Deno.env.set("GIT_CONFIG_GLOBAL", "/dev/null");

Deno.test("redactSecrets: URL credentials, token query parameters and known token shapes", () => {
  const cases: [string, string][] = [
    ["https://user:pw@example.com/x.git", "https://***@example.com/x.git"],
    [
      "https://civitai.com/api/download/models/1?token=abc123&type=Model",
      "https://civitai.com/api/download/models/1?token=***&type=Model",
    ],
    ["https://h/x?X-Amz-Signature=deadbeef&api_key=k1", "https://h/x?X-Amz-Signature=***&api_key=***"],
    ["Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.x", "Authorization: Bearer ***"],
    ["key hf_abcdefghijklmnop and ghp_0123456789abcdef", "key hf_*** and ghp_***"],
    ["Add node comfyui-foo 1.2.0", "Add node comfyui-foo 1.2.0"],
  ];
  for (const [input, want] of cases) assert.equal(redactSecrets(input), want, input);
});

Deno.test("blocks are appended, timestamped, indented; commits since the last block are listed once", async () => {
  await withTempDir(async (dir) => {
    const tracked = (n: string) =>
      `\n[tool.comfydock.workflows.tracked.${n}]\nfile = "workflows/${n}.json"\n`;
    const paths = await makeEnvSkeleton(dir, "e", tracked("a") + tracked("b"));
    const ws = paths.workspace;
    for (const n of ["a", "b"]) {
      await Deno.writeTextFile(
        join(paths.cecWorkflows, `${n}.json`),
        JSON.stringify({ nodes: [], links: [] }),
      );
    }
    const first = (await git.commit(paths.cec, "first"))!;
    await logEnvEvent(paths, "create: test", ["line one", "two\nlines"]);
    await Deno.writeTextFile(join(paths.cec, "notes.md"), "b");
    await git.commit(paths.cec, "Add model from https://h/m?token=s3cr3t");
    await Deno.writeTextFile(join(paths.cec, "notes.md"), "c");
    const third = (await git.commit(paths.cec, "third"))!;

    // Every apply of a Session is logged: its plan and result, or the failure.
    const applyWith = (settings = testSettings()) =>
      withSession(
        testApp(ws, { providers: [workflowProvider], settings }),
        paths,
        "apply",
        "write",
        async (s) => await s.apply((await s.plan()).plan),
      );
    const ok = await applyWith();
    assert.deepEqual(ok.applied.map((a) => a.address), ["workflow.a", "workflow.b"]);
    await Deno.remove(join(paths.userWorkflows, "a.json"));
    // An injected failure: the apply is rolled back and its multi-line error logged on one line.
    await assert.rejects(applyWith(testSettings({ faults: { apply: "0:error", create: null } })), {
      code: "APPLY_FAILED",
    });
    assert.equal(await exists(join(paths.userWorkflows, "a.json")), false, "rolled back");
    // An error that carries credentials (here a bad test setting echoed back) is redacted in the log.
    await assert.rejects(
      applyWith(testSettings({ faults: { apply: "https://u:pw@index/simple", create: null } })),
      {
        code: "BAD_FAULT",
      },
    );

    const text = await Deno.readTextFile(envLogPath(ws, "e"));
    const blocks = text.trimEnd().split("\n\n");
    assert.equal(blocks.length, 4);
    assert.match(blocks[0], /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\] create: test\n/);
    assert.match(blocks[0], new RegExp(`\n {2}\\.cec commit ${first.slice(0, 12)} .*: first\n`));
    assert.match(blocks[0], /\n {2}line one\n {2}two\n {4}lines\n/);
    assert.match(blocks[0], new RegExp(`\n {2}\\.cec HEAD ${first}$`));
    // Block 2 lists the two newer commits (oldest first, the token redacted), the plan and the result.
    assert.match(blocks[1], /\] apply: ok\n/);
    assert.doesNotMatch(blocks[1], /: first\n/);
    assert.match(blocks[1], /commit \w{12} .*: Add model from https:\/\/h\/m\?token=\*\*\*\n.*: third\n/);
    assert.match(
      blocks[1],
      /\n {2}plan: 2 action\(s\)\n {4}\+ workflow\.a: .+\n {4}\+ workflow\.b: .+\n/,
    );
    assert.match(blocks[1], /\n {2}result: 2 action\(s\) applied\n/);
    assert.match(blocks[1], new RegExp(`\\.cec HEAD ${third}$`));
    // Block 3: nothing new in .cec; the failure with the plan and the error's lines joined.
    assert.doesNotMatch(blocks[2], /\.cec commit/);
    assert.match(blocks[2], /\] apply: FAILED\n {2}plan: 1 action\(s\)\n {4}\+ workflow\.a: /);
    assert.match(
      blocks[2],
      /result: failed: apply failed at workflow\.a: fault injected at action 0 \(workflow\.a\) \| rolled back /,
    );
    assert.match(blocks[3], /\] apply: FAILED\n/);
    assert.match(blocks[3], /result: failed: COMFYDOCK_FAULT='https:\/\/\*\*\*@index\/simple'/);
    assert.ok(!text.includes("s3cr3t") && !text.includes("u:pw"));
  });
});

Deno.test("a re-created environment (unknown last HEAD) lists its own history; logging never throws", async () => {
  await withTempDir(async (dir) => {
    const ws = workspacePaths(dir);
    await appendEnvLog(ws, "e", ["old", `.cec HEAD ${"a".repeat(40)}`]);
    const paths = envPaths(ws, "e");
    await git.init(paths.cec);
    await Deno.writeTextFile(paths.pyproject, "a");
    await git.commit(paths.cec, "new life");
    await logEnvEvent(paths, "import: x");
    assert.match(
      await Deno.readTextFile(envLogPath(ws, "e")),
      /\] import: x\n {2}\.cec commit \w{12} .*: new life\n/,
    );
    // logs/ cannot be created (a file is in the way): the command goes on.
    const blocked = workspacePaths(join(dir, "blocked"));
    await Deno.mkdir(blocked.root, { recursive: true });
    await Deno.writeTextFile(blocked.logs, "not a dir");
    await logEnvEvent(envPaths(blocked, "e"), "create: x");
  });
});
