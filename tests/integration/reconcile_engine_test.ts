/**
 * The apply engine with a small real provider that keeps `custom_nodes/<id>/VERSION` equal to the
 * desired node version: journal, trash, undo, lock, stale plans and fault injection on real files.
 */
import assert from "node:assert/strict";
import { basename, dirname, join } from "node:path";
import { cli } from "../../fixtures/cli.ts";
import { basePyproject, makeEnvSkeleton } from "../../fixtures/env_skeleton.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { exists, listFiles } from "../../lib/fsx.ts";
import type { DesiredState } from "../../reconcile/desired.ts";
import { applyPlan, makePlan } from "../../reconcile/engine.ts";
import { Journal } from "../../reconcile/journal.ts";
import { acquireLock } from "../../reconcile/lock.ts";
import type { Action, Json, Provider } from "../../reconcile/types.ts";
import { testApp, testSettings } from "../../fixtures/app.ts";
import { z } from "zod";
import { workspacePaths } from "../../reconcile/paths.ts";
import { withSession } from "../../workspace/session.ts";

type Observed = Record<string, string>;

const versionFileProvider: Provider<Observed> = {
  type: "node",
  async observe(desired: DesiredState) {
    const out: Observed = {};
    for await (const e of Deno.readDir(desired.paths.customNodes)) {
      out[e.name] = await Deno.readTextFile(join(desired.paths.customNodes, e.name, "VERSION")).catch(() =>
        "?"
      );
    }
    return out;
  },
  diff(desired, observed) {
    const actions: Action[] = [];
    for (const [id, spec] of Object.entries(desired.nodes)) {
      const want = spec.source === "registry" ? spec.version : "dev";
      if (!(id in observed)) {
        actions.push({
          address: `node.${id}`,
          type: "node",
          kind: "create",
          reason: "not installed",
          before: null,
          after: want,
        });
      } else if (observed[id] !== want) {
        actions.push({
          address: `node.${id}`,
          type: "node",
          kind: "update",
          reason: `at ${observed[id]}`,
          before: observed[id],
          after: want,
        });
      }
    }
    for (const id of Object.keys(observed)) {
      if (!(id in desired.nodes)) {
        actions.push({
          address: `node.${id}`,
          type: "node",
          kind: "delete",
          reason: "not in .cec",
          before: observed[id],
          after: null,
        });
      }
    }
    return { actions, notes: [] };
  },
  payload: z.object({ kind: z.string(), before: z.unknown(), after: z.unknown() }),
  async apply(action, tx, ctx) {
    const id = action.address.slice("node.".length);
    const final = join(ctx.paths.customNodes, id);
    await tx.trash(final);
    if (action.kind === "delete") return;
    const staged = await tx.stagingDir(id);
    await Deno.writeTextFile(join(staged, "VERSION"), String(action.after as Json));
    await tx.place(staged, final);
  },
};

const providers = [versionFileProvider];
const nodesToml = (versions: Record<string, string>) =>
  Object.entries(versions).map(([id, v]) =>
    `[tool.comfydock.nodes.${id}]\nsource = "registry"\nversion = "${v}"\n`
  )
    .join("\n");

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of await listFiles(dir)) out[f] = await Deno.readTextFile(join(dir, f));
  return out;
}

Deno.test("plan -> apply -> plan is empty; applying the same plan again is refused as stale", async () => {
  await withTempDir(async (root) => {
    const paths = await makeEnvSkeleton(root, "e1", nodesToml({ a: "1.0", b: "2.0" }));
    await Deno.mkdir(join(paths.customNodes, "stray"));
    await Deno.writeTextFile(join(paths.customNodes, "stray", "VERSION"), "x");
    const { plan } = await makePlan(paths, { providers, settings: testSettings() });
    assert.deepEqual(plan.actions.map((a) => `${a.kind} ${a.address}`), [
      "create node.a",
      "create node.b",
      "delete node.stray",
    ]);
    const result = await applyPlan(paths, plan, { providers, settings: testSettings() });
    assert.equal(result.applied.length, 3);
    assert.equal(await Deno.readTextFile(join(paths.customNodes, "a", "VERSION")), "1.0");
    assert.equal(await exists(join(paths.customNodes, "stray")), false);
    // The removed node is in the trash, not gone.
    assert.ok(result.trashDir);
    assert.equal(
      await Deno.readTextFile(join(result.trashDir, (await snapshotNames(result.trashDir))[0], "VERSION")),
      "x",
    );
    const again = await makePlan(paths, { providers, settings: testSettings() });
    assert.equal(again.plan.actions.length, 0);
    await assert.rejects(
      applyPlan(paths, plan, { providers, settings: testSettings() }),
      /Saved plan is stale/,
    );
  });
});

