/**
 * The Action on a self-hosted runner: an apply job that creates the environment (fresh machine), then apply
 * jobs of the same commit after actions/checkout's clean (`git clean -ffdx && git reset --hard`), which must
 * find nothing to do. Each job is `comfydock action` as a subprocess, as the composite step runs it, against
 * the local GitHub API server, the fixture ComfyUI and wheelhouse (no network). The no-op figure is mostly
 * process start-up plus one plan.
 */
import { startGitHubServer } from "../fixtures/github_server.ts";
import { createGitOpsRepo, createRunner } from "../fixtures/runner.ts";
import { median, record } from "./stats.ts";

export async function benchAction(): Promise<string[]> {
  const root = await Deno.makeTempDir({ prefix: "comfydock-bench-action-" });
  if (!Deno.env.get("COMFYDOCK_UV")) Deno.env.set("COMFYDOCK_UV", "/root/.pyenv/versions/3.11.7/bin/uv");
  const server = startGitHubServer();
  try {
    const repo = await createGitOpsRepo(root, server);
    const runner = createRunner(root, "gpu-1", repo);
    const sha = await repo.mainSha();
    const apply = async () => {
      const job = await runner.job({ name: "push", sha }, { command: "apply", environment: repo.cecRel });
      if (job.code !== 0) throw new Error(`apply job failed: ${job.stdout}${job.stderr}`);
      return job;
    };
    const first = await apply();
    const noop: number[] = [];
    for (let i = 0; i < 5; i++) {
      const job = await apply();
      if (job.outputs.changes !== "false") throw new Error("the second apply changed something");
      noop.push(job.ms);
    }
    const second = median(noop);
    record("action.first_apply_s", first.ms / 1000);
    record("action.noop_apply_s", second / 1000);
    return [
      `Action apply job creating the environment (fresh runner): ${(first.ms / 1000).toFixed(2)} s`,
      `Action apply job after a checkout clean, nothing to do: ${(second / 1000).toFixed(2)} s ` +
      `(median of 5; ${(first.ms / second).toFixed(1)}x faster than the first)`,
    ];
  } finally {
    await server.close();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}
