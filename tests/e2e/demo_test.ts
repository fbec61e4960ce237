/**
 * The README's first command, `deno task demo`, as a user runs it: the whole loop on the built-in example,
 * offline, ending reconciled, with nothing left in the temp folder (it says "Run with --keep to look around").
 * The demo checks every exit code it expects itself; this asserts the loop's milestones as it prints them.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { useLocalUv } from "../../fixtures/tools.ts";

await useLocalUv();

Deno.test("deno task demo: the whole loop, offline, ends with the environment matching .cec and leaves nothing", async () => {
  const tmp = Deno.env.get("TMPDIR") || "/tmp";
  const demos = async () =>
    (await Array.fromAsync(Deno.readDir(tmp))).map((e) => e.name).filter((n) =>
      n.startsWith("comfydock-demo-")
    );
  const before = await demos();
  // One stream, as a terminal shows it: the order of what the commands print is what is checked.
  const out = await new Deno.Command("sh", {
    args: ["-c", `"$0" task demo 2>&1`, Deno.execPath()],
    cwd: fileURLToPath(new URL("../..", import.meta.url)),
    env: { NO_COLOR: "1" },
    stdout: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, text);
  // In this order: converged and healthy, drift found, healed and healthy, a stale saved plan refused, done.
  const milestones = [
    /No changes\. Environment matches \.cec\./,
    /Health of 'demo': healthy: ComfyUI started, 2 custom node pack\(s\) loaded/,
    /── 4\. Drift: someone changes the machine by hand/,
    /Apply complete! \d+ added, \d+ changed, \d+ removed\./,
    /Health of 'demo': healthy/,
    /No changes\. Environment matches \.cec\./,
    /error: Saved plan is stale/,
    /No changes\. Environment matches \.cec\./,
    /── Done: the environment matches \.cec again/,
  ];
  let at = 0;
  for (const m of milestones) {
    const i = text.slice(at).search(m);
    assert.ok(i >= 0, `${m} after offset ${at}:\n${text}`);
    at += i + 1;
  }
  assert.deepEqual((await demos()).filter((n) => !before.includes(n)), [], "its workspace is removed");
});
