/** Saved plans (`plan --out`, `apply FILE`): versioned JSON, validated when read back. */
import { z } from "zod";
import { CdError } from "../lib/errors.ts";
import type { Json, Plan } from "./types.ts";

const JsonValue: z.ZodType<Json> = z.lazy(() =>
  z.union([
    z.null(),
    z.boolean(),
    z.number(),
    z.string(),
    z.array(JsonValue),
    z.record(z.string(), JsonValue),
  ])
);

const PlanSchema = z.object({
  format_version: z.literal(1),
  environment: z.string(),
  created_at: z.string(),
  fingerprints: z.object({ desired: z.string(), observed: z.string() }),
  targets: z.array(z.string()).optional(),
  actions: z.array(z.object({
    address: z.string(),
    type: z.enum(["comfyui", "node", "packages", "model", "workflow"]),
    kind: z.enum(["create", "update", "replace", "delete"]),
    reason: z.string(),
    before: JsonValue,
    after: JsonValue,
    details: z.array(z.string()).optional(),
  })),
  notes: z.array(z.string()),
});

export async function readPlanFile(file: string): Promise<Plan> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new CdError("PLAN_FILE_UNREADABLE", `cannot read plan file ${file}: ${(e as Error).message}`, {
      hint: "make one with 'comfydock plan --out FILE'",
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new CdError("PLAN_FILE_INVALID", `${file} is not JSON`, {
      hint: "make one with 'comfydock plan --out FILE'",
    });
  }
  const fv = (raw as { format_version?: unknown })?.format_version;
  if (typeof fv === "number" && fv > 1) {
    throw new CdError("PLAN_FILE_NEWER", `${file} has format_version ${fv}; this ComfyDock reads version 1`, {
      hint: "upgrade ComfyDock, or make the plan again with this version",
    });
  }
  const r = PlanSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new CdError("PLAN_FILE_INVALID", `${file}: ${issue.path.join(".") || "(root)"}: ${issue.message}`, {
      hint: "make the plan again with 'comfydock plan --out FILE'",
    });
  }
  return r.data;
}
