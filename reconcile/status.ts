/** Per-resource sync state, derived from the desired state and a plan (pure). */
import type { DesiredState } from "./desired.ts";
import type { ActionKind, Plan } from "./types.ts";

export interface ResourceStatus {
  address: string;
  state: "in-sync" | ActionKind;
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
    return a ? { address, state: a.kind, reason: a.reason } : { address, state: "in-sync", reason: "" };
  });
  for (const a of plan.actions) {
    if (!addresses.includes(a.address)) rows.push({ address: a.address, state: a.kind, reason: a.reason });
  }
  return rows;
}
