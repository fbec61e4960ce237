/** Approved plans as data: the hash, the plan embedded in a comment and read back, what "the same plan" means. */
import assert from "node:assert/strict";
import { CdError } from "../../lib/errors.ts";
import type { Action, Plan } from "../../reconcile/types.ts";
import { approvalDifferences, embedPlan, MAX_EMBEDDED, readApprovedPlan } from "../../action/approval.ts";

const node = (id: string, kind: Action["kind"] = "create", after: unknown = { version: "1.0" }): Action => ({
  address: `node.${id}`,
  type: "node",
  kind,
  reason: "not installed",
  before: null,
  after: after as Action["after"],
  details: ["registry 1.0"],
});

const plan = (actions: Action[], over: Partial<Plan> = {}): Plan => ({
  format_version: 1,
  environment: "prod",
  created_at: "2026-11-25T04:00:00.000Z",
  fingerprints: { desired: "d".repeat(64), observed: "o".repeat(64) },
  actions,
  notes: [],
  ...over,
});

const planHash = async (p: Plan, machine: string) => (await embedPlan(p, machine, null)).hash;

Deno.test("the plan hash: environment, machine, desired state and actions; not time, words or what was observed", async () => {
  const p = plan([node("a")]);
  const h = await planHash(p, "gpu-1");
  assert.match(h, /^[0-9a-f]{64}$/);
  const later = plan([{ ...node("a"), reason: "reworded", details: [] }], {
    created_at: "2026-12-01T00:00:00.000Z",
    fingerprints: { desired: "d".repeat(64), observed: "x".repeat(64) },
    notes: ["a note"],
  });
  assert.equal(await planHash(later, "gpu-1"), h);
  assert.notEqual(await planHash(p, "gpu-2"), h);
  assert.notEqual(await planHash(plan([node("a", "create", { version: "1.1" })]), "gpu-1"), h);
  assert.notEqual(
    await planHash(plan([node("a")], { fingerprints: { desired: "e".repeat(64), observed: "" } }), "gpu-1"),
    h,
  );
});

Deno.test("an embedded plan reads back as approved; damaged, edited or missing ones are refused", async () => {
  const p = plan([node("a"), node("b", "delete", null)]);
  const { hash, marker } = await embedPlan(p, "gpu-1", "c".repeat(40));
  assert.ok(marker && marker.startsWith("<!-- comfydock:approved-plan v1 ") && marker.endsWith(" -->"));
  assert.ok(!marker.slice(4, -3).includes("--"), "nothing in the data can close the HTML comment");
  const body = `### plan\n\nPlan hash: \`${hash}\`.\n\n${marker}\n`;
  const approved = await readApprovedPlan(body, "the comment");
  assert.equal(approved.machine, "gpu-1");
  assert.equal(approved.head, "c".repeat(40));
  assert.deepEqual(approvalDifferences(approved, p, "gpu-1"), []);

  const refused = async (text: string, re: RegExp) =>
    await assert.rejects(
      () => readApprovedPlan(text, "the comment"),
      (e: unknown) => e instanceof CdError && e.code === "NO_APPROVED_PLAN" && re.test(e.message),
    );
  await refused("### plan\n", /holds no plan that can be approved/);
  await refused(body.replace(/v1 \S{10}/, "v1 AAAAAAAAAA"), /cannot be read/);
  await refused(body.replace(hash, "0".repeat(64)), /not the one whose hash the comment shows/);
});

Deno.test("a plan too large to embed is not embedded (and so cannot be approved)", async () => {
  // Random reasons do not compress: far more than MAX_EMBEDDED characters of base64.
  const big = Array.from({ length: 800 }, (_, i) => ({
    ...node(`n${i}`),
    after: { sha256: crypto.randomUUID() + crypto.randomUUID() },
  }));
  const { hash, marker } = await embedPlan(plan(big), "gpu-1", null);
  assert.equal(marker, null);
  assert.match(hash, /^[0-9a-f]{64}$/);
  assert.ok(MAX_EMBEDDED < 65_536);
});

Deno.test("approval differences: one line per resource, the .cec, the machine", async () => {
  const approvedPlan = plan([node("a"), node("b")]);
  const { hash, marker } = await embedPlan(approvedPlan, "gpu-1", "c".repeat(40));
  const approved = await readApprovedPlan(`Plan hash: \`${hash}\`\n${marker}`, "c");
  assert.deepEqual(
    approvalDifferences(
      approved,
      plan([node("a", "create", { version: "2.0" }), node("z", "delete", null)]),
      "gpu-1",
    ),
    [
      "node.a: create now does something else (not installed)",
      "node.z: delete (not installed) is not in the approved plan",
      "node.b: create is in the approved plan but not needed any more",
    ],
  );
  assert.deepEqual(
    approvalDifferences(
      approved,
      plan([node("a"), node("b")], { fingerprints: { desired: "e", observed: "" } }),
      "gpu-2",
    ),
    [
      "the approved plan is for 'prod' on gpu-1, not 'prod' on gpu-2",
      ".cec differs from the one the plan was approved for (pull request head cccccccccccc): the branch was not up to date with main, or main changed after it",
    ],
  );
});
