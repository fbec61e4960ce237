/** The reconciler's commands: status, plan, apply, capture, repair, drift, commit, log, rollback, sync, validate. */
import type { Command } from "@commander-js/extra-typings";
import type { EnvPaths } from "../workspace/paths.ts";
import type { Plan } from "../reconcile/types.ts";
import { confirm, globals, resolveEnv, workspace } from "./context.ts";
import { info, paint, printJson, println, step, ui } from "../lib/ui.ts";

/** Exit code 2 = "changes present" (plan --detailed-exitcode, status --check, drift). */
const CHANGES = 2;
const FORCE_HELP =
  "also replace what is normally kept (a git node with uncommitted changes); it goes to the trash";

async function showPlan(
  paths: EnvPaths,
  opts: { targets?: string[]; out?: string; force?: boolean; quietJson?: boolean },
): Promise<Plan> {
  const { makePlan } = await import("../reconcile/engine.ts");
  const { renderPlan } = await import("../reconcile/render.ts");
  const { plan } = await makePlan(paths, { targets: opts.targets, log: step, force: opts.force });
  if (opts.out) {
    const { writeFileAtomic } = await import("../lib/fsx.ts");
    await writeFileAtomic(opts.out, JSON.stringify(plan, null, 2) + "\n");
  }
  if (ui.json) {
    if (!opts.quietJson) printJson(plan);
  } else {
    println(renderPlan(plan, paint));
    if (opts.out) {
      println(`\nSaved the plan to ${opts.out}. Apply exactly this plan with 'comfydock apply ${opts.out}'.`);
    }
  }
  return plan;
}

/** Plans, asks (unless --yes or a saved plan), applies, and reports. */
export async function planAndApply(paths: EnvPaths, planFile?: string, force?: boolean): Promise<void> {
  const { applyPlan } = await import("../reconcile/engine.ts");
  const { summarize } = await import("../reconcile/render.ts");
  let plan: Plan;
  if (planFile) {
    const { readPlanFile } = await import("../reconcile/plan_file.ts");
    plan = await readPlanFile(planFile);
  } else {
    // In --json mode the plan goes into the one result object below, not out on its own.
    plan = await showPlan(paths, { force, quietJson: true });
    if (plan.actions.length === 0) {
      if (ui.json) printJson({ plan, applied: [], summary: summarize([]), trash: null });
      return;
    }
    if (!await confirm(`Apply these ${plan.actions.length} action(s) to '${paths.name}'?`)) {
      info("Apply cancelled; nothing was changed.");
      return;
    }
  }
  const { withApplyLog } = await import("../workspace/env_log.ts");
  const result = await withApplyLog(
    paths,
    plan,
    () => applyPlan(paths, plan, { log: (l) => step(l), force }),
  );
  const s = summarize(result.applied);
  if (ui.json) printJson({ plan, applied: result.applied, summary: s, trash: result.trashDir });
  else {
    println(paint("green", `Apply complete! ${s.add} added, ${s.change} changed, ${s.remove} removed.`));
    if (result.trashDir) println(`Replaced or removed files were kept in ${result.trashDir}`);
  }
}

