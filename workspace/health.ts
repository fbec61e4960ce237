/**
 * The health check as a use case (DESIGN §6c): ComfyUI started in the environment, inside a Session. The
 * faces open the session: `health` and the Action (after its apply or drift) a read session (the shared
 * lock: no apply can change the environment under a running check, and other readers are not kept
 * waiting), `apply --verify` the write session that just applied, so what is checked is exactly what was
 * applied. The check writes only ComfyUI's own files (its database, temp/) and `.comfydock/health.json`.
 */
import { readDesired } from "../reconcile/desired.ts";
import { type HealthResult, packIdsOf, runHealth } from "../providers/comfyui/health.ts";
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
  app.log(`starting ComfyUI in '${paths.name}' (${Math.round(timeoutMs / 1000)} s limit)`);
  return await runHealth(paths, { timeoutMs, packIds, onLine: opts.onLine });
}
