import assert from "node:assert/strict";
import { join } from "node:path";
import { buildComfyUIRepo } from "../../fixtures/comfyui_repo.ts";
import { cli, jsonData, MAIN } from "../../fixtures/cli.ts";
import { buildWheelhouse, STANDARD_WHEELS } from "../../fixtures/wheels.ts";
import { exists } from "../../lib/fsx.ts";
import { noGitIdentity, testPython, useLocalUv } from "../../fixtures/tools.ts";
import { FALLBACK_IDENTITY, git } from "../../providers/git/git.ts";
import { tempRoot } from "../../fixtures/tmp.ts";

await useLocalUv();
const PY = await testPython();
const root = await tempRoot("comfydock-e2e-env-");
const repo = await buildComfyUIRepo(join(root, "upstream"));
const wheels = await buildWheelhouse(join(root, "wheels"), STANDARD_WHEELS);
const home = join(root, "ws");
const env = {
  // A new user's machine: no git identity anywhere.
  ...noGitIdentity(),
  COMFYDOCK_HOME: home,
  COMFYDOCK_COMFYUI_URL: repo.url,
  UV_FIND_LINKS: wheels,
  UV_NO_INDEX: "1",
};
const run = (...args: string[]) => cli(args, { env });
const FALLBACK = `${FALLBACK_IDENTITY.name} <${FALLBACK_IDENTITY.email}>`;
const envDirs = async () =>
  (await Array.fromAsync(Deno.readDir(join(home, "environments")))).map((e) => e.name).sort();

Deno.test("init, create --json, list, run with args and exit code passed through", async () => {
  let r = await run("init");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Initialized a ComfyDock workspace at /);
  r = await run("init");
  assert.match(r.stdout, /already exists.*nothing was overwritten/);

  r = await run("create", "one", "--python", PY.minor, "--torch-backend", "cpu", "--json");
  assert.equal(r.code, 0, r.stderr);
  const created = jsonData(r);
  assert.equal(created.name, "one");
  assert.equal(created.comfyui_version, "v0.10.0");
  assert.equal(created.comfyui_url, repo.url); // from COMFYDOCK_COMFYUI_URL
  assert.equal(created.active, true);
  assert.doesNotMatch(r.stderr, /==>|uv: |git: /); // --json: no progress noise
  // Without a git identity the .cec commit is still made, by ComfyDock's fallback (written to no config).
  const cec = join(home, "environments", "one", ".cec");
  const author = await git(cec, ["log", "-1", "--format=%an <%ae>|%cn <%ce>"], { env });
  assert.equal(author.stdout.trim(), `${FALLBACK}|${FALLBACK}`);
  assert.equal((await git(cec, ["config", "--local", "user.name"], { env, check: false })).code, 1);
  r = await run("create", "two", "--python", PY.minor, "--torch-backend", "cpu", "--comfyui", "v0.1.0");
  assert.equal(r.code, 0, r.stderr);
  const python = PY.version.replaceAll(".", "\\.");
  assert.match(
    r.stderr,
    new RegExp(`==> building the environment \\(ComfyUI v0\\.1\\.0 \\([0-9a-f]{7}\\), Python ${python}\\)\n`),
  );
  assert.match(r.stderr, /==> cloning ComfyUI v0\.1\.0 \([0-9a-f]{7}\) from the mirror/);
  assert.match(r.stderr, /==> locking 1 ComfyUI requirement\(s\) \(uv lock\)\n/);
  // uv's and git's own output is a progress task (tests/e2e/progress_test.ts), not a line per redraw.
  assert.doesNotMatch(r.stderr, /==> (Resolved|Installed|Prepared) \d+/);
  assert.match(r.stdout, /Created environment 'two'/);

  r = await run("list", "--json");
  assert.deepEqual(
    jsonData(r).environments.map((e: { name: string; active: boolean }) => [e.name, e.active]),
    [
      ["one", true],
      ["two", false],
    ],
  );
  r = await run("list");
  assert.match(r.stdout, /^\* one +ComfyUI v0\.10\.0/m);
  assert.match(r.stdout, /^ {2}two +ComfyUI v0\.1\.0/m);

  r = await run("run", "--", "--listen", "0.0.0.0", "--exit-code", "7");
  assert.equal(r.code, 7);
  assert.match(r.stdout, /ComfyUI fixture args: \["--listen", "0\.0\.0\.0", "--exit-code", "7"\]/);
  assert.match(r.stdout, /python: .*environments\/one\/\.venv\/bin\/python/);
  r = await run("-e", "two", "run", "--", "--exit-code", "0");
  assert.equal(r.code, 0);
  assert.match(r.stdout, /environments\/two\/\.venv/);

  r = await run("use", "two");
  assert.equal(r.code, 0);
  assert.match((await run("list")).stdout, /^\* two/m);
});

