/** Per-resource sync state, derived from the desired state and a plan (pure). */
import type { DesiredState } from "./desired.ts";
import type { ActionKind, Plan } from "./types.ts";

export interface ResourceStatus {
  address: string;
  /** `note`: differs in a way apply does not touch (e.g. a workflow edited in the UI): capture or resolve it. */
  state: "in-sync" | "note" | ActionKind;
  reason: string;
}

export function resourceStatus(desired: DesiredState, plan: Plan): ResourceStatus[] {
  const addresses = [
    "comfyui",
    ...Object.keys(desired.nodes).map((id) => `node.${id}`),
    "packages",
    ...Object.keys(desired.models).map((k) => `model.${k}`),
    ...Object.keys(desired.workflows).map((w) => `workflow.${w}`),
  ];
  const byAddress = new Map(plan.actions.map((a) => [a.address, a]));
  const rows: ResourceStatus[] = addresses.map((address) => {
    const a = byAddress.get(address);
    if (a) return { address, state: a.kind, reason: a.reason };
    const note = plan.notes.find((n) => n.startsWith(`${address}:`));
    return note
      ? { address, state: "note", reason: note.slice(address.length + 1).trim() }
      : { address, state: "in-sync", reason: "" };
  });
  for (const a of plan.actions) {
    if (!addresses.includes(a.address)) rows.push({ address: a.address, state: a.kind, reason: a.reason });
  }
  return rows;
}