async function snapshotNames(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

Deno.test("a plan made before .cec changed is refused as stale", async () => {
  await withTempDir(async (root) => {
    const paths = await makeEnvSkeleton(root, "e1", nodesToml({ a: "1.0" }));
    const { plan } = await makePlan(paths, { providers, settings: testSettings() });
    await Deno.writeTextFile(
      paths.pyproject,
      (await Deno.readTextFile(paths.pyproject)).replace('"1.0"', '"1.1"'),
    );
    await assert.rejects(
      applyPlan(paths, plan, { providers, settings: testSettings() }),
      /Saved plan is stale: \.cec changed/,
    );
    assert.equal(await exists(join(paths.customNodes, "a")), false);
  });
});

Deno.test("an error at any action rolls every earlier action back", async () => {
  await withTempDir(async (root) => {
    const paths = await makeEnvSkeleton(root, "e1", nodesToml({ a: "1.0", b: "2.0", c: "3.0" }));
    for (const [id, v] of [["a", "0.9"], ["c", "3.0"], ["old", "1"]]) {
      await Deno.mkdir(join(paths.customNodes, id));
      await Deno.writeTextFile(join(paths.customNodes, id, "VERSION"), v);
    }
    const before = await snapshot(paths.customNodes);
    const { plan } = await makePlan(paths, { providers, settings: testSettings() });
    assert.equal(plan.actions.length, 3); // update a, create b, delete old
    for (let i = 0; i < plan.actions.length; i++) {
      Deno.env.set("COMFYDOCK_FAULT", `${i}:error`);
      try {
        await assert.rejects(
          applyPlan(paths, plan, { providers, settings: testSettings() }),
          /fault injected at action .*\n?.*rolled back/s,
        );
      } finally {
        Deno.env.delete("COMFYDOCK_FAULT");
      }
      assert.deepEqual(await snapshot(paths.customNodes), before, `state after a fault at action ${i}`);
      assert.equal(await Journal.load(paths), null);
    }
  });
});

Deno.test("the trash keeps what the last 5 applies replaced; older ones go after a successful change only", async () => {
  await withTempDir(async (root) => {
    const paths = await makeEnvSkeleton(root, "e1");
    await Deno.mkdir(join(paths.customNodes, "a"));
    await Deno.writeTextFile(join(paths.customNodes, "a", "VERSION"), "0");
    const apply = async (version: number) => {
      const opts = { providers, settings: testSettings() }; // settings read COMFYDOCK_FAULT
      await Deno.writeTextFile(paths.pyproject, basePyproject("e1", nodesToml({ a: String(version) })));
      const { plan } = await makePlan(paths, opts);
      return applyPlan(paths, plan, opts);
    };
    // Each apply replaces node a, so each one's trash holds the version before it.
    const trashes: string[] = [];
    for (let v = 1; v <= 7; v++) trashes.push((await apply(v)).trashDir!);
    const applies = join(paths.state, "applies");
    const kept = trashes.slice(2);
    assert.deepEqual(await snapshotNames(applies), kept.map((t) => basename(dirname(t))).sort());
    for (const [i, trash] of kept.entries()) {
      const [entry] = await snapshotNames(trash);
      assert.equal(await Deno.readTextFile(join(trash, entry, "VERSION")), String(i + 2), trash);
    }

    // A failed change prunes nothing: the 5 kept are all still there after it.
    Deno.env.set("COMFYDOCK_FAULT", "0:error");
    try {
      await assert.rejects(apply(8), /fault injected/);
    } finally {
      Deno.env.delete("COMFYDOCK_FAULT");
    }
    for (const trash of kept) assert.ok(await exists(trash), `${trash} survives a failed change`);
  });
});

Deno.test("kill at any action: the next command rolls back to the old state", async () => {
  await withTempDir(async (root) => {
    const paths = await makeEnvSkeleton(root, "e1", nodesToml({ a: "1.0", b: "2.0" }));
    await Deno.mkdir(join(paths.customNodes, "a"));
    await Deno.writeTextFile(join(paths.customNodes, "a", "VERSION"), "0.1");
    const before = await snapshot(paths.customNodes);
    const script = join(root, "apply.ts");
    const engine = new URL("../../reconcile/engine.ts", import.meta.url).href;
    const self = new URL(import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { applyPlan, makePlan } from "${engine}";\nimport { testProviders } from "${self}";\n` +
        `import { envPaths, workspacePaths } from "${
          new URL("../../reconcile/paths.ts", import.meta.url).href
        }";\n` +
        `import { settingsFromEnv } from "${new URL("../../lib/settings.ts", import.meta.url).href}";\n` +
        `const paths = envPaths(workspacePaths(${JSON.stringify(root)}), "e1");\n` +
        `const opts = { providers: testProviders, settings: settingsFromEnv(Deno.env.toObject()) };\n` +
        `const { plan } = await makePlan(paths, opts);\nawait applyPlan(paths, plan, opts);\n`,
    );
    for (const i of [0, 1]) {
      const r = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--quiet",
          "--config",
          new URL("../../deno.json", import.meta.url).pathname,
          script,
        ],
        env: { COMFYDOCK_FAULT: `${i}:exit` },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(r.code, 99, new TextDecoder().decode(r.stderr));
      assert.notEqual(await Journal.load(paths), null, "the crash leaves the journal");
      // The next command (here a plan) finds the journal and rolls the crashed apply back first.
      const app = testApp(workspacePaths(root), { providers });
      const plan = await withSession(app, paths, "plan", "read", async (s) => (await s.plan()).plan);
      assert.deepEqual(await snapshot(paths.customNodes), before, `after a crash at action ${i}`);
      assert.equal(plan.actions.length, 2);
    }
  });
});

