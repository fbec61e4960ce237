/**
 * The health check as a use case (DESIGN §6c): ComfyUI started in the environment, inside a Session. The
 * faces open the session: `health` and the Action (after its apply or drift) a read session (the shared
 * lock: no apply can change the environment under a running check, and other readers are not kept
 * waiting), `apply --verify` the write session that just applied, so what is checked is exactly what was
 * applied. The check writes only ComfyUI's own files (its database, temp/) and `.comfydock/health.json`.
 */
import { sep as SEP } from "node:path";
import { readDesired } from "../reconcile/desired.ts";
import { type HealthResult, packIdsOf, runHealth } from "../providers/comfyui/health.ts";
import { noProgress } from "../lib/progress.ts";
import type { Session } from "./session.ts";

export interface CheckHealthOptions {
  /** Time limit of the start-up; default Settings.healthTimeoutMs (COMFYDOCK_HEALTH_TIMEOUT). */
  timeoutMs?: number;
  /** Each line ComfyUI prints (--debug). */
  onLine?: (line: string) => void;
}

/** Starts ComfyUI headless in the session's environment, reports each custom node pack, saves health.json. */
export async function checkHealth(session: Session, opts: CheckHealthOptions = {}): Promise<HealthResult> {
  const { paths, app } = session;
  const timeoutMs = opts.timeoutMs ?? app.settings.healthTimeoutMs;
  // An unreadable .cec only loses the node ids in the report: the packs are then named by their folders.
  const packIds = await readDesired(paths).then((d) => packIdsOf(d.nodes), () => ({}));
  const limit = Math.round(timeoutMs / 1000);
  // A start takes 15-60 s: the task keeps saying so, with ComfyUI's latest line as its detail.
  const task = (app.progress ?? noProgress).task(`starting ComfyUI in '${paths.name}' (${limit} s limit)`);
  try {
    const r = await runHealth(paths, {
      timeoutMs,
      packIds,
      onLine: (line) => {
        opts.onLine?.(line);
        // Paths inside the environment, as ComfyUI prints them (import times), shown relative to it.
        if (line.trim()) task.advance(0, line.trim().replaceAll(`${paths.root}${SEP}`, ""));
      },
    });
    if (r.started) task.done(`started in ${(r.duration_ms / 1000).toFixed(1)} s`);
    else task.fail(r.timed_out ? `stopped at the ${limit} s limit` : "did not start");
    return r;
  } catch (e) {
    task.fail();
    throw e;
  }
}
