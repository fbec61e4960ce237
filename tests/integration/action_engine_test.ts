/**
 * The Action's engine runner on a real environment, in process: a checkout's `.cec` is planned where it is
 * (its workflows and its .comfydockignore, not the environment's), and a fork's pull request reaches every
 * provider as untrusted (ObserveContext.untrusted: the packages provider's trial lock runs no build backend);
 * its uv.lock is checked from itself, not from the environment's.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { run } from "../../lib/proc.ts";
import { readActionInputs } from "../../action/inputs.ts";
import { runAction } from "../../action/run.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { testApp, testSettings } from "../../fixtures/app.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { loadProviders } from "../../workspace/providers.ts";
import { applyFromCheckout } from "../../workspace/gitops.ts";
import { CdError } from "../../lib/errors.ts";
import type { Provider } from "../../reconcile/types.ts";
import { readDesired } from "../../reconcile/desired.ts";
import { envPaths, withDesiredCec, workspacePaths } from "../../reconcile/paths.ts";
import { observePackagesDetailed } from "../../providers/packages/provider.ts";
import { findPython } from "../../providers/packages/python.ts";
import { Uv } from "../../providers/packages/uv.ts";
import { buildWheelhouse, STANDARD_WHEELS, wheelhouseUvToml } from "../../fixtures/wheels.ts";

/** A pull request's `.cec` at `cec`: the environment's committed files, plus a tracked workflow `portrait`. */
async function prWithPortrait(envCec: string, cec: string): Promise<void> {
  for (const rel of (await run("git", ["-C", envCec, "ls-files"])).stdout.trim().split("\n")) {
    await Deno.mkdir(join(cec, rel, ".."), { recursive: true });
    await Deno.copyFile(join(envCec, rel), join(cec, rel));
  }
  await Deno.writeTextFile(join(cec, "workflows", "portrait.json"), '{"nodes": []}\n');
  await Deno.writeTextFile(
    join(cec, "pyproject.toml"),
    (await Deno.readTextFile(join(cec, "pyproject.toml"))) +
      '\n[tool.comfydock.workflows.tracked.portrait]\nfile = "workflows/portrait.json"\n',
  );
}

Deno.test("engine runner: a checkout's .cec planned in place, untrusted for a fork, nothing changed", async () => {
  await withTempDir(async (dir) => {
    const { paths } = await createRealEnv(join(dir, "home"), "prod");
    const checkout = join(dir, "repo");
    const cec = join(checkout, "envs", "prod", ".cec");
    // The pull request tracks a workflow and ignores scratch files; the machine has a scratch workflow.
    await prWithPortrait(paths.cec, cec);
    await Deno.writeTextFile(join(cec, ".comfydockignore"), "scratch*.json\n");
    await Deno.mkdir(paths.userWorkflows, { recursive: true });
    await Deno.writeTextFile(join(paths.userWorkflows, "scratch-1.json"), '{"nodes": []}\n');
    const envHead = (await run("git", ["-C", paths.cec, "rev-parse", "HEAD"])).stdout;

    const seen: string[] = [];
    const providers = (await loadProviders()).map((p): Provider => ({
      ...p,
      observe: (desired, ctx) => {
        seen.push(`${p.type}:${ctx.untrusted ?? false}`);
        return p.observe(desired, ctx);
      },
    }));
    const app = testApp(paths.workspace, { providers });
    const planJob = async (fork: boolean) => {
      const event = join(dir, `event-${fork}.json`);
      await Deno.writeTextFile(
        event,
        JSON.stringify({
          pull_request: {
            number: 3,
            head: { sha: "f".repeat(40), repo: { full_name: fork ? "someone/studio" : "acme/studio", fork } },
            base: { repo: { full_name: "acme/studio" } },
          },
        }),
      );
      seen.length = 0;
      return await runAction(
        readActionInputs({
          INPUT_COMMAND: "plan",
          INPUT_ENVIRONMENT: "envs/prod/.cec",
          INPUT_COMMENT: "false",
          GITHUB_WORKSPACE: checkout,
          GITHUB_EVENT_NAME: "pull_request",
          GITHUB_EVENT_PATH: event,
          RUNNER_NAME: "gpu-1",
          RUNNER_TEMP: dir,
        }, checkout),
        { ws: paths.workspace, app },
      );
    };

    const own = await planJob(false);
    assert.equal(own.exitcode, 2, own.summary);
    assert.deepEqual(seen, [
      "comfyui:false",
      "node:false",
      "packages:false",
      "model:false",
      "workflow:false",
    ]);
    const plan = own.envs[0].outcome!.plan!;
    assert.deepEqual(plan.actions.map((a) => `${a.kind} ${a.address}`), ["create workflow.portrait"]);
    assert.ok(
      !plan.notes.some((n) => /untracked workflow/.test(n)),
      "the checkout's .comfydockignore applies, not the environment's",
    );

    const fork = await planJob(true);
    assert.equal(fork.exitcode, 2, fork.summary);
    assert.deepEqual(seen, ["comfyui:true", "node:true", "packages:true", "model:true", "workflow:true"]);

    // Nothing of the environment moved: its .cec, its ComfyUI workflows.
    assert.equal((await run("git", ["-C", paths.cec, "rev-parse", "HEAD"])).stdout, envHead);
    assert.equal((await run("git", ["-C", paths.cec, "status", "--porcelain"])).stdout, "");
    assert.ok(!await Deno.stat(join(paths.userWorkflows, "portrait.json")).then(() => true, () => false));
  });
});

