/**
 * Zero data loss across every resource kind: a plan with node, package, model and workflow actions is
 * applied with a hard crash (`COMFYDOCK_FAULT=N:exit`, no cleanup) at every action index N. After each
 * crash `comfydock repair` must bring the environment back fully old — same files, same venv, same plan, no
 * half node folder, no `.part` under a model's name, every user file intact — and a final apply must bring
 * it fully new with an empty plan after it.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join, relative } from "node:path";
import { cli, jsonData } from "../../fixtures/cli.ts";
import { ModelServer } from "../../fixtures/model_server.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { startRegistryServer } from "../../fixtures/registry_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { findSitePackages, readInstalled } from "../../providers/packages/distinfo.ts";
import type { Plan } from "../../reconcile/types.ts";
import type { EnvPaths } from "../../reconcile/paths.ts";

/** Every file under dir: content hash (or link target), skipping `skip` top-level names. */
async function tree(dir: string, skip: string[] = [], base = dir): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let entries: Deno.DirEntry[] = [];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return out;
    throw e;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    const rel = relative(base, p);
    if (skip.includes(rel)) continue;
    if (e.isSymlink) out[rel] = `-> ${await Deno.readLink(p)}`;
    else if (e.isDirectory) Object.assign(out, await tree(p, skip, base));
    else out[rel] = createHash("sha256").update(await Deno.readFile(p)).digest("hex");
  }
  return out;
}

async function snapshot(paths: EnvPaths) {
  return {
    comfyui: await tree(paths.comfyui, [".git"]),
    cec: await tree(paths.cec, [".git"]),
    venv: (await readInstalled(await findSitePackages(paths.venv))).dists,
  };
}

const addresses = (p: Plan) => p.actions.map((a) => `${a.kind} ${a.address}`);

Deno.test("a crash at any action of a mixed plan is rolled back by repair; then apply converges", async () => {
  const registry = await startRegistryServer([
    {
      id: "alpha-pack",
      versions: [
        { version: "1.2.0", pack: { classes: ["AlphaTwo"], requirements: ["delta>=0.5"] } },
        { version: "1.1.0", pack: { classes: ["AlphaOne"], requirements: ["gamma"] } },
      ],
    },
    {
      id: "beta-pack",
      versions: [{ version: "0.3.0", pack: { classes: ["BetaNode"], requirements: ["epsilon"] } }],
    },
  ]);
  const models = ModelServer.start();
  try {
    await withTempDir(async (dir) => {
      const { paths, env: base } = await createRealEnv(join(dir, "home"), "e");
      models.hf("org/m1", "m1.safetensors", new Uint8Array(64 * 1024).fill(1));
      models.hf("org/m2", "m2.safetensors", new Uint8Array(96 * 1024).map((_, i) => i % 7));
      const env = { ...base, COMFYDOCK_REGISTRY_URL: registry.url, HF_ENDPOINT: models.url };
      const ok = async (...args: string[]) => {
        const r = await cli(args, { env });
        assert.equal(r.code, 0, `comfydock ${args.join(" ")}\n${r.stderr}`);
        return r;
      };

      // The old state: one node, one model, one tracked workflow, and the user's own files.
      await ok("node", "add", "alpha-pack@1.1.0", "--yes");
      await ok("model", "add", "hf:org/m1/m1.safetensors", "--category", "checkpoints", "--yes");
      await Deno.mkdir(paths.userWorkflows, { recursive: true });
      const wf = {
        nodes: [{ id: 1, type: "AlphaOne", mode: 0, properties: { cnr_id: "alpha-pack" } }],
        links: [],
      };
      await Deno.writeTextFile(join(paths.userWorkflows, "w.json"), JSON.stringify(wf));
      await ok("workflow", "track", "w", "--yes");
      for (
        const [rel, text] of [["input/photo.png", "png"], ["output/result.png", "out"], [
          "user/default/notes.txt",
          "mine",
        ]]
      ) {
        await Deno.mkdir(join(paths.comfyui, rel, ".."), { recursive: true });
        await Deno.writeTextFile(join(paths.comfyui, rel), text);
      }

      // The change: .cec moves alpha to 1.2.0, adds beta and a second model; on disk, a stray node appears and
      // the workflow is edited in .cec.
      await ok("node", "update", "alpha-pack", "--version", "1.2.0", "--no-apply");
      await ok("node", "add", "beta-pack", "--no-apply");
      await ok("model", "add", "hf:org/m2/m2.safetensors", "--category", "loras", "--no-apply");
      await Deno.writeTextFile(
        join(paths.cecWorkflows, "w.json"),
        JSON.stringify({ ...wf, extra: { v: 2 } }),
      );
      await ok("commit", "-m", "edit workflow w in .cec");
      await Deno.mkdir(join(paths.customNodes, "stray"));
      await Deno.writeTextFile(join(paths.customNodes, "stray", "__init__.py"), "# by hand\n");

      const plan: Plan = jsonData(await ok("plan", "--json"));
      const kinds = new Set(plan.actions.map((a) => a.type));
      assert.ok(plan.actions.length >= 6, addresses(plan).join(", "));
      for (const k of ["node", "packages", "model", "workflow"]) {
        assert.ok(kinds.has(k as never), `plan has ${k}`);
      }
      const before = await snapshot(paths);

      for (let n = 0; n < plan.actions.length; n++) {
        const crash = await cli(["apply", "--yes"], { env: { ...env, COMFYDOCK_FAULT: `${n}:exit` } });
        assert.equal(
          crash.code,
          99,
          `apply with a crash at ${n} (${plan.actions[n].address}): ${crash.stderr}`,
        );
        const repair = await ok("repair");
        assert.match(repair.stdout, /rolled back an interrupted apply/);
        const after = await snapshot(paths);
        assert.deepEqual(
          after.comfyui,
          before.comfyui,
          `ComfyUI/ after a crash at ${n} (${plan.actions[n].address})`,
        );
        assert.deepEqual(after.cec, before.cec, `.cec after a crash at ${n}`);
        assert.deepEqual(after.venv, before.venv, `venv after a crash at ${n}`);
        assert.ok(!Object.keys(after.comfyui).some((f) => f.endsWith(".part")), "no .part file in ComfyUI");
        const again: Plan = jsonData(await ok("plan", "--json"));
        assert.deepEqual(addresses(again), addresses(plan), `the same plan after a crash at ${n}`);
      }

      await ok("apply", "--yes");
      const done = await cli(["plan", "--detailed-exitcode"], { env });
      assert.equal(done.code, 0, done.stdout + done.stderr);
      for (
        const [rel, text] of [["input/photo.png", "png"], ["output/result.png", "out"], [
          "user/default/notes.txt",
          "mine",
        ]]
      ) {
        assert.equal(await Deno.readTextFile(join(paths.comfyui, rel)), text, `${rel} kept`);
      }
      const installed = (await readInstalled(await findSitePackages(paths.venv))).dists;
      assert.ok("delta" in installed && "epsilon" in installed, JSON.stringify(installed));
    });
  } finally {
    await models.close();
    await registry.close();
  }
});
