/**
 * `plan` on a no-op environment of realistic size (issue 11): 50 node packs, 500 models, 200 tracked
 * workflows, generated here and converged with the real CLI; then plan is timed in process (the engine
 * alone) and as the CLI (what CI and the Action pay, Deno start-up included), next to `status`.
 */
import { median, record } from "./stats.ts";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ModelServer } from "../fixtures/model_server.ts";
import { createRealEnv } from "../fixtures/real_env.ts";
import { startRegistryServer } from "../fixtures/registry_server.ts";
import { makePlan } from "../reconcile/engine.ts";
import type { TomlEdit } from "../reconcile/pyproject_edit.ts";
import { loadProviders } from "../workspace/providers.ts";
import { withSession } from "../workspace/session.ts";
import { testApp, testSettings } from "../fixtures/app.ts";
import { benchStartup } from "./startup.ts";

const NODES = 50;
const MODELS = 500;
const WORKFLOWS = 200;
const MAIN = fileURLToPath(new URL("../cmd/main.ts", import.meta.url));

async function cli(args: string[], env: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    env,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (out.code !== 0) throw new Error(`comfydock ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return performance.now() - t0;
}

export async function benchPlan(): Promise<string[]> {
  const root = await Deno.makeTempDir({ prefix: "comfydock-bench-plan-" });
  const registry = await startRegistryServer(
    Array.from({ length: NODES }, (_, i) => ({
      id: `pack-${i}`,
      versions: [{ version: "1.0.0", pack: { classes: [`Pack${i}Node`] } }],
    })),
    { maxPageSize: 100 },
  );
  const models = ModelServer.start();
  try {
    const { paths, env: base } = await createRealEnv(join(root, "home"), "big");
    const env = { ...base, COMFYDOCK_REGISTRY_URL: registry.url, PATH: Deno.env.get("PATH") ?? "" };

    // Models live in the user's own folder; scanning indexes them, pyproject names each by hash.
    const userModels = join(root, "my-models", "loras");
    await Deno.mkdir(userModels, { recursive: true });
    for (let i = 0; i < MODELS; i++) {
      await Deno.writeTextFile(join(userModels, `lora-${i}.safetensors`), `model ${i} `.repeat(64));
    }
    const t0 = performance.now();
    await cli(["node", "add", ...Array.from({ length: NODES }, (_, i) => `pack-${i}`), "--no-apply"], env);
    await cli(["model", "scan", "--full", join(root, "my-models")], env);
    const { ModelIndex } = await import("../providers/models/index_db.ts");
    const edits: TomlEdit[] = [];
    {
      using index = ModelIndex.open(paths.workspace.modelIndexDb);
      for (let i = 0; i < MODELS; i++) {
        const info = index.getModelInfo(join(userModels, `lora-${i}.safetensors`));
        const sha = info?.hashes.sha256;
        if (!info || !sha) throw new Error(`model ${i} was not indexed with a sha256`);
        edits.push({
          path: ["tool", "comfydock", "models", `lora-${i}`],
          value: {
            hash: `sha256:${sha}`,
            sha256: sha,
            size: info.size,
            category: "loras",
            filename: `lora-${i}.safetensors`,
          },
        });
      }
    }
    await withSession(
      testApp(paths.workspace),
      paths,
      "bench",
      "write",
      (s) => s.change({ message: `add ${MODELS} models`, apply: false, edit: () => ({ edits }) }),
    );
    await Deno.mkdir(paths.userWorkflows, { recursive: true });
    for (let i = 0; i < WORKFLOWS; i++) {
      const wf = {
        nodes: [
          { id: 1, type: `Pack${i % NODES}Node`, mode: 0, properties: { cnr_id: `pack-${i % NODES}` } },
          { id: 2, type: "LoraLoader", mode: 0, widgets_values: [`lora-${i}.safetensors`, 1, 1] },
        ],
        links: [],
      };
      await Deno.writeTextFile(join(paths.userWorkflows, `wf-${i}.json`), JSON.stringify(wf));
    }
    await cli(["workflow", "track", "--all", "--no-apply"], env);
    await cli(["apply", "--yes"], env);
    const built = (performance.now() - t0) / 1000;

    const inProcess: number[] = [];
    let actions = -1;
    const prevHome = Deno.env.get("COMFYDOCK_HOME");
    const engine = { providers: await loadProviders(), settings: testSettings() };
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      const { plan } = await makePlan(paths, engine);
      inProcess.push(performance.now() - t);
      actions = plan.actions.length;
    }
    if (prevHome !== undefined) Deno.env.set("COMFYDOCK_HOME", prevHome);
    const viaCli: number[] = [];
    for (let i = 0; i < 5; i++) viaCli.push(await cli(["plan", "--detailed-exitcode"], env));
    const startup = await benchStartup(env);
    record("plan.noop_in_process_ms", median(inProcess));
    record("plan.noop_cli_ms", median(viaCli));
    return [
      `plan: generated ${NODES} nodes, ${MODELS} models, ${WORKFLOWS} workflows and converged them in ${
        built.toFixed(1)
      } s`,
      `plan: no-op plan (${actions} actions) in process ${median(inProcess).toFixed(0)} ms, ` +
      `as the CLI ${median(viaCli).toFixed(0)} ms (median of 5)`,
      ...startup,
    ];
  } finally {
    await models.close();
    await registry.close();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) console.log((await benchPlan()).join("\n"));
