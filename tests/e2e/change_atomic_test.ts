/**
 * A change is atomic (issue #16): declined, refused for lack of a terminal, failed at apply, or killed with
 * -9 in the middle, `.cec` (working tree, index and history) and the environment are exactly as before;
 * the user's own uncommitted `.cec` edits are never swept into a tool's commit. Real environment, real
 * registry server on 127.0.0.1, the CLI as a subprocess.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, cliTty, HAS_SCRIPT, MAIN } from "../../fixtures/cli.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { startRegistryServer } from "../../fixtures/registry_server.ts";
import { listFiles, sha256Hex } from "../../lib/fsx.ts";
import { run } from "../../lib/proc.ts";
import { TEST_GIT_IDENTITY, testNeeds } from "../../fixtures/tools.ts";
import { ModelServer } from "../../fixtures/model_server.ts";
import { tempRoot } from "../../fixtures/tmp.ts";

/** The prompt tests type at a real terminal: util-linux `script` gives the CLI one. */
const NO_TTY = HAS_SCRIPT ? null : "util-linux 'script' for a pseudo-terminal";

const root = await tempRoot("comfydock-e2e-atomic-");
const { paths, env: realEnv } = await createRealEnv(join(root, "ws"), "env");
const server = await startRegistryServer([
  { id: "alpha-nodes", versions: [{ version: "1.0.0", pack: { requirements: ["epsilon==1.0.0"] } }] },
  { id: "beta-nodes", versions: [{ version: "1.0.0" }] },
  { id: "gamma-nodes", versions: [{ version: "1.0.0", pack: { requirements: ["delta==0.5.0"] } }] },
]);
const env = { ...realEnv, COMFYDOCK_REGISTRY_URL: server.url, COMFYDOCK_HTTP_RETRY_BASE_MS: "5" };
const comfydock = (args: string[], extra: Record<string, string> = {}) =>
  cli(args, { env: { ...env, ...extra } });

/** Everything a change could touch: every .cec file, git HEAD, index and status, custom_nodes and the venv. */
async function snapshot(): Promise<string> {
  const parts: string[] = [];
  for (const rel of await listFiles(paths.cec)) {
    if (rel.startsWith(".git/")) continue; // history and index are compared through git below
    parts.push(`${rel} ${sha256Hex(await Deno.readFile(join(paths.cec, rel)))}`);
  }
  const git = (...a: string[]) => run("git", ["-C", paths.cec, ...a]).then((r) => r.stdout);
  parts.push(`HEAD ${await git("rev-parse", "HEAD")}`, `status ${await git("status", "--porcelain")}`);
  parts.push(`index ${await git("ls-files", "--stage")}`, `refs ${await git("for-each-ref")}`);
  parts.push(`nodes ${(await listFiles(paths.customNodes)).join(",")}`);
  const site = (await listFiles(paths.venv)).filter((f) => f.endsWith("METADATA")).sort();
  parts.push(`venv ${site.join(",")}`);
  return parts.join("\n");
}

Deno.test("no terminal and no --yes: refused before anything changes, nothing committed", async () => {
  const before = await snapshot();
  const r = await comfydock(["node", "add", "alpha-nodes"]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /no terminal to ask on/);
  assert.match(r.stderr, /hint: pass --yes/);
  assert.equal(await snapshot(), before);
});

testNeeds(NO_TTY, "declined at the prompt ('n', Ctrl-C): nothing changed, nothing committed", async () => {
  const before = await snapshot();
  for (const keys of ["n", "\x03"]) {
    const r = await cliTty(["node", "add", "beta-nodes"], { env, keys, waitFor: /Apply these \d+ action/ });
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /Cancelled; \.cec and the environment are as they were\./);
    assert.equal(await snapshot(), before, `after answering ${JSON.stringify(keys)}`);
  }
});

