/**
 * tests/run.ts reads `deno test`'s own output: a real run of a small test file with a passing, a failing and
 * an ignored test (marked by testNeeds) gives the counts and the ignored test's name with its reason; what a
 * test file and the tools it runs leave in the temp folder is gone when the file ends.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { withTempDir } from "../../fixtures/tmp.ts";
import { parseTestOutput, runTestFile } from "../run.ts";

const TOOLS = new URL("../../fixtures/tools.ts", import.meta.url).href;
// The sample lives in a temp dir: the repository's config gives it the import map.
const CONFIG = fileURLToPath(new URL("../../deno.json", import.meta.url));

Deno.test("test runner: passed, failed and ignored (with its reason) from a real deno test run", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "sample_test.ts");
    await Deno.writeTextFile(
      file,
      `import { testNeeds } from ${JSON.stringify(TOOLS)};
Deno.test("adds", () => { if (1 + 1 !== 2) throw new Error("math"); });
Deno.test("fails", () => { throw new Error("on purpose"); });
testNeeds("a machine that is not this one", "needs more", () => {});
testNeeds(null, "needs nothing missing", () => {});
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["test", "-A", "--no-check", "--config", CONFIG, file],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    const counts = parseTestOutput(dec.decode(out.stdout) + dec.decode(out.stderr), out.code);
    assert.equal(out.code, 1);
    assert.deepEqual(counts, {
      passed: 2,
      failed: 1,
      ignored: ["needs more [ignored: needs a machine that is not this one]"],
    });
    // A file that does not even load counts as one failure, not as nothing.
    assert.deepEqual(parseTestOutput("error: Module not found", 1), { passed: 0, failed: 1, ignored: [] });
  });
});

Deno.test("test runner: what a test file and its tools leave in TMPDIR is removed when the file ends", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "leaves_test.ts");
    // A test folder never removed, and a file a tool writes into TMPDIR as uv writes its lock files.
    await Deno.writeTextFile(
      file,
      `Deno.test("leaves things", async () => {
  const d = await Deno.makeTempDir({ prefix: "left-" });
  await Deno.writeTextFile(d + "/x", "1");
  const out = await new Deno.Command("sh", { args: ["-c", 'touch "$TMPDIR/uv-0123.lock" && echo "$TMPDIR"'] }).output();
  console.log("LEFT=" + d);
  console.log("TOOL=" + new TextDecoder().decode(out.stdout).trim() + "/uv-0123.lock");
});
`,
    );
    const r = await runTestFile(dirname(CONFIG), file, "uv");
    assert.equal(r.code, 0, r.output);
    assert.equal(r.passed, 1);
    const left = /^LEFT=(.+)$/m.exec(r.output)![1];
    const tool = /^TOOL=(.+)$/m.exec(r.output)![1];
    assert.equal(dirname(tool), dirname(left), "both in the file's own TMPDIR");
    assert.match(dirname(left), /comfydock-tests-/);
    for (const p of [left, tool, dirname(left)]) {
      await assert.rejects(Deno.stat(p), Deno.errors.NotFound, `${p} is removed`);
    }
  });
});
