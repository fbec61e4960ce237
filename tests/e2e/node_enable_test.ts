/**
 * Node enable/disable (issue #20): `node disable ID` / `node enable ID` record `enabled = false` in `.cec` and
 * apply it as ComfyUI-Manager does (a folder moves to custom_nodes/.disabled/<dir>, a single file becomes
 * <file>.disabled; ComfyUI's loader skips every entry whose name ends with `.disabled`), visible in plan and
 * status; disabled nodes .cec does not know are recorded by capture as disabled. The CLI as a user types it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse } from "smol-toml";
import { cli, jsonData } from "../../fixtures/cli.ts";
import { gitIn, makeNodeRepo } from "../../fixtures/node_git.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { deadUrl } from "../../fixtures/registry_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { exists } from "../../lib/fsx.ts";

type Nodes = Record<string, Record<string, unknown>>;

/** What ComfyUI would load from custom_nodes (its loader's rule: nodes.py init_external_custom_nodes). */
async function loaded(customNodes: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(customNodes)) {
    if (e.name === "__pycache__" || e.name.endsWith(".disabled")) continue;
    if (e.isFile && !e.name.endsWith(".py")) continue;
    out.push(e.name);
  }
  return out.sort();
}

Deno.test("node disable / enable: recorded in .cec, applied the Manager's way, shown in plan and status", async () => {
  await withTempDir(async (dir) => {
    const { paths, env: base } = await createRealEnv(join(dir, "home"), "e");
    const env = { ...base, COMFYDOCK_REGISTRY_URL: await deadUrl(), COMFYDOCK_HTTP_RETRY_BASE_MS: "1" };
    const run = (...args: string[]) => cli(args, { env });
    const nodes = async () =>
      (parse(await Deno.readTextFile(paths.pyproject)) as { tool: { comfydock: { nodes: Nodes } } }).tool
        .comfydock.nodes;
    const repo = await makeNodeRepo(dir, "kappa-pack", [{ tag: "v1" }]);
    let r = await run("node", "add", `${repo.url}@v1`, "--yes");
    assert.equal(r.code, 0, r.stderr);
    await Deno.writeTextFile(join(paths.customNodes, "solo.py"), "NODE_CLASS_MAPPINGS = {}\n");
    assert.equal((await run("capture")).code, 0);
    assert.deepEqual(await loaded(paths.customNodes), ["kappa-pack", "solo.py", "websocket_image_save.py"]);

    // Disable: the plan says so, apply moves the folder and the file where ComfyUI does not load them.
    r = await run("node", "disable", "kappa-pack", "--no-apply");
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await nodes())["kappa-pack"].enabled, false);
    r = await run("plan");
    assert.match(
      r.stdout,
      /~ node\.kappa-pack will be updated: disable\n\s+move custom_nodes\/kappa-pack to custom_nodes\/\.disabled\/kappa-pack/,
    );
    r = await run("status");
    assert.match(r.stdout, /✗ node\.kappa-pack +disable/);
    r = await run("apply", "--yes");
    assert.equal(r.code, 0, r.stderr);
    r = await run("node", "disable", "solo", "--yes");
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await loaded(paths.customNodes), ["websocket_image_save.py"]);
    assert.ok(await exists(join(paths.customNodes, ".disabled", "kappa-pack", "__init__.py")));
    assert.ok(await exists(join(paths.customNodes, "solo.py.disabled")));
    assert.equal(
      (await gitIn(join(paths.customNodes, ".disabled", "kappa-pack"), "rev-parse", "HEAD")).stdout.trim(),
      repo.commits[0].sha,
    );
    assert.equal(
      (await run("plan", "--detailed-exitcode")).code,
      0,
      "a disabled node in its place is in sync",
    );
    r = await run("status", "--check");
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /✓ node\.kappa-pack +in sync/);
    r = await run("node", "disable", "kappa-pack");
    assert.equal(r.code, 0);
    assert.match(r.stdout, /kappa-pack is already disabled/);

    // A disabled node that is missing is installed straight into its disabled place.
    await Deno.remove(join(paths.customNodes, ".disabled", "kappa-pack"), { recursive: true });
    r = await run("plan");
    assert.match(r.stdout, /\+ node\.kappa-pack will be created: not installed; disable/);
    assert.equal((await run("apply", "--yes")).code, 0);
    assert.ok(await exists(join(paths.customNodes, ".disabled", "kappa-pack", "__init__.py")));
    assert.deepEqual(await loaded(paths.customNodes), ["websocket_image_save.py"]);

    // Enable: back where ComfyUI loads them; the key leaves .cec.
    r = await run("node", "enable", "kappa-pack", "--yes");
    assert.equal(r.code, 0, r.stderr);
    r = await run("node", "enable", "solo", "--yes");
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await nodes())["kappa-pack"].enabled, undefined);
    assert.deepEqual(await loaded(paths.customNodes), ["kappa-pack", "solo.py", "websocket_image_save.py"]);
    assert.equal((await run("plan", "--detailed-exitcode")).code, 0);

    // Unknown ids and nodes used in place are refused with what to do; .cec is left as it was.
    const before = await Deno.readTextFile(paths.pyproject);
    r = await run("node", "disable", "kappa-pak");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /node 'kappa-pak' is not in \.cec/);
    await Deno.mkdir(join(paths.customNodes, "mine"));
    await Deno.writeTextFile(join(paths.customNodes, "mine", "__init__.py"), "NODE_CLASS_MAPPINGS = {}\n");
    assert.equal((await run("capture")).code, 0);
    const captured = await Deno.readTextFile(paths.pyproject);
    r = await run("node", "disable", "mine");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /'mine' is a local node used in place/);
    assert.equal(await Deno.readTextFile(paths.pyproject), captured);
    assert.notEqual(before, captured);
  });
});

