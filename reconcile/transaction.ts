/** The Transaction handed to providers, and the undo of what it recorded (DESIGN §6). */
import { basename, dirname, join } from "node:path";
import { exists, writeFileAtomic } from "../lib/fsx.ts";
import type { Journal, JournalEntry } from "./journal.ts";
import type { ObserveContext, Provider, Transaction, UndoStep } from "./types.ts";

export class JournaledTransaction implements Transaction {
  private counter = 0;

  constructor(
    private readonly journal: Journal,
    private readonly entry: JournalEntry,
    private readonly logger: (line: string) => void,
  ) {}

  private next(name: string): string {
    return `${this.entry.index}-${this.counter++}-${name}`;
  }

  async stagingDir(label: string): Promise<string> {
    const dir = join(this.journal.stagingRoot, this.next(label.replace(/[^A-Za-z0-9._-]/g, "_")));
    await Deno.mkdir(dir, { recursive: true });
    return dir;
  }

  async trash(path: string): Promise<void> {
    if (!await exists(path)) return;
    const trashPath = join(this.journal.trashDir, this.next(basename(path)));
    await this.recordUndo({ op: "restore", path, trashPath });
    await Deno.mkdir(dirname(trashPath), { recursive: true });
    await Deno.rename(path, trashPath);
  }

  async place(staged: string, finalPath: string): Promise<void> {
    await this.recordUndo({ op: "remove", path: finalPath });
    await Deno.mkdir(dirname(finalPath), { recursive: true });
    await Deno.rename(staged, finalPath);
  }

  async created(path: string): Promise<void> {
    await this.recordUndo({ op: "remove", path });
  }

  async recordUndo(step: UndoStep): Promise<void> {
    this.entry.undo.push(step);
    await this.journal.save();
  }

  log(line: string): void {
    this.logger(line);
  }
}

/** A file of `.cec` a change writes: `path` absolute (checked by the caller), content null removes it. */
export interface CecFile {
  path: string;
  content: string | null;
}

/**
 * Writes the `.cec` files of a change as the journal's first entry (address `cec`): the old files go to the
 * trash, the new ones are staged and renamed in. A declined prompt, a failed apply or a crash rolls them
 * back with the rest of the change, so `.cec` is byte-for-byte as before.
 */
export async function writeCecFiles(journal: Journal, files: CecFile[]): Promise<void> {
  const entry = await journal.startEntry(-1, "cec");
  const tx = new JournaledTransaction(journal, entry, () => {});
  for (const f of files) {
    await tx.trash(f.path);
    if (f.content === null) continue;
    const staged = join(await tx.stagingDir("cec"), basename(f.path));
    await writeFileAtomic(staged, f.content);
    await tx.place(staged, f.path);
  }
  entry.status = "done";
  await journal.save();
}

/**
 * Undoes every recorded step in reverse order. Each step is idempotent (checks the disk first), so a crash
 * during a rollback is finished by running it again. Nothing is deleted: what an action created moves to
 * the trash too.
 */
export async function rollBack(
  journal: Journal,
  providers: Map<string, Provider>,
  ctx: ObserveContext,
): Promise<number> {
  journal.data.status = "rolling-back";
  await journal.save();
  let undone = 0;
  let n = 0;
  for (const entry of [...journal.data.entries].reverse()) {
    for (const step of [...entry.undo].reverse()) {
      if (step.op === "remove") {
        if (await exists(step.path)) {
          const to = join(journal.trashDir, `undo-${entry.index}-${n++}-${basename(step.path)}`);
          await Deno.mkdir(dirname(to), { recursive: true });
          await Deno.rename(step.path, to);
        }
      } else if (step.op === "restore") {
        if (await exists(step.trashPath)) {
          if (await exists(step.path)) {
            const to = join(journal.trashDir, `undo-${entry.index}-${n++}-${basename(step.path)}`);
            await Deno.rename(step.path, to);
          }
          await Deno.mkdir(dirname(step.path), { recursive: true });
          await Deno.rename(step.trashPath, step.path);
        }
      } else {
        const provider = providers.get(step.type);
        if (provider?.undo) await provider.undo(step, ctx);
      }
    }
    undone++;
  }
  await journal.finish();
  return undone;
}
