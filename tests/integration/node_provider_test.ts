/** The node provider through the real engine (plan/apply, journal, trash): registry, git, dev nodes. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { applyPlan, makePlan } from "../../reconcile/engine.ts";
import { nodeProvider } from "../../providers/nodes/provider.ts";
import { readMarker } from "../../providers/nodes/observe.ts";
import { type FixtureNode, startRegistryServer } from "../../fixtures/registry_server.ts";
import { makeNodeEnv, writeNodes } from "../../fixtures/node_env.ts";
import { gitIn, makeNodeRepo } from "../../fixtures/node_git.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { exists, listFiles } from "../../lib/fsx.ts";
import { CdError } from "../../lib/errors.ts";
import { truncate, zipNodePack, zipSlipArchive } from "../../fixtures/node_packs.ts";
import type { EnvPaths } from "../../reconcile/paths.ts";
import type { NodeSpec } from "../../reconcile/schema.ts";
import { testSettings } from "../../fixtures/app.ts";

/** Settings read at each call (as the CLI does per run): a test that sets COMFYDOCK_REGISTRY_URL sees it. */
const engine = () => ({ providers: [nodeProvider], settings: testSettings() });
const NODES: FixtureNode[] = [
  { id: "alpha", versions: [{ version: "1.1.0" }, { version: "1.0.0", pack: { classes: ["AlphaOld"] } }] },
];

async function plan(paths: EnvPaths) {
  return (await makePlan(paths, engine())).plan;
}

async function planAndApply(paths: EnvPaths) {
  const p = await plan(paths);
  const r = await applyPlan(paths, p, engine());
  return { plan: p, result: r };
}

async function archiveSha(url: string): Promise<string> {
  const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
  return createHash("sha256").update(bytes).digest("hex");
}

Deno.test("node provider: registry node install, hand edits restored, offline reinstall, unmanaged removed", async () => {
  const server = await startRegistryServer(NODES);
  const prev = Deno.env.get("COMFYDOCK_REGISTRY_URL");
  Deno.env.set("COMFYDOCK_REGISTRY_URL", server.url);
  try {
    await withTempDir(async (root) => {
      const sha = await archiveSha(`${server.url}/dl/alpha/1.1.0.zip`);
      server.requests.length = 0;
      const spec: NodeSpec = { source: "registry", version: "1.1.0", sha256: sha };
      const paths = await makeNodeEnv(root, { alpha: spec });

      // 1. install: the download URL comes from /versions/{v}, never from /install.
      const first = await planAndApply(paths);
      assert.deepEqual(first.plan.actions.map((a) => `${a.kind} ${a.address}`), ["create node.alpha"]);
      assert.ok(server.requests.some((r) => r === "GET /nodes/alpha/versions/1.1.0"));
      assert.ok(!server.requests.some((r) => r.includes("/install")));
      const dir = join(paths.customNodes, "alpha");
      const marker = await readMarker(dir);
      assert.equal(marker?.version, "1.1.0");
      assert.equal(marker?.sha256, sha);
      assert.deepEqual(Object.keys(marker!.files).sort(), ["README.md", "__init__.py"]);
      assert.deepEqual(
        Object.keys(marker!.stats ?? {}).sort(),
        ["README.md", "__init__.py"],
        "size+mtime kept",
      );
      assert.deepEqual((await plan(paths)).actions, [], "a second plan after apply is empty");

      // 2. a file edited by hand: planned as an update, restored, the edited copy kept in the trash.
      await Deno.writeTextFile(join(dir, "__init__.py"), "# my local hack\n");
      const edited = await plan(paths);
      assert.equal(edited.actions.length, 1);
      assert.equal(edited.actions[0].kind, "update");
      assert.equal(edited.actions[0].reason, "1 file changed by hand");
      const applied = await applyPlan(paths, edited, engine());
      assert.match(await Deno.readTextFile(join(dir, "__init__.py")), /NODE_CLASS_MAPPINGS/);
      assert.ok(applied.trashDir);
      const trashed = await listFiles(applied.trashDir!);
      const hacked = trashed.find((f) => f.endsWith("__init__.py"))!;
      assert.equal(await Deno.readTextFile(join(applied.trashDir!, hacked)), "# my local hack\n");

      // 3. reinstall with the registry gone: the archive comes from the store, verified by sha256.
      await server.close();
      await Deno.remove(dir, { recursive: true });
      const offline = await planAndApply(paths);
      assert.deepEqual(offline.plan.actions.map((a) => a.kind), ["create"]);
      assert.equal((await readMarker(dir))?.sha256, sha);

      // 4. a folder .cec does not know is removed to the trash (capture would keep it); disabled ones stay.
      await Deno.mkdir(join(paths.customNodes, "stray"));
      await Deno.writeTextFile(join(paths.customNodes, "stray", "__init__.py"), "");
      await Deno.mkdir(join(paths.customNodes, "old.disabled"));
      await Deno.writeTextFile(join(paths.customNodes, "example_node.py.example"), "");
      const stray = await plan(paths);
      assert.deepEqual(stray.actions.map((a) => `${a.kind} ${a.address}`), ["delete node.stray"]);
      assert.equal(
        stray.actions[0].reason,
        "not in .cec (installed by hand); run 'comfydock capture' to keep it",
      );
      assert.ok(stray.notes.some((n) => n.includes("old.disabled is disabled and not in .cec")));
      await applyPlan(paths, stray, engine());
      assert.equal(await exists(join(paths.customNodes, "stray")), false);
      assert.equal(await exists(join(paths.customNodes, "old.disabled")), true);
    });
  } finally {
    if (prev === undefined) Deno.env.delete("COMFYDOCK_REGISTRY_URL");
    else Deno.env.set("COMFYDOCK_REGISTRY_URL", prev);
    await server.close().catch(() => {});
  }
});

