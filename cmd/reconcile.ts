/**
 * The reconciler's commands: status, plan, apply, sync, repair, capture, drift, commit, log, rollback,
 * validate. One named handler per command; the sequencing lives in workspace/session.ts.
 */
import type { Command } from "@commander-js/extra-typings";
import { CdError } from "../lib/errors.ts";
import type { Plan } from "../reconcile/types.ts";
import type { Session } from "../workspace/session.ts";
import {
  appFor,
  changeData,
  type GlobalFlags,
  globals,
  printPlan,
  resolveEnv,
  settings,
  withEnv,
} from "./context.ts";
import { info, paint, printJson, println, reportFailure, ui } from "../lib/ui.ts";

/** Exit code 2 = "changes present" (plan --detailed-exitcode, status --check, drift). */
const CHANGES = 2;
const FORCE_HELP =
  "also replace what is normally kept (a git node with uncommitted changes); it goes to the trash";
const DEEP_HELP = "also verify the content hash of every installed package file against its RECORD (slower)";
const NO_BUILD_HELP = "untrusted .cec: run no build backend (setup.py) in the trial lock; packages without " +
  "wheels cannot be checked";

const RESOURCE_TYPES = ["comfyui", "node", "packages", "model", "workflow"];

/**
 * `--target` addresses must each name something: a typo is an error with the nearest addresses of the same
 * kind (`node.x` -> the nodes), not "No changes".
 */
async function checkTargets(session: Session, targets: string[] | undefined, plan: Plan): Promise<void> {
  if (!targets?.length) return;
  const { readDesired } = await import("../reconcile/desired.ts");
  const { resourceStatus } = await import("../reconcile/status.ts");
  const desired = await readDesired(session.paths);
  const known = [...new Set([...resourceStatus(desired, plan).map((r) => r.address), ...RESOURCE_TYPES])];
  for (const t of targets) {
    if (known.some((a) => a === t || a.startsWith(`${t}.`))) continue;
    const { distance } = await import("fastest-levenshtein");
    const kind = t.split(".")[0];
    const sameKind = known.filter((a) => a.startsWith(`${kind}.`));
    const pool = t.includes(".") && RESOURCE_TYPES.includes(kind) ? sameKind : known;
    const best = Math.min(...pool.map((a) => distance(a, t)));
    const near = pool.filter((a) => distance(a, t) === best).slice(0, 3);
    throw new CdError("UNKNOWN_TARGET", `--target ${t} matches no resource of '${session.paths.name}'`, {
      hint: near.length
        ? `did you mean ${near.join(", ")}? ('comfydock status' lists the resources)`
        : `'${session.paths.name}' has no ${kind}.* resource (in .cec or on disk); 'comfydock status' lists ` +
          "the resources",
    });
  }
}

const LOCKED_HELP =
  "fail, before anything changes, when uv.lock is missing or out of date with pyproject.toml";

async function planCommand(
  opts: {
    out?: string;
    detailedExitcode?: boolean;
    target?: string[];
    force?: boolean;
    locked?: boolean;
    deep?: boolean;
    build?: boolean;
  },
  g: GlobalFlags,
): Promise<void> {
  const { requireLocked } = await import("../workspace/gitops.ts");
  const plan = await withEnv(g, "plan", "read", async (s) => {
    const { plan, desired } = await s.plan({
      targets: opts.target,
      deep: opts.deep,
      untrusted: opts.build === false,
    });
    await checkTargets(s, opts.target, plan);
    if (opts.locked) requireLocked(plan, desired);
    return plan;
  }, { force: opts.force });
  if (opts.out) {
    const { writeFileAtomic } = await import("../lib/fsx.ts");
    await writeFileAtomic(opts.out, JSON.stringify(plan, null, 2) + "\n");
  }
  if (ui.json) printJson(plan);
  else {
    await printPlan(plan);
    if (opts.out) {
      println(`\nSaved the plan to ${opts.out}. Apply exactly this plan with 'comfydock apply ${opts.out}'.`);
    }
  }
  if (opts.detailedExitcode && plan.actions.length > 0) Deno.exitCode = CHANGES;
}

/**
 * Plans, asks (unless --yes or a saved plan), applies, and reports; all under one lock. `--verify` runs the
 * health check in the same write session after a successful apply (also when there was nothing to apply),
 * so what is checked is what was applied; exit 2 when ComfyUI or a custom node pack fails to start.
 */
