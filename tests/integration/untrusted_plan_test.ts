/**
 * Saved plans and journals are untrusted input (issue #17): a plan file applies only if its actions equal
 * the ones a fresh plan would carry out, every payload is checked against its provider's schema, and a
 * journal whose undo steps reach outside the environment is refused before anything runs. A canary folder
 * outside the environment proves nothing was moved.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { makeEnvSkeleton } from "../../fixtures/env_skeleton.ts";
import { testApp } from "../../fixtures/app.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { CdError } from "../../lib/errors.ts";
import { exists } from "../../lib/fsx.ts";
import { nodeProvider } from "../../providers/nodes/provider.ts";
import { Journal } from "../../reconcile/journal.ts";
import { workspacePaths } from "../../reconcile/paths.ts";
import type { Plan } from "../../reconcile/types.ts";
import { withSession } from "../../workspace/session.ts";

async function setUp(root: string) {
  const paths = await makeEnvSkeleton(join(root, "ws"), "e1");
  // An unmanaged folder in custom_nodes: the plan removes it (to the trash).
  await Deno.mkdir(join(paths.customNodes, "stray"));
  await Deno.writeTextFile(join(paths.customNodes, "stray", "__init__.py"), "");
  const canary = join(root, "outside");
  await Deno.mkdir(canary);
  await Deno.writeTextFile(join(canary, "precious.txt"), "keep me");
  const app = testApp(workspacePaths(join(root, "ws")), { providers: [nodeProvider] });
  const plan = await withSession(app, paths, "plan", "read", async (s) => (await s.plan()).plan);
  assert.equal(plan.actions.length, 1);
  return { paths, canary, app, plan };
}

const applySaved = (app: ReturnType<typeof testApp>, paths: Parameters<typeof withSession>[1], plan: Plan) =>
  withSession(app, paths, "apply", "write", (s) => s.apply(plan, { saved: true }));

Deno.test("a saved plan whose actions were edited is refused as stale, even with the right fingerprints", async () => {
  await withTempDir(async (root) => {
    const { paths, canary, app, plan } = await setUp(root);
    const tampered: Plan = structuredClone(plan);
    (tampered.actions[0].before as { path: string }).path = "../../../../outside";
    await assert.rejects(applySaved(app, paths, tampered), (e: CdError) => {
      assert.equal(e.code, "PLAN_STALE");
      assert.match(e.message, /its actions are not the ones a plan made now would carry out/);
      return true;
    });
    assert.equal(await Deno.readTextFile(join(canary, "precious.txt")), "keep me");
    assert.ok(await exists(join(paths.customNodes, "stray")));
    // The untouched plan still applies.
    const r = await applySaved(app, paths, plan);
    assert.equal(r.applied.length, 1);
  });
});

Deno.test("a saved plan with a payload its provider does not accept is refused before anything runs", async () => {
  await withTempDir(async (root) => {
    const { paths, app, plan } = await setUp(root);
    const bad: Plan = {
      ...plan,
      actions: [{
        address: "node.x",
        type: "node",
        kind: "create",
        reason: "",
        before: null,
        after: { id: "x", dir: "../../outside", spec: { source: "local", path: "/tmp" } },
      }],
    };
    await assert.rejects(applySaved(app, paths, bad), (e: CdError) => {
      assert.equal(e.code, "PLAN_INVALID_ACTION");
      assert.match(e.message, /action node\.x: after\.dir: must be a plain folder name/);
      return true;
    });
  });
});

Deno.test("a journal whose undo steps reach outside the environment is refused, and runs nothing", async () => {
  await withTempDir(async (root) => {
    const { paths, canary, app } = await setUp(root);
    await Deno.mkdir(paths.state, { recursive: true });
    const journal = {
      id: "2026-01-01T00-00-00-000Z-abcdef",
      pid: 1,
      started_at: "2026-01-01T00:00:00.000Z",
      status: "running",
      entries: [{ index: 0, address: "node.x", status: "running", undo: [{ op: "remove", path: canary }] }],
    };
    await Deno.writeTextFile(Journal.path(paths.state), JSON.stringify(journal));
    await assert.rejects(
      withSession(app, paths, "plan", "read", () => Promise.resolve()),
      (e: CdError) => {
        assert.equal(e.code, "JOURNAL_INVALID");
        assert.match(e.message, /journal\.json: refusing an undo step of the journal: .*outside is outside/);
        assert.match(e.hint!, /move it away/);
        return true;
      },
    );
    assert.equal(await Deno.readTextFile(join(canary, "precious.txt")), "keep me");
    // A restore whose trash path is not in the journal's own trash is refused too.
    journal.entries[0].undo = [{
      op: "restore",
      path: join(paths.customNodes, "y"),
      trashPath: canary,
    }] as never;
    await Deno.writeTextFile(Journal.path(paths.state), JSON.stringify(journal));
    await assert.rejects(
      withSession(app, paths, "plan", "read", () => Promise.resolve()),
      /JOURNAL_INVALID|outside/,
    );
    assert.ok(await exists(join(canary, "precious.txt")));
  });
});