Deno.test("node provider: version change is an update; ComfyUI-Manager installs are understood", async () => {
  const server = await startRegistryServer(NODES);
  try {
    await withTempDir(async (root) => {
      const url = (v: string) => `${server.url}/dl/alpha/${v}.zip`;
      const paths = await makeNodeEnv(root, {
        alpha: { source: "registry", version: "1.0.0", download_url: url("1.0.0") },
      });
      await planAndApply(paths);
      assert.match(await Deno.readTextFile(join(paths.customNodes, "alpha", "__init__.py")), /AlphaOld/);
      await writeNodes(paths, {
        alpha: { source: "registry", version: "1.1.0", download_url: url("1.1.0") },
      });
      const up = await planAndApply(paths);
      assert.deepEqual(up.plan.actions.map((a) => `${a.kind} ${a.reason}`), [
        "update installed version 1.0.0, .cec wants 1.1.0",
      ]);
      assert.doesNotMatch(
        await Deno.readTextFile(join(paths.customNodes, "alpha", "__init__.py")),
        /AlphaOld/,
      );

      // A node ComfyUI-Manager installed from the registry (.tracking + the node's pyproject) under its
      // own folder name: matched by id, nothing to do.
      await Deno.remove(join(paths.customNodes, "alpha"), { recursive: true });
      const mgr = join(paths.customNodes, "ComfyUI-Alpha");
      await Deno.mkdir(mgr);
      await Deno.writeTextFile(join(mgr, ".tracking"), "__init__.py\n");
      await Deno.writeTextFile(join(mgr, "pyproject.toml"), '[project]\nname = "alpha"\nversion = "1.1.0"\n');
      assert.deepEqual((await plan(paths)).actions, []);
    });
  } finally {
    await server.close();
  }
});

