/**
 * Environment creation speed (seed target: < 30 s). The second environment comes from the warm ComfyUI
 * mirror and the warm uv cache, so it measures ComfyDock's own work (clone from the mirror, checkout,
 * pyproject, uv lock/venv/sync, .cec commit, atomic rename), not package downloads. Uses the fixture
 * ComfyUI repository and local wheels (no network).
 */
import { join } from "node:path";
import { buildComfyUIRepo } from "../fixtures/comfyui_repo.ts";
import { buildWheelhouse, STANDARD_WHEELS, wheelhouseUvConfig } from "../fixtures/wheels.ts";
import { testPython, useLocalUv } from "../fixtures/tools.ts";
import * as git from "../providers/git/git.ts";
import { ui } from "../lib/ui.ts";
import { createEnvironment } from "../workspace/create.ts";
import { envPaths, workspacePaths } from "../reconcile/paths.ts";
import { initWorkspace } from "../workspace/workspace.ts";
import { loadProviders } from "../workspace/providers.ts";
import { testApp, testSettings } from "../fixtures/app.ts";
import { record } from "./stats.ts";

const FILES = 1000;
const MB = 30;

/** A release as big as ComfyUI's tracked tree (~1,000 files, tens of MB), tagged v1.0.0. */
async function addComfyUISizedRelease(dir: string): Promise<void> {
  const chunk = "x".repeat(((MB * 1024 * 1024) / FILES) | 0);
  for (let i = 0; i < FILES; i++) {
    const sub = join(dir, "comfy", `pkg${i % 40}`);
    await Deno.mkdir(sub, { recursive: true });
    await Deno.writeTextFile(join(sub, `mod${i}.py`), `# ${i}\n${chunk}${i}\n`);
  }
  await git.commit(dir, "big");
  await git.git(dir, ["tag", "v1.0.0"]);
}

export async function benchEnv(): Promise<string[]> {
  const root = await Deno.makeTempDir({ prefix: "comfydock-bench-env-" });
  const quiet = ui.json;
  ui.json = true; // no progress lines in the benchmark output
  await useLocalUv();
  try {
    const repo = await buildComfyUIRepo(join(root, "upstream"));
    await addComfyUISizedRelease(repo.url);
    const wheels = await buildWheelhouse(join(root, "wheels"), STANDARD_WHEELS);
    const ws = workspacePaths(join(root, "ws"));
    await initWorkspace(ws.root);
    const opts = {
      comfyuiUrl: repo.url,
      comfyui: "v1.0.0",
      python: (await testPython()).minor,
      torchBackend: "cpu",
      uvSettings: wheelhouseUvConfig(wheels),
    };
    const time = async (name: string) => {
      const t = performance.now();
      await createEnvironment(testApp(ws), name, opts);
      return (performance.now() - t) / 1000;
    };
    const cold = await time("first");
    const warm: number[] = [];
    for (let i = 0; i < 3; i++) warm.push(await time(`warm-${i}`));
    warm.sort((a, b) => a - b);
    const median = warm[1];
    // `comfydock run` plans before starting ComfyUI (drift warning): what that check costs.
    const { makePlan } = await import("../reconcile/engine.ts");
    const engine = { providers: await loadProviders(), settings: testSettings() };
    const checks: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      await makePlan(envPaths(ws, "first"), engine);
      checks.push(performance.now() - t);
    }
    checks.sort((a, b) => a - b);
    record("env.warm_create_s", median);
    return [
      `env create, cold mirror + cold uv cache (ComfyUI-sized tree: ${FILES} files, ${MB} MB; 2 requirements): ${
        cold.toFixed(2)
      } s`,
      `env create, second environment from warm mirror + warm uv cache: median ${median.toFixed(2)} s of 3 ` +
      `(min ${warm[0].toFixed(2)}, max ${warm[2].toFixed(2)}); seed target 30 s -> ${
        (30 / median).toFixed(0)
      }x under`,
      `run's drift check (full plan of a fresh environment, in process): median ${
        checks[2].toFixed(0)
      } ms of 5`,
    ];
  } finally {
    ui.json = quiet;
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) { for (const line of await benchEnv()) console.log(line); }
