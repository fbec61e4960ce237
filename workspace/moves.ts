/**
 * Folders moved into an environment while it is built (`adopt --move`). The list is written to the
 * environment's state dir BEFORE the first rename, so a failure, Ctrl-C, or a kill -9 followed by the next
 * command's sweep of dead staging dirs puts the user's folders back where they were instead of deleting them
 * with the half-built environment. Moves are renames: instant, atomic, and undone the same way; a folder on
 * another file system is refused before anything moves.
 */
import { dirname, join } from "node:path";
import { CdError } from "../lib/errors.ts";
import { exists, existsSync, readJsonIfExists, removeIfExists, writeFileAtomic } from "../lib/fsx.ts";

export interface Move {
  from: string;
  to: string;
}

const RECORD = "moved-in.json";

/** Refuses moves across file systems (a rename could not do them, a copy could be cut off half way). */
export async function assertSameFileSystem(moves: Move[]): Promise<void> {
  for (const m of moves) {
    const [a, b] = await Promise.all([Deno.stat(m.from), Deno.stat(dirname(m.to))]);
    if (a.dev !== b.dev) {
      throw new CdError(
        "ADOPT_MOVE_OTHER_DISK",
        `${m.from} is on another file system than ${dirname(m.to)}`,
        {
          hint: "adopt without --move (the folder is left where it is), or set COMFYDOCK_HOME on that disk",
        },
      );
    }
  }
}

/** Records, then renames each `from` to `to` (in order). */
export async function moveIn(stateDir: string, moves: Move[]): Promise<void> {
  await writeFileAtomic(join(stateDir, RECORD), JSON.stringify(moves, null, 1) + "\n");
  for (const m of moves) {
    await Deno.mkdir(dirname(m.to), { recursive: true });
    await Deno.rename(m.from, m.to);
  }
}

/**
 * Puts back whatever of the recorded moves happened (last first). Returns what could not be put back (its
 * place is taken): the caller must then keep the folder that holds it.
 */
export async function moveBack(stateDir: string): Promise<string[]> {
  const moves = await readJsonIfExists<Move[]>(join(stateDir, RECORD)).catch(() => null);
  if (!moves) return [];
  const stuck: string[] = [];
  for (const m of [...moves].reverse()) {
    if (!await exists(m.to)) continue;
    if (await exists(m.from)) {
      stuck.push(`${m.to} (its place ${m.from} is taken)`);
      continue;
    }
    await Deno.rename(m.to, m.from);
  }
  if (stuck.length === 0) await removeIfExists(join(stateDir, RECORD));
  return stuck;
}

/** `moveBack` for signal handlers (no awaits). */
export function moveBackSync(stateDir: string): string[] {
  let moves: Move[];
  try {
    moves = JSON.parse(Deno.readTextFileSync(join(stateDir, RECORD)));
  } catch {
    return [];
  }
  const stuck: string[] = [];
  for (const m of [...moves].reverse()) {
    if (!existsSync(m.to)) continue;
    if (existsSync(m.from)) stuck.push(m.to);
    else Deno.renameSync(m.to, m.from);
  }
  return stuck;
}

/** The moves are final (the environment is in place): forget the record. */
export function finishMoves(stateDir: string): Promise<void> {
  return removeIfExists(join(stateDir, RECORD));
}
