/**
 * README claims about flags that only the CLI has: `sync --dry-run` is `plan`, `repair --force-unlock`,
 * `--debug` and `--no-color` / `NO_COLOR`. One real environment serves every test of the file (built once,
 * about a second); a test that needs a broken `.cec` uses a skeleton of its own.
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { cli, cliTty, HAS_SCRIPT, jsonData } from "../../fixtures/cli.ts";
import { basePyproject, makeEnvSkeleton } from "../../fixtures/env_skeleton.ts";
import { createRealEnv, type RealEnv } from "../../fixtures/real_env.ts";
import { tempRoot, withTempDir } from "../../fixtures/tmp.ts";
import { testNeeds } from "../../fixtures/tools.ts";
import { exists } from "../../lib/fsx.ts";
import { git } from "../../providers/git/git.ts";
import { acquireLock, lockHolder } from "../../reconcile/lock.ts";

const root = await tempRoot("comfydock-cli-flags-");
let built: Promise<RealEnv> | null = null;
/** The shared environment, converged; a test that drifts it puts it back before it ends. */
const realEnv = () => built ??= createRealEnv(join(root, "home"), "e");

/** Every file under `dir` but the state folder (locks, caches) with its size and mtime: what a write changes. */
async function diskState(dir: string, skip: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (p === skip) continue;
      const st = await Deno.lstat(p);
      out.push(`${relative(dir, p)} ${e.isDirectory ? "dir" : `${st.size} ${st.mtime?.getTime()}`}`);
      if (e.isDirectory) await walk(p);
    }
  };
  await walk(dir);
  return out.sort();
}

// deno-lint-ignore no-control-regex -- the escape is what is looked for
const SGR = /\x1b\[[0-9;]*m/; // a colour or bold escape
const GREEN_TICK = "\x1b[32m✓";

Deno.test("sync --dry-run is plan: the same plan, text and JSON, and nothing changes", async () => {
  const { paths, env } = await realEnv();
  const handMade = join(paths.customNodes, "hand-made");
  await Deno.mkdir(handMade);
  await Deno.writeTextFile(join(handMade, "__init__.py"), "NODE_CLASS_MAPPINGS = {}\n");
  try {
    const cec = async (...args: string[]) => (await git(paths.cec, args)).stdout;
    const head = await cec("rev-parse", "HEAD");
    const before = await diskState(paths.root, paths.state);

    const plan = await cli(["plan"], { env });
    const dry = await cli(["sync", "--dry-run"], { env });
    assert.equal(plan.code, 0, plan.stderr);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /- node\.hand-made will be removed/);
    assert.equal(dry.stdout, plan.stdout);
    const planDoc = jsonData(await cli(["plan", "--json"], { env }));
    const dryDoc = jsonData(await cli(["sync", "--dry-run", "--json"], { env }));
    assert.deepEqual({ ...dryDoc, created_at: null }, { ...planDoc, created_at: null });

    assert.ok(await exists(join(handMade, "__init__.py")), "the node sync would remove is still there");
    assert.equal(await cec("rev-parse", "HEAD"), head, "no .cec commit");
    assert.equal(await cec("status", "--porcelain"), "", ".cec untouched");
    assert.deepEqual(await diskState(paths.root, paths.state), before);
  } finally {
    // Gone already when the claim broke: the assertion above is the error to show, not this one.
    await Deno.remove(handMade, { recursive: true }).catch(() => {});
  }
});

Deno.test("repair --force-unlock: removes a stale lock record and says so; a live holder is named, not robbed", async () => {
  const { paths, env } = await realEnv();
  const lockJson = join(paths.state, "lock.json");
  // What a crash leaves: the record of a process that is gone (the OS lock went with it).
  await Deno.writeTextFile(
    lockJson,
    JSON.stringify({
      pid: 999999,
      host: "gone-host",
      command: "apply",
      started_at: "2026-01-01",
      token: "t",
    }),
  );
  const cleared = await cli(["repair", "--force-unlock"], { env });
  assert.equal(cleared.code, 0, cleared.stderr);
  assert.match(
    cleared.stdout,
    /removed a stale lock\.json left by pid 999999 on gone-host \('comfydock apply'/,
  );
  assert.equal(await exists(lockJson), false);
  assert.match((await cli(["repair", "--force-unlock"], { env })).stdout, /Nothing to repair/);

  const held = await acquireLock(paths.state, "apply");
  try {
    const record = await Deno.readTextFile(lockJson);
    const refused = await cli(["repair", "--force-unlock"], { env });
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      new RegExp(`held by a running process: pid ${Deno.pid} on .*'comfydock apply'`),
    );
    assert.match(refused.stderr, new RegExp(`hint: .*kill ${Deno.pid}`));
    assert.equal(await Deno.readTextFile(lockJson), record, "the holder's record stays");
    assert.equal((await lockHolder(paths.state)).held, true, "and so does its lock");
  } finally {
    await held.release();
  }
});

Deno.test("--debug shows the stack trace of an error, before or after the command", async () => {
  await withTempDir(async (dir) => {
    const paths = await makeEnvSkeleton(dir, "e");
    await Deno.writeTextFile(
      paths.pyproject,
      basePyproject("e") + "\n[tool.comfydock.nodes.x]\nsource = 1\n",
    );
    const env = { COMFYDOCK_HOME: dir };
    for (const args of [["--debug", "plan"], ["plan", "--debug"]]) {
      const r = await cli(args, { env });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^error: .*tool\.comfydock\.nodes\.x/m, args.join(" "));
      assert.match(r.stderr, /^\s+at .*\.ts:\d+:\d+/m, `${args.join(" ")}: a stack trace`);
    }
  });
});

testNeeds(
  HAS_SCRIPT ? null : "util-linux 'script' for a pseudo-terminal",
  "colour on a terminal only, never with --no-color or NO_COLOR",
  async () => {
    const { env } = await realEnv();
    // fixtures/cli.ts sets NO_COLOR=1 for every run; empty means unset (no-color.org).
    const tty = (args: string[], extra: Record<string, string>) =>
      cliTty(args, { env: { ...env, ...extra }, keys: "", waitFor: /(?!)/ });

    const coloured = await tty(["status"], { NO_COLOR: "" });
    assert.equal(coloured.code, 0, coloured.output);
    assert.ok(coloured.raw.includes(GREEN_TICK), `a green ✓ on a terminal:\n${coloured.output}`);
    for (
      const [what, r] of [
        ["--no-color", await tty(["status", "--no-color"], { NO_COLOR: "" })],
        ["--no-color first", await tty(["--no-color", "status"], { NO_COLOR: "" })],
        ["NO_COLOR=1", await tty(["status"], { NO_COLOR: "1" })],
      ] as const
    ) {
      assert.equal(r.code, 0, r.output);
      assert.doesNotMatch(r.raw, SGR, what);
      assert.match(r.output, /✓ comfyui/, what);
    }
    const piped = await cli(["status"], { env: { ...env, NO_COLOR: "" } });
    assert.doesNotMatch(piped.stdout + piped.stderr, SGR, "no colour into a pipe");
    assert.match(piped.stdout, /✓ comfyui/);
  },
);