Deno.test("capture: disabled nodes .cec does not know are recorded as disabled, wherever the Manager put them", async () => {
  await withTempDir(async (dir) => {
    const { paths, env } = await createRealEnv(join(dir, "home"), "e");
    const run = (...args: string[]) => cli(args, { env });
    const repo = await makeNodeRepo(dir, "lambda-pack", [{ tag: "v1" }]);
    // The current Manager's place (with its version suffix), the older Manager's, and a single file.
    await gitIn(
      dir,
      "clone",
      "--quiet",
      repo.path,
      join(paths.customNodes, ".disabled", "lambda-pack@nightly"),
    );
    await Deno.mkdir(join(paths.customNodes, "old-tool.disabled"));
    await Deno.writeTextFile(join(paths.customNodes, "old-tool.disabled", "__init__.py"), "");
    await Deno.writeTextFile(join(paths.customNodes, "legacy.py.disabled"), "NODE_CLASS_MAPPINGS = {}\n");

    let r = await run("plan", "--json");
    const notes = jsonData(r).notes.join("\n");
    assert.match(notes, /custom_nodes\/\.disabled\/lambda-pack@nightly is disabled and not in \.cec/);
    assert.match(notes, /custom_nodes\/old-tool\.disabled is disabled and not in \.cec/);
    assert.match(notes, /custom_nodes\/legacy\.py\.disabled is disabled and not in \.cec/);
    assert.equal(jsonData(r).actions.length, 0, "disabled nodes are never removed");

    r = await run("capture", "--json");
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(jsonData(r).nodes.sort(), ["lambda-pack", "legacy", "old-tool"]);
    const nodes =
      (parse(await Deno.readTextFile(paths.pyproject)) as { tool: { comfydock: { nodes: Nodes } } })
        .tool.comfydock.nodes;
    assert.deepEqual(
      Object.fromEntries(Object.entries(nodes).map(([id, n]) => [id, `${n.source} enabled=${n.enabled}`])),
      {
        "lambda-pack": "git enabled=false",
        "old-tool": "local enabled=false",
        legacy: "file enabled=false",
      },
    );
    r = await run("plan", "--json");
    assert.deepEqual(jsonData(r).actions, []);
    assert.deepEqual(jsonData(r).notes, []);
  });
});
