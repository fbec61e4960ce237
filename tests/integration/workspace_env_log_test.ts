/** logs/<name>.log: block format, .cec commit catch-up, apply success/failure, secrets redacted. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { withTempDir } from "../../fixtures/tmp.ts";
import * as git from "../../providers/git/git.ts";
import type { Action, Plan } from "../../reconcile/types.ts";
import {
  appendEnvLog,
  envLogPath,
  logEnvEvent,
  redactSecrets,
  withApplyLog,
} from "../../workspace/env_log.ts";
import { envPaths, workspacePaths } from "../../workspace/paths.ts";

Deno.env.set("GIT_CONFIG_GLOBAL", "/dev/null");

const action = (address: string, kind: Action["kind"], reason: string): Action => ({
  address,
  type: address.startsWith("node.") ? "node" : "packages",
  kind,
  reason,
  before: null,
  after: null,
});

function planOf(actions: Action[]): Plan {
  return {
    format_version: 1,
    environment: "e",
    created_at: new Date().toISOString(),
    fingerprints: { desired: "d", observed: "o" },
    actions,
    notes: [],
  };
}

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
    const ws = workspacePaths(dir);
    const paths = envPaths(ws, "e");
    await git.init(paths.cec);
    await Deno.writeTextFile(paths.pyproject, "a");
    const first = (await git.commit(paths.cec, "first"))!;
    await logEnvEvent(paths, "create: test", ["line one", "two\nlines"]);
    await Deno.writeTextFile(paths.pyproject, "b");
    await git.commit(paths.cec, "Add model from https://h/m?token=s3cr3t");
    await Deno.writeTextFile(paths.pyproject, "c");
    const third = (await git.commit(paths.cec, "third"))!;

    const ok = await withApplyLog(
      paths,
      planOf([action("node.foo", "create", "not installed"), action("packages", "update", "lock stale")]),
      () =>
        Promise.resolve({ applied: [action("node.foo", "create", "x"), action("packages", "update", "y")] }),
    );
    assert.equal(ok.applied.length, 2);
    const boom = new Error("uv failed: https://u:pw@index/simple\nsecond line");
    await assert.rejects(
      withApplyLog(paths, planOf([action("packages", "update", "lock stale")]), () => Promise.reject(boom)),
      (e) => e === boom, // rethrown unchanged
    );

    const text = await Deno.readTextFile(envLogPath(ws, "e"));
    const blocks = text.trimEnd().split("\n\n");
    assert.equal(blocks.length, 3);
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
      /\n {2}plan: 2 actions\n {4}\+ node\.foo: not installed\n {4}~ packages: lock stale\n/,
    );
    assert.match(blocks[1], /\n {2}result: 2 actions applied\n/);
    assert.match(blocks[1], new RegExp(`\\.cec HEAD ${third}$`));
    // Block 3: nothing new in .cec; the failure with the error's lines joined and its credentials redacted.
    assert.doesNotMatch(blocks[2], /\.cec commit/);
    assert.match(blocks[2], /\] apply: FAILED\n/);
    assert.match(blocks[2], /result: failed: uv failed: https:\/\/\*\*\*@index\/simple \| second line/);
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