Deno.test("create errors: bad names, unknown version; nothing left behind", async () => {
  const before = await envDirs();
  let r = await run("create", "../up");
  assert.equal(r.code, 1);
  assert.match(r.stderr, /environment name '\.\.\/up' contains a path separator/);
  r = await run("create", "three", "--python", PY.minor, "--comfyui", "v0.99.0", "--torch-backend", "cpu");
  assert.equal(r.code, 1);
  assert.match(r.stderr, /failed at step "resolving ComfyUI 'v0\.99\.0'/);
  assert.match(r.stderr, /hint: newest releases: v0\.10\.0/);
  r = await cli(["create", "three", "--python", PY.minor], {
    env: { ...env, COMFYDOCK_UV: join(root, "no-uv") },
  });
  assert.equal(r.code, 1);
  assert.ok(
    r.stderr.includes(`failed at step "finding Python ${PY.minor} and uv": COMFYDOCK_UV points to`),
    r.stderr,
  );
  assert.deepEqual(await envDirs(), before);
});

Deno.test("Ctrl-C during create removes the half-made environment (exit 130)", async () => {
  const before = await envDirs();
  const workspaceJson = await Deno.readTextFile(join(home, ".metadata", "workspace.json"));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "create", "four", "--python", PY.minor, "--torch-backend", "cpu"],
    env: { ...env, NO_COLOR: "1", COMFYDOCK_CREATE_FAULT: "lock:hang" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let err = "";
  while (!err.includes("waiting at 'lock'")) {
    const { value, done } = await reader.read();
    if (done) break;
    err += value;
  }
  // The new .cec is already written in its staging dir when the signal comes.
  const staging = join(home, ".metadata", "staging");
  const staged = (await Array.fromAsync(Deno.readDir(staging))).map((e) => e.name);
  assert.ok(staged.some((n) => n.startsWith(`create-${child.pid}-`)), staged.join());
  child.kill("SIGINT");
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    err += value;
  }
  await child.stdout.cancel();
  const status = await child.status;
  assert.equal(status.code, 130, err);
  assert.match(err, /create interrupted during "locking/);
  assert.deepEqual(await envDirs(), before);
  assert.equal(await exists(staging), false, "the staged .cec is removed");
  assert.equal(await Deno.readTextFile(join(home, ".metadata", "workspace.json")), workspaceJson);
});

Deno.test("config set-key from stdin: stored 0600, shown masked only; config set/get", async () => {
  const secret = "hf_e2eSecretToken4242";
  let r = await cli(["config", "set-key", "huggingface"], { env, stdin: `${secret}\n` });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /hf_\*\*\*\*4242/);
  assert.ok(!(r.stdout + r.stderr).includes(secret));
  assert.equal((await Deno.stat(join(home, ".metadata", "keys.json"))).mode! & 0o777, 0o600);
  r = await run("config", "list");
  assert.match(r.stdout, /key huggingface +hf_\*\*\*\*4242 +\(keys\.json\)/);
  assert.ok(!r.stdout.includes(secret));
  r = await cli(["config", "set-key", "github"], { env, stdin: "" });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no github key was given; nothing was stored/);
  r = await run("config", "set-key", "dropbox");
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unknown service 'dropbox'/);
  r = await run("config", "set", "model_paths", "/m1,/m2");
  assert.equal(r.code, 0, r.stderr);
  r = await run("config", "get", "model_paths", "--json");
  assert.deepEqual(jsonData(r), { key: "model_paths", value: ["/m1", "/m2"] });
});

Deno.test("delete asks (refused without a terminal unless --yes), then removes the environment", async () => {
  let r = await run("delete", "two");
  assert.equal(r.code, 1);
  assert.match(r.stderr, /pass --yes/);
  assert.ok((await envDirs()).includes("two"));
  r = await run("delete", "two", "--yes");
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await envDirs(), ["one"]);
  r = await run("run");
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no environment selected/); // 'two' was active
});
