/** Bad desired state: a clear error naming file, line or key and value; exit 1; nothing on disk changes. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, envelopeOf, jsonData } from "../../fixtures/cli.ts";
import { basePyproject, makeEnvSkeleton } from "../../fixtures/env_skeleton.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { listFiles } from "../../lib/fsx.ts";

/**
 * Every file under `dir` with its content, except the environment's OS lock file: an empty file that
 * commands open to lock (it stays, holding nothing; who holds the lock is in lock.json, which must go).
 */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const f of await listFiles(dir)) {
    const text = await Deno.readTextFile(join(dir, f));
    if (f.endsWith("/.comfydock/lock") && text === "") continue;
    out.set(f, text);
  }
  return out;
}

const cases: { name: string; toml: string; expect: RegExp[] }[] = [
  {
    name: "bad TOML syntax",
    toml: basePyproject("e") + "\n[tool.comfydock.nodes.x\nsource = 1\n",
    expect: [/pyproject\.toml:\d+:\d+:/],
  },
  {
    name: "duplicate keys",
    toml: basePyproject("e") +
      '\n[tool.comfydock.nodes.x]\nsource = "registry"\nversion = "1"\nversion = "2"\n',
    expect: [/pyproject\.toml:\d+:\d+:/, /duplicate/i],
  },
  {
    name: "wrong type",
    toml: basePyproject("e").replace(/python_version = "[\d.]+"/, "python_version = 3.11"),
    expect: [/tool\.comfydock\.python_version/, /got 3\.11/],
  },
  {
    name: "unknown node source",
    toml: basePyproject("e") + '\n[tool.comfydock.nodes.x]\nsource = "ftp"\nversion = "1"\n',
    expect: [/tool\.comfydock\.nodes\.x\.source/, /"ftp"/],
  },
  {
    name: "git node without a full commit",
    toml: basePyproject("e") +
      '\n[tool.comfydock.nodes.x]\nsource = "git"\nrepository = "https://example.com/x.git"\ncommit = "abc"\n',
    expect: [/tool\.comfydock\.nodes\.x\.commit/, /full 40-hex/, /"abc"/],
  },
  {
    name: "model without a hash",
    toml: basePyproject("e") +
      '\n[tool.comfydock.models.m]\ncategory = "checkpoints"\nfilename = "m.safetensors"\n',
    expect: [/tool\.comfydock\.models\.m/, /needs 'hash' or 'sha256'/],
  },
];

for (const c of cases) {
  Deno.test(`malformed pyproject (${c.name}): plan, status, apply and validate fail clearly and change nothing`, async () => {
    await withTempDir(async (root) => {
      const paths = await makeEnvSkeleton(root, "e");
      await Deno.writeTextFile(paths.pyproject, c.toml);
      const before = await snapshot(root);
      for (const args of [["plan"], ["status"], ["apply", "--yes"]]) {
        const r = await cli(args, { env: { COMFYDOCK_HOME: root } });
        assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
        for (const re of c.expect) assert.match(r.stderr, re, `${args[0]} stderr`);
        assert.match(r.stderr, /^hint: /m);
        assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace without --debug");
      }
      const v = await cli(["validate"], { env: { COMFYDOCK_HOME: root } });
      assert.equal(v.code, 1);
      assert.deepEqual(await snapshot(root), before);
    });
  });
}

Deno.test("validate passes a good .cec and names a tracked workflow file that is missing", async () => {
  await withTempDir(async (root) => {
    const paths = await makeEnvSkeleton(root, "e");
    const ok = await cli(["validate"], { env: { COMFYDOCK_HOME: root } });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /is valid/);
    await Deno.writeTextFile(
      paths.pyproject,
      basePyproject("e") + '\n[tool.comfydock.workflows.tracked.w]\nfile = "workflows/w.json"\n',
    );
    const bad = await cli(["validate", "--json"], { env: { COMFYDOCK_HOME: root } });
    assert.equal(bad.code, 1);
    const out = envelopeOf(bad).data as { valid: boolean; errors: string[] };
    assert.equal(out.valid, false);
    assert.match(out.errors[0], /workflows\.tracked\.w\.file: 'workflows\/w\.json' does not exist/);
  });
});

Deno.test("without a workspace, commands say how to make one", async () => {
  await withTempDir(async (root) => {
    const r = await cli(["plan"], { env: { COMFYDOCK_HOME: join(root, "nowhere") } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: no ComfyDock workspace at .*nowhere/);
    assert.match(r.stderr, /hint: run 'comfydock init'/);
  });
});

Deno.test("commit, log and rollback of .cec", async () => {
  await withTempDir(async (root) => {
    const paths = await makeEnvSkeleton(root, "e");
    const env = { COMFYDOCK_HOME: root };
    const original = await Deno.readTextFile(paths.pyproject);
    await Deno.writeTextFile(paths.pyproject, original.replace('version = "0.1.0"', 'version = "0.2.0"'));
    const c = await cli(["commit", "-m", "bump version"], { env });
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /Committed [0-9a-f]{12}: bump version/);
    const log = jsonData(await cli(["log", "--json"], { env })).entries;
    assert.equal(log[0].message, "bump version");
    // An uncommitted edit is copied aside, never lost, when rolling back.
    await Deno.writeTextFile(paths.pyproject, original.replace('version = "0.1.0"', 'version = "0.3.0"'));
    const rb = await cli(["rollback", log[1].sha, "--no-apply"], { env });
    assert.equal(rb.code, 0, rb.stderr);
    assert.match(rb.stdout, /Restored \.cec to/);
    assert.match(rb.stdout, /Uncommitted edits were copied to (\S+)\./);
    const saved = /copied to (\S+)\./.exec(rb.stdout)![1];
    assert.match(await Deno.readTextFile(join(saved, "pyproject.toml")), /0\.3\.0/);
    assert.equal(await Deno.readTextFile(paths.pyproject), original);
    const unknown = await cli(["rollback", "nope"], { env });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /'nope' is not a revision/);
  });
});
