/**
 * `comfydock validate [PATH]` as CI runs it on a pull request: a checked-out `.cec` with no environment
 * beside it. Every check names what is wrong; a valid `.cec` exits 0.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, envelopeOf, jsonData } from "../../fixtures/cli.ts";
import { makeNodeRepo } from "../../fixtures/node_git.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { startRegistryServer } from "../../fixtures/registry_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { run } from "../../lib/proc.ts";

Deno.test("validate: a checked-out .cec is valid; bad pins, a stale lock and a missing commit are named", async () => {
  const registry = await startRegistryServer([
    { id: "good-pack", versions: [{ version: "1.0.0" }] },
    {
      id: "banned-pack",
      versions: [{ version: "2.0.0", status: "NodeVersionStatusBanned", status_reason: "malware" }],
    },
  ]);
  try {
    await withTempDir(async (dir) => {
      const { paths, env: base } = await createRealEnv(join(dir, "home"), "e");
      const env = { ...base, COMFYDOCK_REGISTRY_URL: registry.url };
      const repo = await makeNodeRepo(dir, "git-pack", [{ tag: "v1" }]);
      // The PR checkout: a clone of .cec somewhere else, no ComfyUI, no venv.
      const checkout = join(dir, "pr", ".cec");
      await run("git", ["clone", "--quiet", paths.cec, checkout]);
      const validate = (...extra: string[]) => cli(["validate", checkout, "--json", ...extra], { env });

      const ok = await validate();
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      assert.equal(jsonData(ok).valid, true);

      const pyproject = join(checkout, "pyproject.toml");
      const original = await Deno.readTextFile(pyproject);
      await Deno.writeTextFile(
        pyproject,
        original +
          '\n[tool.comfydock.nodes.good-pack]\nsource = "registry"\nversion = "9.9.9"\n' +
          '\n[tool.comfydock.nodes.banned-pack]\nsource = "registry"\nversion = "2.0.0"\n' +
          `\n[tool.comfydock.nodes.git-pack]\nsource = "git"\nrepository = "${repo.url}"\n` +
          `commit = "${"0".repeat(40)}"\n` +
          '\n[tool.comfydock.models.orphan]\nsha256 = "' + "a".repeat(64) +
          '"\ncategory = "loras"\nfilename = "orphan.safetensors"\n',
      );
      const bad = await validate();
      assert.equal(bad.code, 1);
      const doc = envelopeOf(bad);
      assert.equal(doc.ok, false);
      assert.equal(!doc.ok && doc.error.code, "CEC_INVALID");
      // deno-lint-ignore no-explicit-any -- the data shape asserted below
      const out = doc.data as any;
      assert.equal(out.valid, false);
      const errors = out.errors.join("\n");
      assert.match(errors, /good-pack: the pinned version 9\.9\.9 is no longer in the registry/);
      assert.match(errors, /banned-pack: the pinned version 2\.0\.0 is banned .*malware/);
      assert.match(errors, /nodes\.git-pack\.commit: 0{40} is not in /);
      assert.match(out.warnings.join("\n"), /model orphan .* has no download source/);

      // A dependency added without re-locking: the lock no longer matches.
      await Deno.writeTextFile(pyproject, original.replace('"beta>=2",', '"beta>=2",\n  "delta",'));
      const stale = await validate("--offline");
      assert.equal(stale.code, 1);
      assert.match(
        (envelopeOf(stale).data as { errors: string[] }).errors.join("\n"),
        /uv\.lock is out of date with pyproject\.toml/,
      );

      const missing = await cli(["validate", join(dir, "nowhere")], { env });
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /has no pyproject\.toml/);
    });
  } finally {
    await registry.close();
  }
});
