/**
 * action.yml as the runner reads it: every input mapped to the entrypoint, Deno pinned, and the step's own
 * command line (with `${{ ... }}` expanded as GitHub would) run against the local GitHub API server.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { startGitHubServer } from "../../fixtures/github_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");
const ACTION = await Deno.readTextFile(join(ROOT, "action.yml"));

/** The `key:` entries (two-space indented) of a top-level section, with their `default:` when given. */
function section(name: string): Map<string, string | undefined> {
  const body = new RegExp(`^${name}:\\n((?:(?: .*)?\\n)*)`, "m").exec(ACTION)?.[1] ?? "";
  const out = new Map<string, string | undefined>();
  for (const m of body.matchAll(/^ {2}([\w-]+):\n((?: {4}.*\n)*)/gm)) {
    const def = /^ {4}default: (.*)$/m.exec(m[2])?.[1];
    out.set(m[1], def?.replace(/^"(.*)"$/, "$1"));
  }
  return out;
}

Deno.test("action.yml: Deno pinned, every input mapped to INPUT_*, every output from the step", () => {
  // setup-deno v2.0.3 by its full commit sha (a tag can be moved), Deno by version, the CLI by deno.lock.
  assert.match(
    ACTION,
    /uses: denoland\/setup-deno@e95548e56dfa95d4e1a28d6f422fafe75c4c26fb\n\s+with:\n\s+deno-version: 2\.9\.6\n/,
  );
  assert.match(ACTION, /deno run -A --frozen --config "\$\{\{ github\.action_path \}\}\/deno\.json"/);
  const inputs = section("inputs");
  assert.deepEqual([...inputs.keys()], [
    "command",
    "environment",
    "name",
    "workspace",
    "machine",
    "locked",
    "approved-plan",
    "untrusted",
    "github-token",
    "working-directory",
    "comment",
    "drift-label",
  ]);
  for (const name of inputs.keys()) {
    const envName = `INPUT_${name.toUpperCase().replaceAll("-", "_")}`;
    assert.match(
      ACTION,
      new RegExp(`^ +${envName}: \\$\\{\\{ inputs\\.${name} \\}\\}$`, "m"),
      `${name} is mapped`,
    );
  }
  for (const out of section("outputs").keys()) {
    assert.match(
      ACTION,
      new RegExp(`value: \\$\\{\\{ steps\\.comfydock\\.outputs\\.${out} \\}\\}`),
      `${out} is forwarded`,
    );
  }
});

Deno.test("action.yml: the step's command line, expanded as the runner does, posts the plan comment", async () => {
  await withTempDir(async (dir) => {
    const server = startGitHubServer();
    try {
      // The working directory is the workspace; its environments/prod is a real, converged environment.
      const { env: realEnv } = await createRealEnv(join(dir, "ws"), "prod");
      const pr = server.addPullRequest("acme/studio");
      await Deno.writeTextFile(join(dir, "event.json"), JSON.stringify({ pull_request: { number: pr } }));

      const given: Record<string, string> = { command: "plan", environment: "environments/prod/.cec" };
      const inputs = section("inputs");
      const expand = (s: string): string =>
        s.replaceAll("${{ github.action_path }}", ROOT)
          .replaceAll("${{ github.token }}", server.token)
          .replace(/\$\{\{ inputs\.([\w-]+) \}\}/g, (_m, n: string): string => {
            const def = inputs.get(n);
            return given[n] ?? (def === undefined ? "" : def.startsWith("${{") ? expand(def) : def);
          });
      const stepEnv: Record<string, string> = {};
      const envBlock = /^ {6}env:\n((?: {8}.*\n)+)/m.exec(ACTION)![1];
      for (const m of envBlock.matchAll(/^ {8}([\w-]+): (.*)$/gm)) {
        stepEnv[m[1]] = expand(m[2]).replace(/^"(.*)"$/, "$1");
      }
      const run = expand(
        /^ {6}run: >-\n((?: {8}.*\n)+)/m.exec(ACTION)![1].split("\n").map((l) => l.trim()).join(" ").trim(),
      );
      const args = [...run.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]);
      assert.equal(args[0], "deno");

      const out = await new Deno.Command(Deno.execPath(), {
        args: args.slice(1),
        cwd: join(dir, "ws"),
        env: {
          ...stepEnv,
          ...realEnv,
          GITHUB_API_URL: server.url,
          GITHUB_REPOSITORY: "acme/studio",
          GITHUB_EVENT_NAME: "pull_request",
          GITHUB_EVENT_PATH: join(dir, "event.json"),
          GITHUB_OUTPUT: join(dir, "out"),
          GITHUB_STEP_SUMMARY: join(dir, "summary"),
          GITHUB_WORKSPACE: join(dir, "ws"),
          RUNNER_NAME: "gpu-1",
          RUNNER_TEMP: dir,
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      const outputs = await Deno.readTextFile(join(dir, "out"));
      assert.match(outputs, /^exitcode<<(\S+)\n0\n\1$/m);
      assert.match(outputs, /^plan-json<<(\S+)\n(.*)\n\1$/m);
      assert.ok(
        /^plan-json<<\S+\n(.*)$/m.exec(outputs)![1].startsWith(dir),
        "the plan JSON is under RUNNER_TEMP",
      );
      const comments = server.comments("acme/studio", pr);
      assert.equal(comments.length, 1);
      assert.match(comments[0].body, /<!-- comfydock:plan:gpu-1\/prod -->[\s\S]*No changes/);
    } finally {
      await server.close();
    }
  });
});