export async function applyCommand(
  planFile: string | undefined,
  opts: { force?: boolean; locked?: boolean; deep?: boolean; verify?: boolean },
  g: GlobalFlags,
): Promise<void> {
  const { summarize } = await import("../views/plan_text.ts");
  const { requireLocked } = await import("../workspace/gitops.ts");
  const saved = planFile ? await (await import("../reconcile/plan_file.ts")).readPlanFile(planFile) : null;
  const health = opts.verify ? await import("./health.ts") : null;
  // A check that cannot run (no venv) is reported after what the apply did, not instead of it.
  const verify = (s: Session) => health?.runCheck(s).then((r) => ({ r }), (error: unknown) => ({ error }));
  const outcome = await withEnv(g, "apply", "write", async (s, app) => {
    let plan: Plan;
    if (saved) {
      plan = saved;
      const { readDesired } = await import("../reconcile/desired.ts");
      if (opts.locked) requireLocked(plan, await readDesired(s.paths));
    } else {
      const made = await s.plan({ deep: opts.deep });
      plan = made.plan;
      if (opts.locked) requireLocked(plan, made.desired);
      if (plan.actions.length === 0) return { plan, result: null, verified: await verify(s) };
      app.showPlan(plan);
      const destructive = plan.actions.some((a) => a.kind === "delete" || a.kind === "replace");
      if (
        !await app.confirm(`Apply these ${plan.actions.length} action(s) to '${s.paths.name}'?`, {
          destructive,
        })
      ) {
        return { plan, result: null, declined: true };
      }
    }
    const result = await s.apply(plan, { saved: saved !== null });
    return { plan, result, verified: await verify(s) };
  }, { force: opts.force });
  const { plan, result } = outcome;
  const verified = "verified" in outcome ? outcome.verified : undefined;
  const checked = verified && "r" in verified ? verified.r : undefined;
  if (checked && !checked.healthy) Deno.exitCode = health!.UNHEALTHY;
  if (ui.json) {
    printJson({
      plan,
      accepted: !("declined" in outcome),
      applied: (result?.applied.length ?? 0) > 0,
      kept: result?.kept ?? [],
      summary: summarize(result?.applied ?? []),
      trash: result?.trashDir ?? null,
      notes: result?.notes ?? [],
      health: checked,
    });
  } else if ("declined" in outcome) return info("Apply cancelled; nothing was changed.");
  else if (!result || result.applied.length + result.kept.length === 0) {
    if (saved) println("No changes. Environment matches .cec.");
  } else {
    const s = summarize(result.applied);
    println(paint("green", `Apply complete! ${s.add} added, ${s.change} changed, ${s.remove} removed.`));
    // The reason (and how to keep or drop the changes) was logged when the action ran.
    if (result.kept.length) {
      println(paint("yellow", `Left as it is (see above): ${result.kept.map((k) => k.address).join(", ")}`));
    }
    if (result.trashDir) println(`Replaced or removed files were kept in ${result.trashDir}`);
    for (const n of result.notes ?? []) println(`${paint("yellow", "note:")} ${n}`);
  }
  if (checked && !ui.json) await health!.printHealth(checked);
  if (verified && "error" in verified) throw verified.error;
}

async function statusCommand(opts: { check?: boolean; deep?: boolean }, g: GlobalFlags): Promise<void> {
  const { resourceStatus } = await import("../reconcile/status.ts");
  const { readHealth, healthHeadline } = await import("../providers/comfyui/health.ts");
  const { paths, plan, rows, health } = await withEnv(g, "status", "read", async (s) => {
    const { plan, desired } = await s.plan({ deep: opts.deep });
    return { paths: s.paths, plan, rows: resourceStatus(desired, plan), health: await readHealth(s.paths) };
  });
  const drifted = plan.actions.length > 0 || plan.notes.length > 0;
  if (ui.json) {
    printJson({
      environment: paths.name,
      in_sync: !drifted,
      resources: rows,
      notes: plan.notes,
      health: health
        ? { healthy: health.healthy, checked_at: health.checked_at, summary: healthHeadline(health) }
        : null,
    });
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
    // The last health check (status never starts ComfyUI itself: that is 'comfydock health').
    println(
      health
        ? `  ${health.healthy ? paint("green", "✓") : paint("red", "✗")} ${"health".padEnd(40)} ` +
          `${healthHeadline(health)} (checked ${health.checked_at})`
        : `  ? ${"health".padEnd(40)} never checked: 'comfydock health' starts ComfyUI and checks every pack`,
    );
    if (!drifted) println("\nIn sync with .cec.");
    else if (plan.actions.length === 0) println("\nNothing for apply to do; the findings marked ! need you.");
    else println("\nRun 'comfydock plan' to see the changes, 'comfydock apply' to make them.");
  }
  if (opts.check && drifted) Deno.exitCode = CHANGES;
}