Deno.test("an apply that fails rolls the environment AND .cec back: no commit, no half-installed node", async () => {
  const before = await snapshot();
  // The first action (the node's files) is made to fail after it ran: undo must remove them again.
  const r = await comfydock(["node", "add", "alpha-nodes", "--yes"], { COMFYDOCK_FAULT: "0:error" });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /fault injected at action 0/);
  assert.match(r.stderr, /the environment and \.cec are as they were/);
  assert.equal(await snapshot(), before);
  const log = await run("git", ["-C", paths.cec, "log", "--format=%s"]);
  assert.doesNotMatch(log.stdout, /node add alpha-nodes/);
});

Deno.test("kill -9 in the middle of a change: the next command puts .cec and the environment back", async () => {
  const before = await snapshot();
  const r = await comfydock(["node", "add", "alpha-nodes", "--yes"], { COMFYDOCK_FAULT: "1:exit" });
  assert.equal(r.code, 99, r.stderr); // the injected hard crash: no cleanup ran
  assert.notEqual(await snapshot(), before, "the crash left a half-made change behind");
  const status = await comfydock(["status"]);
  assert.match(status.stderr, /rolled back an interrupted node add/);
  assert.equal(await snapshot(), before);
});

Deno.test("SIGTERM or SIGINT to comfydock alone during the last step: rolled back, exit 130, nothing committed", async () => {
  // A supervisor (systemd, docker stop, a CI cancel) signals the process, not its group: uv, still syncing,
  // would never hear it. The signal is passed on (the sync stops), and the change never reaches its commit.
  const started = join(root, "sync-started");
  const syncs = join(root, "syncs.log");
  const wrapper = join(root, "uv-slow-sync.sh");
  await Deno.writeTextFile(
    wrapper,
    `#!/bin/sh\nif [ "$1" = sync ]; then echo start >> '${syncs}'; touch '${started}'; sleep 2; ` +
      `echo end >> '${syncs}'; fi\nexec '${(env as Record<string, string>).COMFYDOCK_UV ?? "uv"}' "$@"\n`,
  );
  await Deno.chmod(wrapper, 0o755);
  const before = await snapshot();
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    await Deno.remove(started).catch(() => {});
    await Deno.remove(syncs).catch(() => {});
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", MAIN, "node", "add", "alpha-nodes", "--yes"],
      env: { NO_COLOR: "1", ...env, COMFYDOCK_UV: wrapper },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const t0 = performance.now();
    while (!await Deno.stat(started).then(() => true, () => false)) {
      assert.ok(performance.now() - t0 < 60_000, "uv sync never started");
      await new Promise((res) => setTimeout(res, 50));
    }
    child.kill(sig);
    const out = await child.output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 130, `${sig}: ${stderr}`);
    assert.match(stderr, /interrupted.*rolled back/, sig);
    assert.equal(await snapshot(), before, `${sig}: the change went ahead`);
    // The interrupted sync never finished; the rollback's own sync (back to the old lock) did.
    assert.deepEqual(
      (await Deno.readTextFile(syncs)).trim().split("\n").slice(0, 2),
      ["start", "start"],
      sig,
    );
  }
});

Deno.test("SIGTERM during a model download: the download stops at once (its part kept to resume), rolled back", async () => {
  await using models = ModelServer.start();
  const big = new Uint8Array(4 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
  const url = models.file("/m/slow.safetensors", big);
  models.fault("/m/slow.safetensors", { kind: "slow", chunk: 64 * 1024, delayMs: 100 }); // ~6.5 s in all
  const text = await Deno.readTextFile(paths.pyproject);
  await Deno.writeTextFile(
    paths.pyproject,
    text + `\n[tool.comfydock.models.slow]\nsha256 = "${sha256Hex(big)}"\nsize = ${big.length}\n` +
      `category = "checkpoints"\nfilename = "slow.safetensors"\nsources = [{ type = "url", url = "${url}" }]\n`,
  );
  const git = (...a: string[]) => run("git", ["-C", paths.cec, ...a], { env: { ...TEST_GIT_IDENTITY } });
  await git("commit", "-qam", "a model to download");
  try {
    const before = await snapshot();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", MAIN, "apply", "--yes"],
      env: { NO_COLOR: "1", ...env },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const t0 = performance.now();
    while (models.count("/m/slow.safetensors") === 0) {
      assert.ok(performance.now() - t0 < 60_000, "the download never started");
      await new Promise((res) => setTimeout(res, 50));
    }
    await new Promise((res) => setTimeout(res, 500));
    child.kill("SIGTERM");
    const out = await child.output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 130, stderr);
    assert.match(stderr, /interrupted.*rolled back/);
    assert.equal(await snapshot(), before);
    assert.equal(models.count("/m/slow.safetensors"), 1, "not retried once interrupted");
    // Cut, not finished: the part is kept for the next try, short of the whole file.
    const downloads = join(paths.workspace.modelStore, ".downloads");
    const parts = (await listFiles(downloads)).filter((f) => f.endsWith(".part"));
    const sizes = await Promise.all(parts.map(async (f) => (await Deno.stat(join(downloads, f))).size));
    assert.ok(sizes.length === 1 && sizes[0] > 0 && sizes[0] < big.length, `parts: ${parts} ${sizes}`);
  } finally {
    await Deno.writeTextFile(paths.pyproject, text);
    await git("commit", "-qam", "no model");
  }
});