Deno.test("node provider: git nodes pinned by commit; a dirty checkout is never reset or removed", async () => {
  await withTempDir(async (root) => {
    const repo = await makeNodeRepo(root, "beta-node", [{ tag: "v1" }, { tag: "v2" }]);
    const [v1, v2] = repo.commits;
    const paths = await makeNodeEnv(root, {
      beta: { source: "git", repository: repo.url, commit: v1.sha, ref: "v1" },
    });
    await planAndApply(paths);
    const dir = join(paths.customNodes, "beta");
    assert.equal((await gitIn(dir, "rev-parse", "HEAD")).stdout.trim(), v1.sha);
    assert.equal((await gitIn(dir, "remote", "get-url", "origin")).stdout.trim(), repo.url);
    assert.equal((await gitIn(dir, "status", "--porcelain")).stdout, "", "the marker is excluded from git");
    assert.deepEqual((await plan(paths)).actions, []);

    await writeNodes(paths, { beta: { source: "git", repository: repo.url, commit: v2.sha, ref: "v2" } });
    await Deno.writeTextFile(join(dir, "VERSION"), "my uncommitted work\n");
    const dirty = await plan(paths);
    assert.deepEqual(dirty.actions.map((a) => `${a.kind} ${a.address}: ${a.reason}`), [
      `update node.beta: at commit ${v1.sha.slice(0, 12)}, .cec wants ${
        v2.sha.slice(0, 12)
      }; 1 file changed by hand`,
    ]);
    // Apply without --force leaves the checkout (edits and commit) as it is and says so.
    const kept = await applyPlan(paths, dirty, engine());
    assert.deepEqual(kept.applied, []);
    assert.equal(kept.kept.length, 1);
    assert.match(kept.kept[0].reason, /uncommitted changes \(1 file: VERSION\); to keep the changes/);
    assert.equal(await Deno.readTextFile(join(dir, "VERSION")), "my uncommitted work\n");
    assert.equal((await gitIn(dir, "rev-parse", "HEAD")).stdout.trim(), v1.sha);

    await gitIn(dir, "checkout", "--", "VERSION");
    const up = await planAndApply(paths);
    assert.deepEqual(up.plan.actions.map((a) => a.kind), ["update"]);
    assert.equal((await gitIn(dir, "rev-parse", "HEAD")).stdout.trim(), v2.sha);

    // Removed from .cec while dirty: the plan says so, and apply keeps it.
    await writeNodes(paths, {});
    await Deno.writeTextFile(join(dir, "notes.txt"), "mine\n");
    const removed = await plan(paths);
    assert.deepEqual(removed.actions.map((a) => `${a.kind} ${a.address}: ${a.reason}`), [
      "delete node.beta: removed from .cec; 1 file with uncommitted changes",
    ]);
    assert.equal((await applyPlan(paths, removed, engine())).kept.length, 1);
    assert.equal(await Deno.readTextFile(join(dir, "notes.txt")), "mine\n");
  });
});

Deno.test("node provider: --force moves a dirty checkout to the trash (update and delete); node remove refuses without it", async () => {
  await withTempDir(async (root) => {
    const repo = await makeNodeRepo(root, "gamma-node", [{ tag: "v1" }, { tag: "v2" }]);
    const [v1, v2] = repo.commits;
    const paths = await makeNodeEnv(root, {
      gamma: { source: "git", repository: repo.url, commit: v1.sha, ref: "v1" },
    });
    await planAndApply(paths);
    const dir = join(paths.customNodes, "gamma");
    await writeNodes(paths, { gamma: { source: "git", repository: repo.url, commit: v2.sha, ref: "v2" } });
    await Deno.writeTextFile(join(dir, "VERSION"), "my uncommitted work\n");
    await Deno.writeTextFile(join(dir, "scratch.py"), "# new file\n");

    // Without --force: the action --force would take, with both ways out in its details.
    const plain = await plan(paths);
    assert.deepEqual(plain.actions.map((a) => `${a.kind} ${a.address}`), ["update node.gamma"]);
    assert.match(plain.actions[0].details!.join("\n"), /dev node.*fork.*apply --force/);

    // With --force: the update names the files and the trash; a forced plan is stale for a plain apply.
    const forcedOpts = { ...engine(), force: true };
    const forced = (await makePlan(paths, forcedOpts)).plan;
    assert.deepEqual(forced.actions.map((a) => `${a.kind} ${a.address}`), ["update node.gamma"]);
    assert.match(
      forced.actions[0].reason,
      /2 files changed by hand \(--force: the edited checkout goes to the trash\)/,
    );
    await assert.rejects(() => applyPlan(paths, forced, engine()), (e: CdError) => e.code === "PLAN_STALE");
    assert.equal(await Deno.readTextFile(join(dir, "VERSION")), "my uncommitted work\n");

    const applied = await applyPlan(paths, forced, forcedOpts);
    assert.equal((await gitIn(dir, "rev-parse", "HEAD")).stdout.trim(), v2.sha);
    assert.equal((await gitIn(dir, "status", "--porcelain")).stdout, "");
    const trashed = await listFiles(applied.trashDir!);
    const kept = trashed.find((f) => f.endsWith("scratch.py"))!;
    assert.ok(kept, trashed.join());
    const oldCheckout = join(applied.trashDir!, kept.slice(0, -"/scratch.py".length));
    assert.equal(await Deno.readTextFile(join(oldCheckout, "VERSION")), "my uncommitted work\n");
    assert.equal((await gitIn(oldCheckout, "rev-parse", "HEAD")).stdout.trim(), v1.sha, "the whole checkout");

    // `node remove` of a dirty node refuses before .cec is touched, unless --force.
    const { assertRemovable } = await import("../../providers/nodes/add.ts");
    const spec: NodeSpec = { source: "git", repository: repo.url, commit: v2.sha, ref: "v2" };
    await Deno.writeTextFile(join(dir, "notes.txt"), "mine\n");
    await assert.rejects(
      () => assertRemovable(paths, "gamma", spec, false),
      (e: CdError) => e.code === "NODE_DIRTY" && /notes\.txt/.test(e.message) && /--force/.test(e.hint ?? ""),
    );
    await assertRemovable(paths, "gamma", spec, true);

    // Removed from .cec while dirty: with --force it is a delete that trashes the checkout.
    await writeNodes(paths, {});
    const del = (await makePlan(paths, forcedOpts)).plan;
    assert.deepEqual(del.actions.map((a) => `${a.kind} ${a.address}`), ["delete node.gamma"]);
    assert.match(del.actions[0].reason, /1 file with uncommitted changes/);
    const gone = await applyPlan(paths, del, forcedOpts);
    assert.ok(!(await exists(dir)));
    assert.ok((await listFiles(gone.trashDir!)).some((f) => f.endsWith("notes.txt")));
  });
});

