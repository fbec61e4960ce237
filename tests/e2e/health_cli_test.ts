/**
 * Synced is not healthy (#18): `comfydock health` starts the environment's ComfyUI (the fixture's main.py
 * and nodes.py load custom_nodes/ as ComfyUI does and print its lines) and reports each pack; `apply
 * --verify`, `status` and the install.py note build on it. Real venv, real git nodes, the CLI as a process.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, jsonData } from "../../fixtures/cli.ts";
import { makeNodeRepo } from "../../fixtures/node_git.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { testSettings } from "../../fixtures/app.ts";
import { useLocalUv } from "../../fixtures/tools.ts";
import { Uv } from "../../providers/packages/uv.ts";
import { healthFile } from "../../providers/comfyui/health.ts";
import { tempRoot } from "../../fixtures/tmp.ts";

await useLocalUv();
Deno.env.set("GIT_CONFIG_GLOBAL", "/dev/null");

const root = await tempRoot("comfydock-e2e-health-");
const { paths, env: realEnv } = await createRealEnv(join(root, "ws"), "env");
const env = { ...realEnv, GIT_CONFIG_GLOBAL: "/dev/null" };
const run = (...args: string[]) => cli(args, { env });
const repos = join(root, "repos");

const good = await makeNodeRepo(repos, "good-pack", [{ tag: "v1", pack: { classes: ["GoodA", "GoodB"] } }]);
const broken = await makeNodeRepo(repos, "broken-pack", [{
  tag: "v1",
  pack: { extra: { "__init__.py": "import cv2\n\nNODE_CLASS_MAPPINGS = {}\n" } },
}]);

interface Pack {
  dir: string;
  id: string | null;
  status: string;
  classes: string[] | null;
  missing_module: string | null;
  error: string | null;
}

Deno.test("health: a clean plan with a pack that cannot import is unhealthy (exit 2), and says why", async () => {
  for (const repo of [good, broken]) {
    const r = await run("node", "add", `${repo.url}@v1`, "--yes");
    assert.equal(r.code, 0, r.stderr);
  }
  // A single-file node (captured into .cec) and a disabled pack: ComfyUI loads the first and skips the
  // second. ComfyUI's own websocket_image_save.py loads like a pack too.
  await Deno.writeTextFile(
    join(paths.customNodes, "solo.py"),
    // It leaves a temp folder at import, as torch does on every start.
    'import tempfile\ntempfile.mkdtemp(prefix="solo-leak-")\n\n' +
      'class Solo:\n    pass\n\nNODE_CLASS_MAPPINGS = {"SoloNode": Solo}\n',
  );
  const captured = await run("capture");
  assert.equal(captured.code, 0, captured.stderr);
  assert.match(captured.stdout, /captured node solo/);
  await Deno.mkdir(join(paths.customNodes, "old-pack.disabled"));
  await Deno.writeTextFile(
    join(paths.customNodes, "old-pack.disabled", "__init__.py"),
    "raise SystemExit(9)\n",
  );

  let r = await run("plan", "--detailed-exitcode");
  assert.equal(r.code, 0, r.stdout + r.stderr); // synced...
  assert.match(r.stdout, /No changes/);

  const leaks = async () =>
    (await Array.fromAsync(Deno.readDir(Deno.env.get("TMPDIR") || "/tmp"))).map((e) => e.name)
      .filter((n) => n.startsWith("solo-leak-"));
  const leaksBefore = await leaks();
  r = await run("health");
  assert.equal(r.code, 2, r.stdout + r.stderr); // ...but not healthy
  assert.match(r.stdout, /unhealthy: 1 of 4 custom node pack\(s\) failed to import \(broken-pack\)/);
  assert.match(r.stdout, /✗ broken-pack: IMPORT FAILED: missing module 'cv2'/);
  assert.match(r.stdout, /✓ good-pack: loaded, 2 node classes/);
  assert.match(r.stdout, /✓ solo\.py \(node\.solo\): loaded, 1 node class/);
  assert.match(r.stdout, /✓ websocket_image_save\.py: loaded, 1 node class/);
  assert.match(r.stdout, /hint: missing Python module\(s\) cv2/);
  // What the start left in temp folders went with the check's own work folder.
  assert.deepEqual((await leaks()).filter((n) => !leaksBefore.includes(n)), []);

  r = await run("health", "--json");
  assert.equal(r.code, 2);
  const result = jsonData(r);
  assert.equal(result.healthy, false);
  assert.equal(result.started, true);
  assert.equal(result.method, "bootstrap");
  const packs = result.packs as Pack[];
  assert.deepEqual(packs.map((p) => `${p.dir}:${p.id}:${p.status}`), [
    "broken-pack:broken-pack:failed",
    "good-pack:good-pack:loaded",
    "solo.py:solo:loaded",
    "websocket_image_save.py:null:loaded",
  ]);
  assert.deepEqual(packs[1].classes, ["GoodA", "GoodB"]);
  assert.equal(packs[0].missing_module, "cv2");
  assert.equal(packs[0].error, "ModuleNotFoundError: No module named 'cv2'");
  // The result is kept for status and for workflow analysis.
  assert.deepEqual(JSON.parse(await Deno.readTextFile(healthFile(paths))), result);

  r = await run("status");
  assert.match(r.stdout, /✗ health +unhealthy: 1 of 4 custom node pack\(s\) failed .*\(checked 20\d\d-/);
  r = await run("status", "--json");
  assert.equal(jsonData(r).health.healthy, false);
});

Deno.test("apply --verify: healthy after removing the broken pack (exit 0); the check goes into --json", async () => {
  let r = await run("node", "remove", "broken-pack", "--no-apply", "--yes");
  assert.equal(r.code, 0, r.stderr);
  r = await run("node", "remove", "solo", "--no-apply", "--yes");
  assert.equal(r.code, 0, r.stderr);
  r = await run("apply", "--verify", "--yes");
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /Apply complete!/);
  assert.match(
    r.stdout,
    /Health of 'env': healthy: ComfyUI started, 2 custom node pack\(s\) loaded \(3 node classes\)/,
  );

  r = await run("apply", "--verify", "--yes", "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = jsonData(r); // one document: the (empty) apply and its health check
  assert.equal(doc.applied, false);
  assert.equal(doc.health.healthy, true);
  r = await run("status");
  assert.match(r.stdout, /✓ health +healthy: ComfyUI started/);
});

Deno.test("health: ComfyUI failing to start (a requirement gone from the venv) is unhealthy and names it", async () => {
  const uv = await Uv.locate(paths.workspace, testSettings());
  await uv.pip(paths.venv, ["uninstall", "alpha"]);
  let r = await run("health");
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stdout, /unhealthy: ComfyUI did not start \(ModuleNotFoundError: No module named 'alpha'\)/);
  assert.match(r.stdout, /Last lines ComfyUI printed:/);
  assert.match(r.stdout, /hint: missing Python module\(s\) alpha/);
  r = await run("apply", "--verify", "--yes");
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /healthy: ComfyUI started/);
});

Deno.test("health: a start that hangs is stopped at --timeout, the hanging pack named; health holds a read lock, apply --verify its write lock", async () => {
  const hang = await makeNodeRepo(repos, "slow-pack", [{
    tag: "v1",
    pack: { extra: { "__init__.py": "import time\ntime.sleep(120)\nNODE_CLASS_MAPPINGS = {}\n" } },
  }]);
  let r = await run("node", "add", `${hang.url}@v1`, "--yes");
  assert.equal(r.code, 0, r.stderr);
  try {
    const t0 = performance.now();
    const checking = run("health", "--timeout", "15", "--json");
    // While it runs the check holds the environment's lock shared: an apply cannot change the environment
    // underneath it, a reader still can read. (Its work folder exists only while it holds the lock.)
    const working = async () =>
      (await Array.fromAsync(Deno.readDir(paths.state))).some((e) => e.name.startsWith("health-"));
    while (!await working()) {
      assert.ok(performance.now() - t0 < 60_000, "the health check never started");
      await new Promise((res) => setTimeout(res, 100));
    }
    const [applying, reading] = await Promise.all([run("apply", "--yes"), run("status")]);
    assert.equal(applying.code, 1, applying.stdout + applying.stderr);
    assert.match(applying.stderr, /the environment is locked by/);
    assert.equal(reading.code, 0, reading.stderr);
    r = await checking;
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(r.code, 2, r.stderr);
    assert.ok(seconds < 60, `health took ${seconds} s`);
    const result = jsonData(r);
    assert.equal(result.timed_out, true);
    assert.equal(result.started, false);
    assert.match(
      result.error,
      /did not finish starting within 15 s .* while importing custom_nodes\/slow-pack/,
    );
    const slow = (result.packs as Pack[]).find((p) => p.dir === "slow-pack");
    assert.equal(slow?.status, "failed");
    assert.match(slow?.error ?? "", /hung/);

    // apply --verify checks inside the apply's exclusive lock (nothing else runs until it is done); its
    // limit comes from COMFYDOCK_HEALTH_TIMEOUT.
    const t1 = performance.now();
    const verifying = cli(["apply", "--verify", "--yes", "--json"], {
      env: { ...env, COMFYDOCK_HEALTH_TIMEOUT: "10" },
    });
    while (!await working()) {
      assert.ok(performance.now() - t1 < 60_000, "apply --verify never started its check");
      await new Promise((res) => setTimeout(res, 100));
    }
    const blocked = await run("status");
    assert.equal(blocked.code, 1, blocked.stdout + blocked.stderr);
    assert.match(blocked.stderr, /the environment is locked by .*'comfydock apply'/);
    r = await verifying;
    assert.equal(r.code, 2, r.stderr);
    const verified = jsonData(r).health;
    assert.equal(verified.timed_out, true);
    assert.match(verified.error, /within 10 s .* while importing custom_nodes\/slow-pack/);

    // In a pipe the check keeps saying what it does (a line every few seconds), then how it ended.
    r = await run("health", "--timeout", "7");
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^\.\.\. starting ComfyUI in 'env' \(7 s limit\): \d+s elapsed/m);
    assert.match(r.stderr, /^✗ starting ComfyUI in 'env' \(7 s limit\): stopped at the 7 s limit$/m);

    r = await run("health", "--timeout", "soon");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--timeout soon: expected a number of seconds/);
  } finally {
    r = await run("node", "remove", "slow-pack", "--yes");
    assert.equal(r.code, 0, r.stderr);
  }
});

Deno.test("install.py: a persistent note in plan and status until health sees the pack load", async () => {
  const needsScript = await makeNodeRepo(repos, "script-pack", [{ tag: "v1", pack: { installPy: true } }]);
  let r = await run("node", "add", `${needsScript.url}@v1`, "--yes");
  assert.equal(r.code, 0, r.stderr);
  const note = /node\.script-pack: has an install\.py that ComfyDock never runs/;
  r = await run("plan");
  assert.match(r.stdout, note);
  r = await run("plan");
  assert.match(r.stdout, note); // stays: nothing has checked the pack yet
  r = await run("status");
  assert.match(r.stdout, /! node\.script-pack +has an install\.py/);
  r = await run("health");
  assert.equal(r.code, 0, r.stdout + r.stderr);
  r = await run("plan");
  assert.doesNotMatch(r.stdout, note);
  r = await run("status");
  assert.match(r.stdout, /✓ node\.script-pack +in sync/);
});

Deno.test("health: an environment without its venv is an error (exit 1) with what to do", async () => {
  await Deno.rename(paths.venv, `${paths.venv}.away`);
  try {
    const r = await run("health");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: env: no Python environment at .*\.venv/);
    assert.match(r.stderr, /hint: run 'comfydock apply'/);
  } finally {
    await Deno.rename(`${paths.venv}.away`, paths.venv);
  }
});

Deno.test("apply --verify whose check cannot run: what was applied is reported first, then the error (exit 1)", async () => {
  const main = join(paths.comfyui, "main.py");
  const text = await Deno.readTextFile(main);
  await Deno.remove(main);
  const stray = join(paths.customNodes, "stray-pack");
  await Deno.mkdir(stray);
  try {
    const r = await run("apply", "--verify", "--yes");
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /Apply complete! 0 added, 0 changed, 1 removed\./);
    assert.match(r.stderr, /error: env: no ComfyUI checkout at /);
    assert.equal(await Deno.stat(stray).then(() => true, () => false), false);
  } finally {
    await Deno.writeTextFile(main, text);
  }
});

Deno.test("workflow analyze in an environment knows its packs: health's classes, else a scan of the source", async () => {
  // A pack health has never seen, with its mappings spread the way real packs write them.
  const scanned = join(paths.customNodes, "scan-only");
  await Deno.mkdir(join(scanned, "nodes"), { recursive: true });
  await Deno.writeTextFile(
    join(scanned, "__init__.py"),
    'from .nodes.a import A_CLASS_MAPPINGS\nNODE_CLASS_MAPPINGS = {**A_CLASS_MAPPINGS}\nNODE_CLASS_MAPPINGS["Late"] = object\n',
  );
  await Deno.writeTextFile(join(scanned, "nodes", "a.py"), 'A_CLASS_MAPPINGS = {\n    "ScanA": object,\n}\n');
  const wf = join(root, "wf.json");
  const node = (id: number, type: string) => ({ id, type, mode: 0, properties: {} });
  await Deno.writeTextFile(
    wf,
    JSON.stringify({
      nodes: [node(1, "GoodA"), node(2, "ScanA"), node(3, "Late"), node(4, "KSampler"), node(5, "Nobody")],
    }),
  );
  const r = await run("workflow", "analyze", wf, "--json");
  assert.equal(r.code, 0, r.stderr);
  const a = jsonData(r);
  const byType = Object.fromEntries(
    (a.nodes as { type: string; kind: string; package: string | null }[]).map((
      n,
    ) => [n.type, `${n.kind}:${n.package}`]),
  );
  assert.deepEqual(byType, {
    GoodA: "custom:good-pack", // from health.json (good-pack is a .cec node)
    ScanA: "custom:scan-only", // from the scan: not in .cec, named by its folder
    Late: "custom:scan-only",
    KSampler: "core:comfy-core",
    Nobody: "unknown:null",
  });
  assert.match(a.node_index, /installed pack\(s\) of 'env'/);
  // A map from the settings (COMFYDOCK_NODE_MAP) still answers what no installed pack provides; an
  // installed pack still wins over it for its own classes.
  const map = join(root, "extension-node-map.json");
  await Deno.writeTextFile(
    map,
    JSON.stringify({
      "https://example.com/nobody-pack": [["Nobody"], { title_aux: "Nobody pack" }],
      "https://example.com/other-good": [["GoodA"], { title_aux: "Other" }],
    }),
  );
  const mapped = await cli(["workflow", "analyze", wf, "--json"], {
    env: { ...env, COMFYDOCK_NODE_MAP: map },
  });
  assert.equal(mapped.code, 0, mapped.stderr);
  const kinds = Object.fromEntries(
    (jsonData(mapped).nodes as { type: string; package: string | null }[]).map((
      n,
    ) => [n.type, n.package]),
  );
  assert.equal(kinds.Nobody, "https://example.com/nobody-pack");
  assert.equal(kinds.GoodA, "good-pack");
  // Outside any environment the same workflow knows none of them (no node map given).
  const bare = await cli(["workflow", "analyze", wf, "--json"], {
    env: { ...env, COMFYDOCK_HOME: join(root, "nowhere") },
  });
  assert.equal(bare.code, 0, bare.stderr);
  assert.equal(jsonData(bare).nodes.filter((n: { kind: string }) => n.kind === "unknown").length, 4);
  await Deno.remove(scanned, { recursive: true });
});
