/**
 * `node remove` of a node that tracked workflows need (issue #18): it names them and asks, default No; and the
 * plan's reason for a node removed on purpose says so ("removed from .cec"), while a folder nobody recorded
 * keeps the capture hint. The CLI as a user types it, in a pseudo-terminal where a question is asked.
 */
import assert from "node:assert/strict";
import { testNeeds } from "../../fixtures/tools.ts";
import { join } from "node:path";
import { cli, cliTty, HAS_SCRIPT } from "../../fixtures/cli.ts";
import { makeNodeRepo } from "../../fixtures/node_git.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { deadUrl } from "../../fixtures/registry_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";

testNeeds(
  HAS_SCRIPT ? null : "util-linux 'script' for a pseudo-terminal",
  "node remove: names the tracked workflows that need the node and asks (default No)",
  async () => {
    await withTempDir(async (dir) => {
      const { paths, env: base } = await createRealEnv(join(dir, "home"), "e");
      const env = { ...base, COMFYDOCK_REGISTRY_URL: await deadUrl(), COMFYDOCK_HTTP_RETRY_BASE_MS: "1" };
      const run = (...args: string[]) => cli(args, { env });
      const repo = await makeNodeRepo(dir, "kappa-pack", [{ tag: "v1", pack: { classes: ["KappaOne"] } }]);
      let r = await run("node", "add", `${repo.url}@v1`, "--yes");
      assert.equal(r.code, 0, r.stderr);
      await Deno.mkdir(paths.userWorkflows, { recursive: true });
      const wf = {
        nodes: [{ id: 1, type: "KappaOne", mode: 0, properties: { cnr_id: "kappa-pack" } }],
        links: [],
      };
      for (const name of ["portrait", "upscale"]) {
        await Deno.writeTextFile(join(paths.userWorkflows, `${name}.json`), JSON.stringify(wf));
      }
      r = await run("workflow", "track", "--all", "--yes");
      assert.equal(r.code, 0, r.stderr);
      const before = await Deno.readTextFile(paths.pyproject);

      // No terminal and no --yes: nobody can answer, so nothing changes; the message names the workflows.
      r = await run("node", "remove", "kappa-pack");
      assert.equal(r.code, 1);
      assert.match(r.stderr, /tracked workflows need node 'kappa-pack': portrait, upscale/);
      assert.match(r.stderr, /pass --yes/);
      assert.equal(await Deno.readTextFile(paths.pyproject), before);

      // At a terminal, Enter takes the default: No. Nothing changes.
      const t = await cliTty(["node", "remove", "kappa-pack"], {
        env,
        keys: "\r",
        waitFor: /Remove it anyway\?/,
      });
      assert.match(t.output, /portrait, upscale/);
      console.log(JSON.stringify(t.output));
      assert.match(t.output, /Remove it anyway\?\r?\n│ {2}○ Yes \/ ● No/, "No is the preselected answer");
      assert.match(t.output, /Remove it anyway\?\r?\n│ {2}No\r?\n/);
      assert.match(t.output, /Node 'kappa-pack' was not removed; \.cec is unchanged\./);
      assert.equal(await Deno.readTextFile(paths.pyproject), before);

      // --yes removes it; the plan's reason says it was removed on purpose.
      r = await run("node", "remove", "kappa-pack", "--yes", "--no-apply");
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /tracked workflows need node 'kappa-pack': portrait, upscale/);
      r = await run("plan");
      assert.match(r.stdout, /- node\.kappa-pack will be removed: removed from \.cec\n/);
      // A folder nobody recorded keeps the capture hint.
      await Deno.mkdir(join(paths.customNodes, "hand-made"));
      r = await run("plan");
      assert.match(
        r.stdout,
        /- node\.hand-made will be removed: not in \.cec \(installed by hand\); run 'comfydock capture'/,
      );
    });
  },
);
