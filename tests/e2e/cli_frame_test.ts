import assert from "node:assert/strict";
import { cli } from "../../fixtures/cli.ts";

Deno.test("--help lists the command groups of the seed plus plan/apply/capture/repair/drift", async () => {
  const r = await cli(["--help"]);
  assert.equal(r.code, 0);
  for (
    const c of [
      "init",
      "create",
      "list",
      "use",
      "delete",
      "run",
      "status",
      "plan",
      "apply",
      "capture",
      "repair",
      "drift",
      "commit",
      "rollback",
      "node",
      "model",
      "workflow",
      "export",
      "import",
      "adopt",
      "completions",
    ]
  ) {
    assert.match(r.stdout, new RegExp(`^  ${c}\\b`, "m"), `--help should list '${c}'`);
  }
});

Deno.test("--version prints the version from deno.json", async () => {
  const r = await cli(["--version"]);
  const { default: meta } = await import("../../deno.json", { with: { type: "json" } });
  assert.equal(r.stdout.trim(), meta.version);
});

Deno.test("an unknown command suggests the nearest one and exits 1", async () => {
  const r = await cli(["nod"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unknown command 'nod'/);
  assert.match(r.stderr, /Did you mean node\?/);
});

Deno.test("an unknown flag is an error, not ignored", async () => {
  const r = await cli(["list", "--jsn"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unknown option '--jsn'/);
  assert.match(r.stderr, /Did you mean --json\?/);
});

Deno.test("completions are generated for bash, zsh and fish; another shell is a clear error", async () => {
  for (const shell of ["bash", "zsh", "fish"]) {
    const r = await cli(["completions", shell]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /comfydock/);
    assert.match(r.stdout, /__complete/, "the script asks the CLI, so it never goes out of date");
  }
  const bad = await cli(["completions", "tcsh"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /error: no completions for shell 'tcsh'/);
  assert.match(bad.stderr, /hint: use bash, zsh or fish/);
});

Deno.test("--version after a command belongs to that command, not to the program", async () => {
  const r = await cli(["node", "update", "x", "--version", "1.2.0"], {
    env: { COMFYDOCK_HOME: "/nonexistent-cd" },
  });
  assert.equal(r.code, 1);
  assert.doesNotMatch(r.stdout, /^\d+\.\d+\.\d+$/m);
  assert.match(r.stderr, /no ComfyDock workspace/);
  const { wantsVersion } = await import("../../cmd/main.ts");
  assert.equal(wantsVersion(["--json", "-V"]), true);
  assert.equal(wantsVersion(["node", "update", "--version", "1"]), false);
});
