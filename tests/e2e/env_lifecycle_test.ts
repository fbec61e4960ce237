/**
 * One real environment through the CLI: `run` warns on drift (never blocks), apply is logged, and
 * `delete` removes model links without ever following them into the store or a user's model folder.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, jsonData, MAIN } from "../../fixtures/cli.ts";
import { pidAlive } from "../../lib/proc.ts";
import { ModelServer } from "../../fixtures/model_server.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { Uv } from "../../providers/packages/uv.ts";
import { testSettings } from "../../fixtures/app.ts";
import { envLogPath } from "../../workspace/env_log.ts";
import { tempRoot } from "../../fixtures/tmp.ts";

Deno.env.set("GIT_CONFIG_GLOBAL", "/dev/null");

const root = await tempRoot("comfydock-e2e-lifecycle-");
const { paths, env: realEnv } = await createRealEnv(join(root, "ws"), "env");
const server = ModelServer.start();
const HF_TOKEN = "hf_TOPSECRET_123456";
const env = { ...realEnv, HF_ENDPOINT: server.url, HF_TOKEN, GIT_CONFIG_GLOBAL: "/dev/null" };
const run = (...args: string[]) => cli(args, { env });
const WARNING = /warning: environment 'env' differs from its \.cec\./;

Deno.test("run: a converged env starts quietly; drift is warned about (not blocking); --no-check skips", async () => {
  let r = await run("run", "--", "--exit-code", "3");
  assert.equal(r.code, 3, r.stderr);
  assert.doesNotMatch(r.stderr, /warning/);

  // Drift like a user makes it: a package removed from the venv by hand.
  const uv = await Uv.locate(paths.workspace, testSettings());
  await uv.pip(paths.venv, ["uninstall", "beta"]);
  r = await run("run", "--", "--exit-code", "4");
  assert.equal(r.code, 4, r.stderr); // ComfyUI ran anyway and its exit code came back
  assert.match(r.stdout, /import beta missing/);
  assert.match(r.stderr, WARNING);
  assert.match(r.stderr, /Plan: 0 to add, 1 to change, 0 to remove\./);
  assert.match(r.stderr, /run 'comfydock -e env apply' to make it match/);

  r = await run("run", "--no-check", "--", "--exit-code", "5");
  assert.equal(r.code, 5);
  assert.doesNotMatch(r.stderr, /warning/);
  // Options after `--` belong to ComfyUI, even one spelled like ours.
  r = await run("run", "--", "--no-check", "--exit-code", "0");
  assert.equal(r.code, 0);
  assert.match(r.stdout, /ComfyUI fixture args: \["--no-check", "--exit-code", "0"\]/);

  r = await run("apply", "--yes");
  assert.equal(r.code, 0, r.stderr);
  r = await run("run", "--", "--exit-code", "0");
  assert.doesNotMatch(r.stderr, /warning/);
  assert.match(r.stdout, /import beta 2\.0\.0/);

  const log = await Deno.readTextFile(envLogPath(paths.workspace, "env"));
  assert.match(log, /\] create: ComfyUI v0\.10\.0/);
  assert.match(
    log,
    /\] apply: ok\n {2}plan: 1 action\(s\)\n {4}~ packages: .*\n {2}result: 1 action\(s\) applied\n/,
  );
});

Deno.test("run behaves as the process it wraps: SIGTERM and SIGHUP reach ComfyUI, its exit code comes back", async () => {
  for (const [signal, number] of [["SIGTERM", 15], ["SIGHUP", 1]] as const) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", MAIN, "run", "--no-check", "--", "--serve"],
      env: { ...env, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.getReader();
    let out = "";
    while (!/serving pid \d+/.test(out)) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    const comfyPid = Number(/serving pid (\d+)/.exec(out)?.[1]);
    assert.ok(comfyPid > 0, out);
    child.kill(signal); // as `kill`, `docker stop` or a supervisor send it: to comfydock only
    const status = await child.status;
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    assert.equal(status.code, 128 + number, `exit code after ${signal}`);
    assert.equal(pidAlive(comfyPid), false, `ComfyUI (pid ${comfyPid}) still runs after ${signal}`);
  }
});

Deno.test("delete removes model links only: the store, a hard-linked copy and a user's folder survive", async () => {
  const DATA = new Uint8Array(50_000).map((_, i) => (i * 2654435761) >>> 24);
  server.hf("org/repo", "loras/tiny.safetensors", DATA);
  let r = await run("model", "add", "hf:org/repo/loras/tiny.safetensors", "--category", "loras", "--yes");
  assert.equal(r.code, 0, r.stderr);
  const link = join(paths.models, "loras", "tiny.safetensors");
  const target = await Deno.realPath(link);
  assert.ok((await Deno.lstat(link)).isSymlink, "model add links the store file into the environment");
  assert.ok(target.startsWith(await Deno.realPath(paths.workspace.modelStore)), target);

  // A user's own model folder linked in by hand, and a hard link to the store file.
  const mine = join(root, "my-models");
  await Deno.mkdir(join(mine, "nested"), { recursive: true });
  await Deno.writeTextFile(join(mine, "base.safetensors"), "user's checkpoint");
  await Deno.writeTextFile(join(mine, "nested", "x.safetensors"), "nested");
  await Deno.symlink(mine, join(paths.models, "checkpoints", "mine"));
  await Deno.link(target, join(paths.models, "loras", "hard.safetensors"));

  r = await run("--json", "delete", "env", "--yes");
  assert.equal(r.code, 0, r.stderr);
  const summary = jsonData(r);
  assert.equal(summary.modelFiles, 0, "links and store-shared hard links are not the environment's to lose");
  await assert.rejects(Deno.lstat(paths.root), Deno.errors.NotFound);
  assert.deepEqual(await Deno.readFile(target), DATA);
  assert.equal((await Deno.stat(target)).nlink, 1);
  assert.equal(await Deno.readTextFile(join(mine, "base.safetensors")), "user's checkpoint");
  assert.equal(await Deno.readTextFile(join(mine, "nested", "x.safetensors")), "nested");
  const left = (await Array.fromAsync(Deno.readDir(paths.workspace.environments))).map((e) => e.name);
  assert.deepEqual(left, []);

  // The log kept the history: the model commit (with the time it was made) and the delete.
  const log = await Deno.readTextFile(envLogPath(paths.workspace, "env"));
  // The model add logs its own apply block, listing the commit that asked for it.
  assert.match(log, /\] model add tiny: ok\n {2}\.cec commit \w{12} .*model add tiny/);
  assert.match(log, /\] delete: environment removed/);
  assert.ok(!log.includes(HF_TOKEN));
});
