/**
 * One writer at a time per environment: `<env>/.comfydock/lock.json` created exclusively, holding pid, host,
 * command and start time. A lock whose process is gone (same host, dead pid) is stale: the caller may recover.
 */
import process from "node:process";
import { hostname } from "node:os";
import { join } from "node:path";
import { CdError } from "../lib/errors.ts";
import { readJsonIfExists, removeIfExists } from "../lib/fsx.ts";

export interface LockInfo {
  pid: number;
  host: string;
  command: string;
  started_at: string;
  /** Tells this holder from any later one (same pid and millisecond are possible). */
  token?: string;
}

export function lockPath(stateDir: string): string {
  return join(stateDir, "lock.json");
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

export type LockState = { state: "free" } | { state: "held" | "stale"; info: LockInfo };

export async function inspectLock(stateDir: string): Promise<LockState> {
  const info = await readJsonIfExists<LockInfo>(lockPath(stateDir)).catch(() => null);
  if (!info) return { state: "free" };
  const stale = info.host === hostname() && !pidAlive(info.pid);
  return { state: stale ? "stale" : "held", info };
}

export function describeLock(info: LockInfo): string {
  return `pid ${info.pid} on ${info.host} ('comfydock ${info.command}', since ${info.started_at})`;
}

/** Removes the lock only if it is still ours: after a `--force-unlock` it may belong to someone else. */
async function releaseIfOurs(path: string, ours: LockInfo): Promise<void> {
  const now = await readJsonIfExists<LockInfo>(path).catch(() => null);
  if (now && now.token === ours.token) {
    await removeIfExists(path);
  }
}

export interface HeldLock {
  release(): Promise<void>;
}

/**
 * Takes the lock or fails fast naming its holder. A stale lock is taken over only when `takeStale` is set
 * (the caller has just recovered whatever the dead holder left).
 */
export async function acquireLock(
  stateDir: string,
  command: string,
  opts: { takeStale?: boolean; force?: boolean } = {},
): Promise<HeldLock> {
  await Deno.mkdir(stateDir, { recursive: true });
  const path = lockPath(stateDir);
  const info: LockInfo = {
    pid: Deno.pid,
    host: hostname(),
    command,
    started_at: new Date().toISOString(),
    token: crypto.randomUUID(),
  };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await Deno.writeTextFile(path, JSON.stringify(info, null, 2), { createNew: true });
      return { release: () => releaseIfOurs(path, info) };
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    const current = await inspectLock(stateDir);
    if (current.state === "free") continue;
    if (opts.force || (current.state === "stale" && opts.takeStale)) {
      await removeIfExists(path);
      continue;
    }
    if (current.state === "held") {
      throw new CdError("ENV_LOCKED", `the environment is locked by ${describeLock(current.info)}`, {
        hint: "wait for it to finish; if that process is gone, run 'comfydock repair --force-unlock'",
      });
    }
    throw new CdError("STALE_LOCK", `a stale lock was left by ${describeLock(current.info)}`, {
      hint:
        "run 'comfydock repair' to finish or roll back what it left, or 'comfydock repair --force-unlock'",
    });
  }
  throw new CdError("ENV_LOCKED", `could not take the lock at ${path}`, {
    hint: "run 'comfydock repair --force-unlock' if no other comfydock is running",
  });
}