Deno.test("node provider: dev nodes are linked, never copied; a dev node inside custom_nodes is left alone", async () => {
  await withTempDir(async (root) => {
    const src = join(root, "my-dev-node");
    await Deno.mkdir(src);
    await Deno.writeTextFile(join(src, "__init__.py"), "NODE_CLASS_MAPPINGS = {}\n");
    const paths = await makeNodeEnv(root, { mine: { source: "dev", path: src } });
    await Deno.mkdir(join(paths.customNodes, "inplace"));
    await writeNodes(paths, {
      mine: { source: "dev", path: src },
      inplace: { source: "local", path: join(paths.customNodes, "inplace") },
      ghost: { source: "dev", path: join(root, "nowhere") },
    });
    const p = await planAndApply(paths);
    assert.deepEqual(p.plan.actions.map((a) => `${a.kind} ${a.address}`), ["create node.mine"]);
    assert.ok(p.plan.notes.some((n) => n.includes("node.ghost") && n.includes("does not exist")));
    assert.equal(await Deno.realPath(join(paths.customNodes, "mine")), await Deno.realPath(src));
    assert.deepEqual((await plan(paths)).actions, []);
    // Dropping the dev node from .cec removes only the link, never the code.
    await writeNodes(paths, { inplace: { source: "local", path: join(paths.customNodes, "inplace") } });
    await planAndApply(paths);
    assert.equal(await exists(join(paths.customNodes, "mine")), false);
    assert.equal(await Deno.readTextFile(join(src, "__init__.py")), "NODE_CLASS_MAPPINGS = {}\n");
  });
});

Deno.test("node provider: a zip-slip or truncated archive fails the apply and leaves custom_nodes as it was", async () => {
  const server = await startRegistryServer([{
    id: "evil",
    versions: [{ version: "1.0.0", archive: zipSlipArchive() }],
  }]);
  try {
    await withTempDir(async (root) => {
      const paths = await makeNodeEnv(root, {
        evil: { source: "registry", version: "1.0.0", download_url: `${server.url}/dl/evil/1.0.0.zip` },
      });
      await Deno.mkdir(join(paths.customNodes, "evil"));
      await Deno.writeTextFile(join(paths.customNodes, "evil", "keep.txt"), "mine\n");
      const p = await plan(paths);
      await assert.rejects(
        applyPlan(paths, p, engine()),
        (e) => e instanceof CdError && /path traversal/.test(e.message),
      );
      assert.deepEqual(await listFiles(paths.customNodes), ["evil/keep.txt"]);
      assert.equal(await exists(join(root, "evil.py")), false);
      assert.equal(await exists(join(paths.root, "evil.py")), false);

      server.setArchive("evil", "1.0.0", truncate(zipNodePack("evil")));
      const p2 = await plan(paths);
      await assert.rejects(
        applyPlan(paths, p2, engine()),
        (e) => e instanceof CdError && /truncated/.test(e.message),
      );
      assert.deepEqual(await listFiles(paths.customNodes), ["evil/keep.txt"]);
    });
  } finally {
    await server.close();
  }
});