Deno.test("a pull request's uv.lock is checked from itself, not from the environment's lock", async () => {
  await withTempDir(async (dir) => {
    const wheels = await buildWheelhouse(join(dir, "wheels"), STANDARD_WHEELS);
    const ws = workspacePaths(join(dir, "home"));
    const settings = testSettings();
    const uv = await Uv.locate(ws, settings);
    const python = (await findPython(settings.system, "3.12")).path;
    const project = (dep: string) =>
      `[project]\nname = "prod"\nversion = "0.1.0"\nrequires-python = "==3.12.*"\ndependencies = ["${dep}"]\n` +
      `\n[tool.comfydock]\ncomfyui_version = "v0.10.0"\ncomfyui_commit = "${"a".repeat(40)}"\n` +
      `python_version = "3.12"\n${wheelhouseUvToml(wheels)}`;
    const lockIn = async (folder: string, pyproject: string, start: string | null) => {
      await Deno.mkdir(folder, { recursive: true });
      await Deno.writeTextFile(join(folder, "pyproject.toml"), pyproject);
      if (start !== null) await Deno.writeTextFile(join(folder, "uv.lock"), start);
      await uv.lock(folder, { python });
      return await Deno.readTextFile(join(folder, "uv.lock"));
    };
    // The machine locked `alpha>=1` from an older pin (alpha 1.0.0 kept); the pull request locked it afresh.
    const paths = envPaths(ws, "prod");
    const pinned = await lockIn(join(dir, "pin"), project("alpha==1.0.0"), null);
    const envLock = await lockIn(paths.cec, project("alpha>=1"), pinned);
    const checkout = join(dir, "repo", ".cec");
    const prLock = await lockIn(checkout, project("alpha>=1"), null);
    assert.match(envLock, /name = "alpha"\nversion = "1\.0\.0"/);
    assert.match(prLock, /name = "alpha"\nversion = "2\.0\.0"/);

    const desired = await readDesired(withDesiredCec(paths, checkout));
    const { observed, lockCheckedBy } = await observePackagesDetailed(desired, { paths, settings });
    assert.equal(lockCheckedBy, "uv");
    assert.equal(observed.lock, "current", "uv.lock is what uv locks from it: not stale");
    assert.equal(observed.target.alpha, "2.0.0", "the plan installs the pull request's lock");
  });
});

Deno.test("apply from a checkout: a plan that moves between the check and the change is refused and rolled back", async () => {
  await withTempDir(async (dir) => {
    const { paths } = await createRealEnv(join(dir, "home"), "prod");
    const cec = join(dir, "repo", "envs", "prod", ".cec");
    await prWithPortrait(paths.cec, cec);
    const head = (await run("git", ["-C", paths.cec, "rev-parse", "HEAD"])).stdout;
    // Someone installs a node by hand right after the plan was checked (the nodes provider's second look).
    let looks = 0;
    const providers = (await loadProviders()).map((p): Provider =>
      p.type !== "node" ? p : {
        ...p,
        observe: async (desired, ctx) => {
          if (++looks === 2) await Deno.mkdir(join(paths.customNodes, "sneaked-in"));
          return await p.observe(desired, ctx);
        },
      }
    );
    const app = testApp(paths.workspace, { providers });
    const checkout = { dir: cec, label: "envs/prod/.cec", revision: "acme/studio@" + "1".repeat(40) };
    await assert.rejects(
      () => applyFromCheckout(app, paths, checkout, { locked: true }),
      (e: unknown) =>
        e instanceof CdError && e.code === "PLAN_CHANGED" &&
        /node\.sneaked-in: delete .* is not in the plan checked before applying/.test(e.message),
    );
    assert.equal(
      (await run("git", ["-C", paths.cec, "rev-parse", "HEAD"])).stdout,
      head,
      ".cec not committed",
    );
    assert.equal(
      (await run("git", ["-C", paths.cec, "status", "--porcelain"])).stdout,
      "",
      ".cec files restored",
    );
    assert.ok(!await Deno.stat(join(paths.userWorkflows, "portrait.json")).then(() => true, () => false));
    // The next run checks and applies the plan as it now is.
    const r = await applyFromCheckout(app, paths, checkout, { locked: true });
    assert.deepEqual(r.applied.map((a) => `${a.kind} ${a.address}`).sort(), [
      "create workflow.portrait",
      "delete node.sneaked-in",
    ]);
    assert.match(
      (await run("git", ["-C", paths.cec, "log", "-1", "--format=%s"])).stdout,
      /^apply envs\/prod\/\.cec from acme\/studio@1{40}$/m,
    );
  });
});