export const testProviders = providers;

Deno.test("a writer holds the lock: a second writer and a reader fail fast naming it", async () => {
  await withTempDir(async (root) => {
    const paths = await makeEnvSkeleton(root, "e1", nodesToml({ a: "1.0" }));
    const app = testApp(workspacePaths(root), { providers });
    const lock = await acquireLock(paths.state, "apply");
    try {
      for (const mode of ["read", "write"] as const) {
        await assert.rejects(
          withSession(app, paths, "plan", mode, () => Promise.resolve()),
          (e: Error) => /locked by pid \d+ on .*comfydock apply/.test(e.message),
        );
      }
      const { plan } = await makePlan(paths, { providers, settings: testSettings() });
      await assert.rejects(applyPlan(paths, plan, { providers, settings: testSettings() }), /locked by pid/);
    } finally {
      await lock.release();
    }
    // Readers share: two plans at once are fine.
    await withSession(
      app,
      paths,
      "plan",
      "read",
      () => withSession(app, paths, "status", "read", () => Promise.resolve()),
    );
  });
});

Deno.test("COMFYDOCK_FAULT with a bad value is a clear error", async () => {
  await withTempDir(async (root) => {
    const r = await cli(["plan"], { env: { COMFYDOCK_HOME: root, COMFYDOCK_FAULT: "x" } });
    assert.equal(r.code, 1);
  });
});

Deno.test("a lock never outlives its process: kill -9 frees it; a torn lock.json blocks nobody", async () => {
  await withTempDir(async (root) => {
    const paths = await makeEnvSkeleton(root, "e1");
    const script = join(root, "hold.ts");
    await Deno.writeTextFile(
      script,
      `import { acquireLock } from "${new URL("../../reconcile/lock.ts", import.meta.url).href}";\n` +
        `await acquireLock(${JSON.stringify(paths.state)}, "apply");\nconsole.log("held");\n` +
        `setInterval(() => {}, 60_000);\n`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", script],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.getReader();
    assert.match(new TextDecoder().decode((await reader.read()).value), /held/);
    await assert.rejects(acquireLock(paths.state, "apply"), /locked by pid \d+/);
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    // The holder is gone: its lock went with it, though its lock.json stayed behind.
    assert.ok(await exists(join(paths.state, "lock.json")));
    await (await acquireLock(paths.state, "apply")).release();
    // A zero-byte lock.json (what a full disk left) blocks nobody either.
    await Deno.writeTextFile(join(paths.state, "lock.json"), "");
    const held = await acquireLock(paths.state, "apply");
    await held.release();
  });
});

Deno.test("--force-unlock clears what it reports, and names a live holder instead of stealing from it", async () => {
  await withTempDir(async (root) => {
    const paths = await makeEnvSkeleton(root, "e1");
    const { forceUnlock } = await import("../../reconcile/lock.ts");
    assert.equal(await forceUnlock(paths.state), null); // nothing to clear
    await Deno.mkdir(paths.state, { recursive: true });
    await Deno.writeTextFile(join(paths.state, "lock.json"), "");
    assert.match((await forceUnlock(paths.state))!, /removed a stale lock\.json/);
    assert.equal(await exists(join(paths.state, "lock.json")), false);
    const held = await acquireLock(paths.state, "apply");
    try {
      await assert.rejects(forceUnlock(paths.state), /held by a running process: pid \d+/);
    } finally {
      await held.release();
    }
  });
});