export function registerReconcileCommands(program: Command): void {
  program.command("status").description("sync state of each resource").option("--check", "exit 2 on drift")
    .action(async (opts, cmd) => {
      const paths = await resolveEnv(globals(cmd).env);
      const { makePlan } = await import("../reconcile/engine.ts");
      const { resourceStatus } = await import("../reconcile/status.ts");
      const { plan, desired } = await makePlan(paths, { log: step });
      const rows = resourceStatus(desired, plan);
      const drifted = plan.actions.length > 0 || plan.notes.length > 0;
      if (ui.json) {
        printJson({ environment: paths.name, in_sync: !drifted, resources: rows, notes: plan.notes });
      } else {
        println(`Environment '${paths.name}':`);
        for (const r of rows) {
          const mark = r.state === "in-sync"
            ? paint("green", "✓")
            : paint("yellow", r.state === "note" ? "!" : "✗");
          println(`  ${mark} ${r.address.padEnd(40)} ${r.state === "in-sync" ? "in sync" : r.reason}`);
        }
        const listed = new Set(rows.map((r) => r.address));
        for (const n of plan.notes) if (!listed.has(n.split(":")[0])) println(`  ! ${n}`);
        if (!drifted) println("\nIn sync with .cec.");
        else if (plan.actions.length === 0) {
          println("\nNothing for apply to do; the findings marked ! need you.");
        } else println("\nRun 'comfydock plan' to see the changes, 'comfydock apply' to make them.");
      }
      if (opts.check && drifted) Deno.exitCode = CHANGES;
    });
  program.command("plan").description("show what apply would change to make disk match .cec")
    .option("--out <file>", "save the plan for 'apply FILE'")
    .option("--detailed-exitcode", "exit 0 no changes, 1 error, 2 changes")
    .option("--target <address...>", "only these resources (node.x, model.y, ...)")
    .option("--force", FORCE_HELP)
    .action(async (opts, cmd) => {
      const paths = await resolveEnv(globals(cmd).env);
      const plan = await showPlan(paths, { targets: opts.target, out: opts.out, force: opts.force });
      if (opts.detailedExitcode && plan.actions.length > 0) Deno.exitCode = CHANGES;
    });
  program.command("apply").description("make disk match .cec (asks first unless --yes or a plan file)")
    .argument("[planfile]", "a plan saved with 'plan --out' (applied exactly, or refused if stale)")
    .option("--force", FORCE_HELP)
    .action(async (planfile, opts, cmd) => {
      await planAndApply(await resolveEnv(globals(cmd).env), planfile, opts.force);
    });
  program.command("sync").description("the seed's name for apply (--dry-run = plan)")
    .option("--dry-run", "only show the plan").action(async (opts, cmd) => {
      const paths = await resolveEnv(globals(cmd).env);
      if (opts.dryRun) await showPlan(paths, {});
      else await planAndApply(paths);
    });
  program.command("repair").description("finish or roll back an interrupted apply")
    .option("--force-unlock", "break the lock even if its holder looks alive").action(async (opts, cmd) => {
      const paths = await resolveEnv(globals(cmd).env);
      const { recover } = await import("../reconcile/engine.ts");
      const what = await recover(paths, { forceUnlock: opts.forceUnlock });
      if (ui.json) printJson({ recovered: what });
      else println(what ?? "Nothing to repair: no interrupted apply and no lock.");
    });
  program.command("capture").description("write changes made on disk back into .cec")
    .action(async (_o, cmd) => {
      const paths = await resolveEnv(globals(cmd).env);
      const { captureEnvironment } = await import("../reconcile/capture.ts");
      const s = await captureEnvironment(paths);
      if (ui.json) printJson(s);
      else {
        if (s.workflows.length + s.nodes.length + s.packages.length === 0) {
          println("Nothing to capture: .cec already describes the disk.");
        }
        for (const w of s.workflows) println(`  captured workflow ${w}`);
        for (const n of s.nodes) println(`  captured node ${n}`);
        for (const p of s.packages) println(`  captured package ${p} (dependency group 'user')`);
        for (const k of s.skipped) println(`  ! skipped ${k}`);
        if (s.commit) println(`Committed .cec ${s.commit.slice(0, 12)}. Review it with 'comfydock log'.`);
      }
    });
  program.command("drift").description("report everything that differs from .cec (exit 2 on drift)")
    .action(async (_o, cmd) => {
      const paths = await resolveEnv(globals(cmd).env);
      const { makePlan } = await import("../reconcile/engine.ts");
      const { renderDriftReport, summarizeDrift } = await import("../providers/github/drift_report.ts");
      const { plan } = await makePlan(paths, { log: step });
      if (ui.json) printJson({ ...summarizeDrift(plan), plan });
      else println(renderDriftReport(plan));
      if (plan.actions.length > 0 || plan.notes.length > 0) Deno.exitCode = CHANGES;
    });
  program.command("commit").description("commit .cec").requiredOption("-m, --message <msg>")
    .action(async (opts, cmd) => {
      const paths = await resolveEnv(globals(cmd).env);
      const { readDesired } = await import("../reconcile/desired.ts");
      await readDesired(paths); // never commit a desired state that does not validate
      const { commit } = await import("../providers/git/git.ts");
      const sha = await commit(paths.cec, opts.message);
      if (ui.json) printJson({ commit: sha });
      else {println(
          sha ? `Committed ${sha.slice(0, 12)}: ${opts.message}` : "Nothing to commit: .cec is unchanged.",
        );}
    });
  program.command("log").description("history of .cec").option("-n, --max <n>", "at most N entries", "20")
    .action(async (opts, cmd) => {
      const paths = await resolveEnv(globals(cmd).env);
      const { log } = await import("../providers/git/git.ts");
      const entries = await log(paths.cec, { maxCount: Number(opts.max) });
      if (ui.json) printJson(entries);
      else for (const e of entries) println(`${paint("yellow", e.sha.slice(0, 12))} ${e.date}  ${e.message}`);
    });
  program.command("rollback").description(
    "restore .cec to a revision (default: discard uncommitted edits), then plan+apply",
  )
    .argument("[rev]").option("--no-apply", "only restore and commit .cec").action(async (rev, opts, cmd) => {
      const paths = await resolveEnv(globals(cmd).env);
      const { rollbackCec } = await import("../reconcile/rollback.ts");
      const what = await rollbackCec(paths, rev);
      if (!ui.json) println(what);
      if (opts.apply) await planAndApply(paths);
    });
  program.command("validate").description("check .cec without an environment (schema, nodes, lock, models)")
    .argument("[path]", "a .cec directory (default: the environment's)")
    .option("--offline", "skip the checks that need the network (registry, git remotes)")
    .action(async (path, opts, cmd) => {
      const { validateCec } = await import("../reconcile/validate.ts");
      let paths: EnvPaths;
      if (path) {
        const { envPathsFromCec } = await import("../workspace/paths.ts");
        const { exists } = await import("../lib/fsx.ts");
        const { join } = await import("node:path");
        const { CdError } = await import("../lib/errors.ts");
        const cec = await exists(join(path, ".cec", "pyproject.toml")) ? join(path, ".cec") : path;
        if (!await exists(join(cec, "pyproject.toml"))) {
          throw new CdError("NOT_A_CEC", `${path} has no pyproject.toml (nor .cec/pyproject.toml)`, {
            hint: "give the path of an environment's .cec directory",
          });
        }
        paths = envPathsFromCec(cec, workspace());
      } else paths = await resolveEnv(globals(cmd).env);
      const v = await validateCec(paths, { offline: opts.offline, log: step });
      if (ui.json) printJson({ valid: v.errors.length === 0, ...v });
      else {
        for (const e of v.errors) info(`${paint("red", "invalid:")} ${e}`);
        for (const w of v.warnings) info(`${paint("yellow", "warning:")} ${w}`);
        if (v.errors.length === 0) println(`${paths.cec} is valid.`);
      }
      if (v.errors.length > 0) Deno.exitCode = 1;
    });
}
