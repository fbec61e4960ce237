/**
 * N writers at once (issue #16, measured: 9 of 15 rounds lost a change that exited 0). Every command that
 * changes `.cec` holds the environment's lock across its whole change: a command that exits 0 has its change
 * in the final `.cec` (one commit each, working tree clean); the others exit 1 naming the holder and changed
 * nothing; with --lock-timeout they wait their turn and all succeed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, type CliResult } from "../../fixtures/cli.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { startRegistryServer } from "../../fixtures/registry_server.ts";
import { run } from "../../lib/proc.ts";
import { tempRoot } from "../../fixtures/tmp.ts";

const root = await tempRoot("comfydock-e2e-concurrency-");
const { paths, env: realEnv } = await createRealEnv(join(root, "ws"), "env");
const ids = ["n1", "n2", "n3", "n4", "n5", "n6"];
const server = await startRegistryServer(
  ids.map((id) => ({
    id: `${id}-nodes`,
    versions: [{ version: "1.0.0", pack: { requirements: ["epsilon"] } }],
  })),
);
const env = { ...realEnv, COMFYDOCK_REGISTRY_URL: server.url, COMFYDOCK_HTTP_RETRY_BASE_MS: "5" };
const models = join(root, "models");
await Deno.mkdir(models);

/** The writers of one round: node adds (one applied) and a model add, all at the same moment. */
function writers(
  nodes: string[],
  model: string,
  extra: string[],
): { what: RegExp; run: Promise<CliResult> }[] {
  return [
    ...nodes.map((id, i) => ({
      what: new RegExp(`\\[tool\\.comfydock\\.nodes\\.${id}-nodes\\]`),
      run: cli(["node", "add", `${id}-nodes`, ...(i === 0 ? ["--yes"] : ["--no-apply"]), ...extra], { env }),
    })),
    {
      what: new RegExp(`\\[tool\\.comfydock\\.models\\.${model}\\]`),
      run: cli([
        "model",
        "add",
        join(models, `${model}.safetensors`),
        "--category",
        "checkpoints",
        "--no-apply",
        ...extra,
      ], {
        env,
      }),
    },
  ];
}

async function commits(): Promise<string[]> {
  return (await run("git", ["-C", paths.cec, "log", "--format=%s"])).stdout.trim().split("\n");
}

async function round(
  nodes: string[],
  model: string,
  extra: string[],
): Promise<{ ok: number; locked: number }> {
  await Deno.writeFile(join(models, `${model}.safetensors`), crypto.getRandomValues(new Uint8Array(4096)));
  const before = await commits();
  const ws = writers(nodes, model, extra);
  const results = await Promise.all(ws.map((w) => w.run));
  const text = await Deno.readTextFile(paths.pyproject);
  let ok = 0, locked = 0;
  for (const [i, r] of results.entries()) {
    if (r.code === 0) {
      ok++;
      assert.match(text, ws[i].what, `writer ${i} exited 0 but its change is missing:\n${r.stderr}`);
    } else {
      locked++;
      assert.match(
        r.stderr,
        /locked by pid \d+ on .* \('comfydock /,
        `writer ${i} failed otherwise:\n${r.stderr}`,
      );
      assert.doesNotMatch(r.stderr, /unexpected|database is locked|index\.lock/);
      assert.doesNotMatch(text, ws[i].what, `writer ${i} failed but its change is there`);
    }
  }
  assert.equal((await commits()).length - before.length, ok, "one commit per successful change");
  assert.equal(
    (await run("git", ["-C", paths.cec, "status", "--porcelain"])).stdout,
    "",
    "no leftovers in .cec",
  );
  const plan = await cli(["plan", "--detailed-exitcode"], { env });
  assert.ok(plan.code === 0 || plan.code === 2, plan.stderr); // --no-apply changes may be left to apply
  return { ok, locked };
}

Deno.test("concurrent writers without waiting: every success is kept, every loser names the holder", async () => {
  const { ok, locked } = await round(["n1", "n2", "n3"], "m1", []);
  assert.equal(ok + locked, 4);
  assert.ok(ok >= 1, "at least one writer got the lock");
});

Deno.test("concurrent writers with --lock-timeout: they queue and all four changes land", async () => {
  const { ok } = await round(["n4", "n5", "n6"], "m2", ["--lock-timeout", "120"]);
  assert.equal(ok, 4);
});