Deno.test("the user's uncommitted edits of pyproject.toml are never swept into a tool's commit", async () => {
  const text = await Deno.readTextFile(paths.pyproject);
  const edited = text + "\n# my own note, not committed\n";
  await Deno.writeTextFile(paths.pyproject, edited);
  const before = await snapshot();
  const r = await comfydock(["node", "add", "beta-nodes", "--yes"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /uncommitted edits in pyproject\.toml/);
  assert.match(r.stderr, /comfydock commit -m/);
  assert.equal(await snapshot(), before);
  assert.equal(await Deno.readTextFile(paths.pyproject), edited);
  await Deno.writeTextFile(paths.pyproject, text);
});

Deno.test("a change that succeeds is one commit of exactly what it wrote, applied", async () => {
  const r = await comfydock(["node", "add", "alpha-nodes", "--yes"]);
  assert.equal(r.code, 0, r.stderr);
  const show = await run("git", ["-C", paths.cec, "show", "--stat", "--format=%s", "HEAD"]);
  assert.match(show.stdout, /^node add alpha-nodes/);
  assert.match(show.stdout, /pyproject\.toml/);
  assert.match(show.stdout, /uv\.lock/);
  assert.equal((await run("git", ["-C", paths.cec, "status", "--porcelain"])).stdout, "");
  const plan = await comfydock(["plan", "--detailed-exitcode"]);
  assert.equal(plan.code, 0, plan.stdout + plan.stderr);
});

Deno.test("one node add resolves once: a single 'uv lock' for the change and its plan", async () => {
  // A uv that logs its subcommand before running the real one.
  const calls = join(root, "uv-calls.log");
  const wrapper = join(root, "uv-wrapper.sh");
  await Deno.writeTextFile(
    wrapper,
    `#!/bin/sh\necho "$1" >> '${calls}'\nexec '${
      (env as Record<string, string>).COMFYDOCK_UV ?? "uv"
    }' "$@"\n`,
  );
  await Deno.chmod(wrapper, 0o755);
  const r = await comfydock(["node", "add", "gamma-nodes", "--yes"], { COMFYDOCK_UV: wrapper });
  assert.equal(r.code, 0, r.stderr);
  const log = (await Deno.readTextFile(calls)).trim().split("\n");
  assert.equal(log.filter((c) => c === "lock").length, 1, `uv calls: ${log.join(", ")}`);
  assert.equal(log.filter((c) => c === "sync").length, 1, `uv calls: ${log.join(", ")}`);
});

testNeeds(NO_TTY, "a destructive plan defaults to No: Enter at 'remove' changes nothing", async () => {
  const before = await snapshot();
  const r = await cliTty(["node", "remove", "alpha-nodes"], {
    env,
    keys: "\r",
    waitFor: /Apply these \d+ action/,
  });
  assert.match(r.output, /● No/);
  assert.match(r.output, /Cancelled; \.cec and the environment are as they were\./);
  assert.equal(await snapshot(), before);
});
