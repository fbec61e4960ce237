/** The reconciler's commands: status, plan, apply, capture, repair, drift, commit, log, rollback, sync, validate. */
import type { Command } from "@commander-js/extra-typings";
import { notBuilt } from "./context.ts";

export function registerReconcileCommands(program: Command): void {
  program.command("status").description("sync state of each resource").option("--check", "exit 2 on drift")
    .action(() => notBuilt("status", 11));
  program.command("plan").description("show what apply would change to make disk match .cec")
    .option("--out <file>", "save the plan for 'apply FILE'")
    .option("--detailed-exitcode", "exit 0 no changes, 1 error, 2 changes")
    .option("--target <address...>", "only these resources (node.x, model.y, ...)")
    .action(() => notBuilt("plan", 11));
  program.command("apply").description("make disk match .cec (asks first unless --yes or a plan file)")
    .argument("[planfile]").action(() => notBuilt("apply", 11));
  program.command("capture").description("write changes made on disk back into .cec")
    .action(() => notBuilt("capture", 11));
  program.command("repair").description("finish or roll back an interrupted apply")
    .option("--force-unlock", "break a stale lock").action(() => notBuilt("repair", 11));
  program.command("drift").description("report everything that differs from .cec (exit 2 on drift)")
    .action(() => notBuilt("drift", 9));
  program.command("commit").description("commit .cec").requiredOption("-m, --message <msg>")
    .action(() => notBuilt("commit", 11));
  program.command("log").description("history of .cec").action(() => notBuilt("log", 11));
  program.command("rollback").description("restore .cec to a revision, then plan+apply").argument("[rev]")
    .action(() => notBuilt("rollback", 11));
  program.command("sync").description("the seed's name for apply (--dry-run = plan)")
    .option("--dry-run").action(() => notBuilt("sync", 11));
  program.command("validate").description("check .cec without touching disk").action(() =>
    notBuilt("validate", 11)
  );
}