async function repairCommand(opts: { forceUnlock?: boolean }, g: GlobalFlags): Promise<void> {
  const paths = await resolveEnv(g.env);
  const said: string[] = [];
  if (opts.forceUnlock) {
    const { forceUnlock } = await import("../reconcile/lock.ts");
    const cleared = await forceUnlock(paths.state);
    if (cleared) said.push(cleared);
  }
  // Opening a write session recovers whatever an interrupted command left (its journal).
  const app = await appFor(g, { log: (l) => said.push(l) });
  const { withSession } = await import("../workspace/session.ts");
  await withSession(app, paths, "repair", "write", () => Promise.resolve());
  const what = said.length ? said.join("; ") : null;
  if (ui.json) printJson({ recovered: what });
  else println(what ?? "Nothing to repair: no interrupted apply and no lock.");
}

async function captureCommand(g: GlobalFlags): Promise<void> {
  const { captureEnvironment } = await import("../workspace/capture.ts");
  const s = await withEnv(g, "capture", "write", (session) => captureEnvironment(session));
  if (ui.json) return printJson(s);
  if (s.workflows.length + s.nodes.length + s.packages.length === 0) {
    println("Nothing to capture: .cec already describes the disk.");
  }
  for (const w of s.workflows) println(`  captured workflow ${w}`);
  for (const n of s.nodes) println(`  captured node ${n}`);
  for (const p of s.packages) println(`  captured package ${p} (dependency group 'user')`);
  for (const k of s.skipped) println(`  ! skipped ${k}`);
  if (s.commit) println(`Committed .cec ${s.commit.slice(0, 12)}. Review it with 'comfydock log'.`);
}

async function driftCommand(g: GlobalFlags): Promise<void> {
  const { renderDriftText, summarizeDrift } = await import("../views/drift.ts");
  const plan = await withEnv(g, "drift", "read", async (s) => (await s.plan()).plan);
  if (ui.json) printJson({ ...summarizeDrift(plan), plan });
  else println(renderDriftText(plan, paint));
  if (plan.actions.length > 0 || plan.notes.length > 0) Deno.exitCode = CHANGES;
}

async function commitCommand(opts: { message: string }, g: GlobalFlags): Promise<void> {
  const { commitCec } = await import("../workspace/environment.ts");
  const sha = await withEnv(g, "commit", "write", (s) => commitCec(s, opts.message));
  if (ui.json) printJson({ commit: sha });
  else {println(
      sha ? `Committed ${sha.slice(0, 12)}: ${opts.message}` : "Nothing to commit: .cec is unchanged.",
    );}
}

async function logCommand(opts: { max: string }, g: GlobalFlags): Promise<void> {
  const paths = await resolveEnv(g.env);
  const { log } = await import("../providers/git/git.ts");
  const entries = await log(paths.cec, { maxCount: Number(opts.max) });
  if (ui.json) printJson({ entries });
  else for (const e of entries) println(`${paint("yellow", e.sha.slice(0, 12))} ${e.date}  ${e.message}`);
}

async function rollbackCommand(
  rev: string | undefined,
  opts: { apply: boolean },
  g: GlobalFlags,
): Promise<void> {
  const { rollbackCec } = await import("../workspace/rollback.ts");
  const r = await withEnv(g, "rollback", "write", (s) => rollbackCec(s, rev, { apply: opts.apply }));
  if (ui.json) return printJson({ sha: r.sha, saved: r.saved, ...changeData(r) });
  if (!r.accepted) return println("Cancelled; .cec and the environment are as they were.");
  println(
    rev
      ? `Restored .cec to ${r.sha.slice(0, 12)}${r.commit ? ` (committed as ${r.commit.slice(0, 12)})` : ""}.`
      : "Discarded uncommitted edits of .cec.",
  );
  if (r.saved) println(`Uncommitted edits were copied to ${r.saved}.`);
  if (r.applied.length) println(paint("green", `Applied ${r.applied.length} action(s).`));
}

