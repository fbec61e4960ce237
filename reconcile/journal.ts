/**
 * The write-ahead journal of a change: every undo step is recorded before the change it undoes, so a crash
 * at any point can be rolled back by the next command. Trash and staging live beside it on the
 * environment's file system, so every move is a rename.
 *
 * A journal read back from disk is untrusted like any other file: every path in it must stay inside the
 * environment (or the workspace) and every trash path inside this journal's own trash, else it is refused
 * and nothing runs (DESIGN §6b).
 */
import { join } from "node:path";
import { z } from "zod";
import { CdError } from "../lib/errors.ts";
import { readTextIfExists, removeIfExists, writeFileAtomic } from "../lib/fsx.ts";
import { within } from "../lib/safe_path.ts";
import type { HeldLock } from "./lock.ts";
import type { EnvPaths } from "./paths.ts";
import type { UndoStep } from "./types.ts";

export interface JournalEntry {
  index: number;
  address: string;
  status: "running" | "done";
  undo: UndoStep[];
}

const JournalSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9._-]+$/, "must be a plain name"),
  pid: z.number(),
  started_at: z.string(),
  /** `committing`: everything is applied and `.cec` is being committed on top of `commit_parent`. */
  status: z.enum(["running", "rolling-back", "committing"]),
  command: z.string().optional(),
  commit_parent: z.string().nullable().optional(),
  entries: z.array(z.object({
    index: z.number(),
    address: z.string(),
    status: z.enum(["running", "done"]),
    undo: z.array(z.union([
      z.object({ op: z.literal("restore"), path: z.string(), trashPath: z.string() }),
      z.object({ op: z.literal("remove"), path: z.string() }),
      z.object({
        op: z.literal("custom"),
        type: z.enum(["comfyui", "node", "packages", "model", "workflow"]),
        data: z.any(),
      }),
    ])),
  })),
});
export type JournalData = z.infer<typeof JournalSchema>;

export class Journal {
  readonly dir: string;

  private constructor(readonly stateDir: string, readonly data: JournalData) {
    this.dir = join(stateDir, "applies", data.id);
  }

  static path(stateDir: string): string {
    return join(stateDir, "journal.json");
  }

  /** Starts a journal; only the holder of the exclusive lock may write one. */
  static async begin(lock: HeldLock, command: string): Promise<Journal> {
    if (lock.mode !== "exclusive") throw new Error("Journal.begin needs the exclusive lock");
    const id = new Date().toISOString().replace(/[:.]/g, "-") + "-" + crypto.randomUUID().slice(0, 6);
    const j = new Journal(lock.stateDir, {
      id,
      pid: Deno.pid,
      started_at: new Date().toISOString(),
      status: "running",
      command,
      entries: [],
    });
    await Deno.mkdir(j.trashDir, { recursive: true });
    await Deno.mkdir(j.stagingRoot, { recursive: true });
    await j.save();
    return j;
  }

  /**
   * The journal an interrupted change left, validated: its shape, and every path in it inside `paths`'
   * environment, `.cec` or workspace, every trash path inside its own trash. JOURNAL_INVALID otherwise.
   */
  static async load(paths: EnvPaths): Promise<Journal | null> {
    const file = Journal.path(paths.state);
    const text = await readTextIfExists(file);
    if (text === null) return null;
    const invalid = (why: string) =>
      new CdError("JOURNAL_INVALID", `${file}: ${why}`, {
        hint: "this file records an interrupted apply; it was not written by ComfyDock as it is now. " +
          `Look at it, then move it away (mv '${file}' '${file}.bad') to continue`,
      });
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      throw invalid("not valid JSON");
    }
    const parsed = JournalSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw invalid(`${issue.path.join(".") || "(root)"}: ${issue.message}`);
    }
    const j = new Journal(paths.state, parsed.data);
    const roots = [paths.root, paths.cec, paths.workspace.root];
    for (const entry of j.data.entries) {
      for (const step of entry.undo) {
        if (step.op === "custom") continue;
        await within(roots, step.path, "an undo step of the journal").catch((e) => {
          throw invalid(e.message);
        });
        if (step.op === "restore") {
          await within([j.trashDir], step.trashPath, "an undo step of the journal").catch((e) => {
            throw invalid(e.message);
          });
        }
      }
    }
    return j;
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

  /** Marks the point after which the change is complete but for its `.cec` commit on top of `parent`. */
  async markCommitting(parent: string | null): Promise<void> {
    this.data.status = "committing";
    this.data.commit_parent = parent;
    await this.save();
  }

  /** Ends the change: the journal goes, staging goes; the trash stays (see pruneTrash) so nothing is lost. */
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
