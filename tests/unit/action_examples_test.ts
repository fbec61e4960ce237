/**
 * The example workflows (examples/github/*.yml) against the contract the README states: third-party actions
 * pinned by full commit sha, only inputs action.yml has, every GPU job keyed by its machine and using the same
 * workspace, the permissions each command needs.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const ACTION = await Deno.readTextFile(join(ROOT, "action.yml"));
const INPUTS = new Set(
  [...(/^inputs:\n((?:(?: .*)?\n)*)/m.exec(ACTION)?.[1] ?? "").matchAll(/^ {2}([\w-]+):$/gm)].map((m) =>
    m[1]
  ),
);
const read = (name: string) => Deno.readTextFile(join(ROOT, "examples", "github", name));

/** The `with:` keys of each step that uses ComfyDock's action. */
function comfydockSteps(text: string): Map<string, string>[] {
  const steps: Map<string, string>[] = [];
  for (const m of text.matchAll(/uses: comfydock\/comfydock@\S+\n(\s+)with:\n((?:\1 {2}.*\n)+)/g)) {
    steps.push(new Map([...m[2].matchAll(/^\s+([\w-]+): (.*)$/gm)].map((k) => [k[1], k[2]])));
  }
  return steps;
}

Deno.test("examples: actions pinned by full commit sha, only known inputs, one machine and workspace per GPU job", async () => {
  const files = {
    plan: await read("plan.yml"),
    apply: await read("apply.yml"),
    drift: await read("drift.yml"),
  };
  for (const [name, text] of Object.entries(files)) {
    for (const [, ref] of text.matchAll(/uses: (\S+)/g)) {
      if (ref.startsWith("comfydock/comfydock@")) continue; // ours: the comment above says to pin a release
      assert.match(ref, /^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/, `${name}: ${ref} is pinned by commit`);
    }
    assert.match(text, /pin it to a release's full commit sha/);
    const steps = comfydockSteps(text);
    assert.ok(steps.length > 0, `${name} uses the action`);
    for (const step of steps) {
      for (const key of step.keys()) {
        assert.ok(INPUTS.has(key), `${name}: '${key}' is an input of action.yml`);
      }
      if (step.get("command") === "validate") continue;
      assert.equal(
        step.get("machine"),
        "${{ matrix.machine }}",
        `${name}: comments and issues name the machine`,
      );
      assert.equal(step.get("workspace"), "~/comfydock", `${name}: one workspace for plan, apply and drift`);
    }
    // Every GPU job is a matrix over runner labels.
    assert.match(text, /runs-on: \[self-hosted, "\$\{\{ matrix\.machine \}\}"\]/);
  }
  assert.match(files.plan, /pull-requests: write/);
  assert.match(
    files.plan,
    /validate:\n[\s\S]*?runs-on: ubuntu-24\.04\n[\s\S]*?command: validate/,
    "validate runs hosted",
  );
  assert.match(files.apply, /pull-requests: read/);
  assert.match(
    files.apply,
    /approved-plan: \$\{\{ github\.event_name == 'workflow_dispatch' && 'auto-approve' \|\| 'required' \}\}/,
  );
  assert.match(files.apply, /group: comfydock-apply-\$\{\{ matrix\.machine \}\}/);
  assert.match(files.drift, /issues: write/);
});
