/** `node list`: desired nodes vs installed folders, one row each, with a drift mark. Pure. */
import type { DesiredState } from "../../reconcile/desired.ts";
import type { NodeSpec } from "../../reconcile/schema.ts";
import { diffDesiredNodes } from "./diff.ts";
import type { ObservedNodes } from "./observe.ts";

export type NodeRow = {
  id: string;
  source: string;
  /** What .cec pins (or what is installed, for unmanaged folders). */
  pin: string;
  /** ok: matches; missing: not installed; drift: differs; unmanaged: not in .cec; kept: dirty, left alone. */
  state: "ok" | "missing" | "drift" | "unmanaged" | "kept";
  detail: string;
};

function pinOf(spec: NodeSpec): string {
  if (spec.source === "registry") return spec.version;
  if (spec.source === "git") return `${spec.commit.slice(0, 12)}${spec.ref ? ` (${spec.ref})` : ""}`;
  if (spec.source === "file") return `sha256 ${spec.sha256.slice(0, 12)}`;
  return spec.path;
}

export function nodeStatus(desired: DesiredState, observed: ObservedNodes): NodeRow[] {
  const { actions, notes } = diffDesiredNodes(desired, observed);
  const byAddress = new Map(actions.map((a) => [a.address, a]));
  const rows: NodeRow[] = [];
  for (const [id, spec] of Object.entries(desired.nodes).sort(([a], [b]) => a.localeCompare(b))) {
    const a = byAddress.get(`node.${id}`);
    const note = notes.find((n) => n.startsWith(`node.${id}:`));
    const state = a ? (a.kind === "create" ? "missing" : "drift") : note ? "kept" : "ok";
    rows.push({
      id,
      source: spec.source,
      pin: `${pinOf(spec)}${spec.enabled === false ? " (disabled)" : ""}`,
      state,
      detail: a?.reason ?? note?.slice(`node.${id}: `.length) ?? "",
    });
  }
  for (const a of actions.filter((x) => x.kind === "delete")) {
    const before = a.before as { kind?: string; version?: string | null; commit?: string | null } | null;
    rows.push({
      id: a.address.slice("node.".length),
      source: before?.kind ?? "?",
      pin: before?.version ?? before?.commit?.slice(0, 12) ?? "",
      state: "unmanaged",
      detail: a.reason,
    });
  }
  return rows;
}