async function validateCommand(
  path: string | undefined,
  opts: { offline?: boolean; build?: boolean },
  g: GlobalFlags,
): Promise<void> {
  let cec: string;
  let v: import("../workspace/validate.ts").Validation;
  if (path) {
    const { exists } = await import("../lib/fsx.ts");
    const { join, resolve } = await import("node:path");
    cec = resolve(await exists(join(path, ".cec", "pyproject.toml")) ? join(path, ".cec") : path);
    if (!await exists(join(cec, "pyproject.toml"))) {
      throw new CdError("NOT_A_CEC", `${path} has no pyproject.toml (nor .cec/pyproject.toml)`, {
        hint: "give the path of an environment's .cec directory",
      });
    }
    // A checkout's .cec with no environment: checked in a scratch folder of the workspace, nothing written
    // beside it.
    const { validateCheckout } = await import("../workspace/gitops.ts");
    const app = await appFor(g);
    v = await validateCheckout(app, "validate", { dir: cec, label: cec, revision: null }, {
      offline: opts.offline,
      noBuild: opts.build === false,
    });
  } else {
    const paths = await resolveEnv(g.env);
    cec = paths.cec;
    const { validateCec } = await import("../workspace/validate.ts");
    const { step } = await import("../lib/ui.ts");
    v = await validateCec({ paths, settings: await settings() }, {
      offline: opts.offline,
      noBuild: opts.build === false,
      log: step,
    });
  }
  if (ui.json) printJson({ valid: v.errors.length === 0, ...v });
  else {
    for (const e of v.errors) info(`${paint("red", "invalid:")} ${e}`);
    for (const w of v.warnings) info(`${paint("yellow", "warning:")} ${w}`);
    if (v.errors.length === 0) println(`${cec} is valid.`);
  }
  if (v.errors.length > 0) {
    reportFailure(
      new CdError("CEC_INVALID", `${cec} is not valid: ${v.errors.length} problem(s)`, {
        hint: "fix each problem listed ('invalid: ...'), then run 'comfydock validate' again",
      }),
    );
  }
}

export function registerReconcileCommands(program: Command): void {
  program.command("status").description("sync state of each resource").option("--check", "exit 2 on drift")
    .option("--deep", DEEP_HELP)
    .action((opts, cmd) => statusCommand(opts, globals(cmd)));
  program.command("plan").description("show what apply would change to make disk match .cec")
    .option("--out <file>", "save the plan for 'apply FILE'")
    .option("--detailed-exitcode", "exit 0 no changes, 1 error, 2 changes")
    .option("--target <address...>", "only these resources (node.x, model.y, ...)")
    .option("--force", FORCE_HELP)
    .option("--locked", LOCKED_HELP)
    .option("--deep", DEEP_HELP)
    .option("--no-build", NO_BUILD_HELP)
    .action((opts, cmd) => planCommand(opts, globals(cmd)));
  program.command("apply").description("make disk match .cec (asks first unless --yes or a plan file)")
    .argument("[planfile]", "a plan saved with 'plan --out' (applied exactly, or refused if stale)")
    .option("--force", FORCE_HELP)
    .option("--locked", LOCKED_HELP)
    .option("--deep", DEEP_HELP)
    .option("--verify", "then run 'comfydock health' (exit 2 when ComfyUI or a custom node fails to start)")
    .action((planfile, opts, cmd) => applyCommand(planfile, opts, globals(cmd)));
  program.command("sync").description("the seed's name for apply (--dry-run = plan)")
    .option("--dry-run", "only show the plan")
    .action((opts, cmd) =>
      opts.dryRun ? planCommand({}, globals(cmd)) : applyCommand(undefined, {}, globals(cmd))
    );
  program.command("repair").description("roll back an interrupted apply; clear a stale lock record")
    .option("--force-unlock", "also remove the lock record a crashed process left (a live holder is named)")
    .action((opts, cmd) => repairCommand(opts, globals(cmd)));
  program.command("capture").description("write changes made on disk back into .cec")
    .action((_o, cmd) => captureCommand(globals(cmd)));
  program.command("drift").description("report everything that differs from .cec (exit 2 on drift)")
    .action((_o, cmd) => driftCommand(globals(cmd)));
  program.command("commit").description("commit .cec").requiredOption("-m, --message <msg>")
    .action((opts, cmd) => commitCommand(opts, globals(cmd)));
  program.command("log").description("history of .cec").option("-n, --max <n>", "at most N entries", "20")
    .action((opts, cmd) => logCommand(opts, globals(cmd)));
  program.command("rollback").description(
    "restore .cec to a revision (default: discard uncommitted edits), then plan+apply",
  )
    .argument("[rev]").option("--no-apply", "only restore and commit .cec")
    .action((rev, opts, cmd) => rollbackCommand(rev, opts, globals(cmd)));
  program.command("validate").description("check .cec without an environment (schema, nodes, lock, models)")
    .argument("[path]", "a .cec directory (default: the environment's)")
    .option("--offline", "skip the checks that need the network (registry, git remotes)")
    .option("--no-build", NO_BUILD_HELP)
    .action((path, opts, cmd) => validateCommand(path, opts, globals(cmd)));
}
