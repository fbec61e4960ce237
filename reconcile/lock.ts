/**
 * One writer at a time per environment (DESIGN §6), for every writer: an OS file lock on
 * `<env>/.comfydock/lock` (`flock`; the kernel drops it when the process dies, so no crash or kill -9 can
 * leave a lock behind). Readers (plan, status, drift) take it shared; writers take it exclusive and keep it
 * across the whole change. Who holds it (pid, host, command, since) is written beside it to `lock.json`,
 * only for messages: a missing or unreadable `lock.json` (full disk, crash mid-write) never blocks anyone.
 */
import { hostname } from "node:os";
import { join } from "node:path";
import { CdError } from "../lib/errors.ts";
import { readJsonIfExists, removeIfExists } from "../lib/fsx.ts";

export interface LockInfo {
  pid: number;
  host: string;
  command: string;
  started_at: string;
  /** Tells this holder's lock.json from a later holder's (same pid and millisecond are possible). */
  token: string;
}

export type LockMode = "shared" | "exclusive";

export function lockFilePath(stateDir: string): string {
  return join(stateDir, "lock");
}

export function lockInfoPath(stateDir: string): string {
  return join(stateDir, "lock.json");
}

export function describeLock(info: LockInfo | null): string {
  return info
    ? `pid ${info.pid} on ${info.host} ('comfydock ${info.command}', since ${info.started_at})`
    : "another comfydock process (it left no lock.json)";
}

/** What lock.json says, or null when it is missing or unreadable (it is advisory). */
export async function readLockInfo(stateDir: string): Promise<LockInfo | null> {
  const info = await readJsonIfExists<LockInfo>(lockInfoPath(stateDir)).catch(() => null);
  return info && typeof info.pid === "number" && typeof info.host === "string" ? info : null;
}

export interface HeldLock {
  readonly mode: LockMode;
  readonly stateDir: string;
  /** Releases the lock (idempotent). */
  release(): Promise<void>;
}

export interface LockOptions {
  mode?: LockMode;
  /** Wait this long for the holder to finish (default 0: fail fast naming the holder). */
  timeoutMs?: number;
  /** Polling interval while waiting. */
  pollMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Takes the environment's lock or fails with ENV_LOCKED naming the holder. A lock whose holder died is free
 * (the kernel released it); its stale lock.json is simply overwritten.
 */
export async function acquireLock(
  stateDir: string,
  command: string,
  opts: LockOptions = {},
): Promise<HeldLock> {
  const mode = opts.mode ?? "exclusive";
  await Deno.mkdir(stateDir, { recursive: true });
  const file = await Deno.open(lockFilePath(stateDir), { read: true, write: true, create: true });
  const deadline = Date.now() + (opts.timeoutMs ?? 0);
  try {
    while (!await file.tryLock(mode === "exclusive")) {
      if (Date.now() >= deadline) {
        const holder = await readLockInfo(stateDir);
        throw new CdError("ENV_LOCKED", `the environment is locked by ${describeLock(holder)}`, {
          hint: "wait for it to finish (or pass --lock-timeout SECONDS to wait); a lock never outlives its " +
            "process, so if none is running, run the command again",
        });
      }
      await sleep(Math.min(opts.pollMs ?? 200, Math.max(1, deadline - Date.now())));
    }
  } catch (e) {
    file.close();
    throw e;
  }
  const info: LockInfo = {
    pid: Deno.pid,
    host: hostname(),
    command,
    started_at: new Date().toISOString(),
    token: crypto.randomUUID(),
  };
  // Shared holders are many: only a writer describes itself. Best effort: a full disk must not block.
  if (mode === "exclusive") {
    await Deno.writeTextFile(lockInfoPath(stateDir), JSON.stringify(info, null, 2)).catch(() => {});
  }
  let released = false;
  return {
    mode,
    stateDir,
    async release() {
      if (released) return;
      released = true;
      try {
        if (mode === "exclusive") {
          const now = await readLockInfo(stateDir);
          if (now?.token === info.token) await removeIfExists(lockInfoPath(stateDir)).catch(() => {});
        }
        await file.unlock();
      } finally {
        file.close();
      }
    },
  };
}

/** Whether someone holds the lock right now (tries a shared lock and gives it back at once). */
export async function lockHolder(stateDir: string): Promise<{ held: boolean; info: LockInfo | null }> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(lockFilePath(stateDir), { read: true, write: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { held: false, info: null };
    throw e;
  }
  try {
    const free = await file.tryLock(true);
    if (free) await file.unlock();
    return { held: !free, info: free ? null : await readLockInfo(stateDir) };
  } finally {
    file.close();
  }
}

/**
 * `repair --force-unlock`: an OS lock cannot be stolen from a live process, and a dead one holds none.
 * What can be stuck is lock.json (left by a crash, or written half on a full disk): removed when nobody
 * holds the lock. Returns what was cleared, or throws naming the live holder.
 */
export async function forceUnlock(stateDir: string): Promise<string | null> {
  const { held, info } = await lockHolder(stateDir);
  if (held) {
    throw new CdError("ENV_LOCKED", `the lock is held by a running process: ${describeLock(info)}`, {
      hint: info
        ? `stop that process (kill ${info.pid}) if it hangs; its lock goes with it`
        : "wait for the other ComfyDock command to finish; the lock goes with its process",
    });
  }
  const stale = await readLockInfo(stateDir);
  const hadFile = await Deno.stat(lockInfoPath(stateDir)).then(() => true, () => false);
  if (!hadFile) return null;
  await removeIfExists(lockInfoPath(stateDir));
  return `removed a stale lock.json left by ${describeLock(stale)}`;
}
