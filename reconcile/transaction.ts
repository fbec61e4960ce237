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
 * Writes the `.cec` files of a change as the journal's first entry (address `cec`). The old files are first
 * COPIED into the trash and every undo step is recorded with one journal save (a change of 200 workflow files
 * must not save a growing journal 400 times); only then is each file replaced atomically. A restore step whose
 * file was not replaced yet puts back identical bytes, so a rollback is right wherever a crash happened.
 */
export async function writeCecFiles(journal: Journal, files: CecFile[]): Promise<void> {
  const entry = await journal.startEntry(-1, "cec");
  let n = 0;
  for (const f of files) {
    if (await exists(f.path)) {
      const trashPath = join(journal.trashDir, `cec-${n++}-${basename(f.path)}`);
      await Deno.mkdir(dirname(trashPath), { recursive: true });
      await Deno.copyFile(f.path, trashPath);
      entry.undo.push({ op: "restore", path: f.path, trashPath });
    } else if (f.content !== null) {
      entry.undo.push({ op: "remove", path: f.path });
    }
  }
  await journal.save();
  for (const f of files) {
    if (f.content === null) {
      await Deno.remove(f.path).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
    } else await writeFileAtomic(f.path, f.content);
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
