/**
 * The write-ahead journal of an apply: every undo step is recorded before the change it undoes, so a crash
 * at any point can be rolled back by `repair` (or the next command). Trash and staging live beside it on
 * the environment's file system, so every move is a rename.
 */
import { join } from "node:path";
import { readJsonIfExists, removeIfExists, writeFileAtomic } from "../lib/fsx.ts";
import type { UndoStep } from "./types.ts";

export interface JournalEntry {
  index: number;
  address: string;
  status: "running" | "done";
  undo: UndoStep[];
}

export interface JournalData {
  id: string;
  pid: number;
  started_at: string;
  status: "running" | "rolling-back";
  entries: JournalEntry[];
}

export class Journal {
  readonly dir: string;
  readonly data: JournalData;

  private constructor(readonly stateDir: string, data: JournalData) {
    this.data = data;
    this.dir = join(stateDir, "applies", data.id);
  }

  static path(stateDir: string): string {
    return join(stateDir, "journal.json");
  }

  static async begin(stateDir: string): Promise<Journal> {
    const id = new Date().toISOString().replace(/[:.]/g, "-") + "-" + crypto.randomUUID().slice(0, 6);
    const j = new Journal(stateDir, {
      id,
      pid: Deno.pid,
      started_at: new Date().toISOString(),
      status: "running",
      entries: [],
    });
    await Deno.mkdir(j.trashDir, { recursive: true });
    await Deno.mkdir(j.stagingRoot, { recursive: true });
    await j.save();
    return j;
  }

  static async load(stateDir: string): Promise<Journal | null> {
    const data = await readJsonIfExists<JournalData>(Journal.path(stateDir));
    return data ? new Journal(stateDir, data) : null;
  }

  get trashDir(): string {
    return join(this.dir, "trash");
  }

  get stagingRoot(): string {
    return join(this.dir, "staging");
  }

  async save(): Promise<void> {
    await writeFileAtomic(Journal.path(this.stateDir), JSON.stringify(this.data, null, 2));
  }

  async startEntry(index: number, address: string): Promise<JournalEntry> {
    const entry: JournalEntry = { index, address, status: "running", undo: [] };
    this.data.entries.push(entry);
    await this.save();
    return entry;
  }

  /** Ends the apply: the journal goes, staging goes; the trash stays (see pruneTrash) so nothing is lost. */
  async finish(): Promise<void> {
    await removeIfExists(this.stagingRoot);
    await removeIfExists(Journal.path(this.stateDir));
  }
}

/** Keeps the trash of the last `keep` applies (a user can still fish out an overwritten file). */
export async function pruneTrash(stateDir: string, keep = 5): Promise<void> {
  const root = join(stateDir, "applies");
  let names: string[];
  try {
    names = (await Array.fromAsync(Deno.readDir(root))).filter((e) => e.isDirectory).map((e) => e.name)
      .sort();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  for (const name of names.slice(0, Math.max(0, names.length - keep))) await removeIfExists(join(root, name));
}
