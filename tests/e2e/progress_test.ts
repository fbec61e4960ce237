/**
 * Long steps say what they do, on stderr (README "Progress"): a bar redrawn in place on a terminal, plain
 * lines every few seconds in pipes and CI, nothing that leaves the terminal changed when Ctrl-C stops it.
 * Downloads report amount, rate and ETA; uv's own lines are summarised live.
 */
import assert from "node:assert/strict";
import { testNeeds } from "../../fixtures/tools.ts";
import { join } from "node:path";
import { cli, cliTty, HAS_SCRIPT } from "../../fixtures/cli.ts";
import { makeEnvSkeleton } from "../../fixtures/env_skeleton.ts";
import { ModelServer } from "../../fixtures/model_server.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { run } from "../../lib/proc.ts";

const MiB = 1024 * 1024;

/** A file of `mib` MiB served 64 KiB every `delayMs`; returns its URL. */
function slowModel(server: ModelServer, name: string, mib: number, delayMs: number): string {
  const data = new Uint8Array(mib * MiB);
  for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
  const url = server.file(`/${name}`, data);
  server.fault(`/${name}`, { kind: "slow", chunk: 64 * 1024, delayMs });
  return url;
}

Deno.test("a download in a pipe: a step says why, then plain lines with amount, rate and ETA", async () => {
  await withTempDir(async (root) => {
    await using server = ModelServer.start();
    await makeEnvSkeleton(root, "e");
    const url = slowModel(server, "slow.safetensors", 4, 40); // 64 chunks, ~2.6 s
    const r = await cli(["model", "add", url, "--category", "checkpoints", "--no-apply"], {
      env: { COMFYDOCK_HOME: root },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /==> downloading http:\/\/127\.0\.0\.1:\d+\/slow\.safetensors to learn its sha256/,
    );
    assert.match(
      r.stderr,
      /\.\.\. downloading slow\.safetensors: \d+% [\d.]+ (KiB|MiB) of 4\.0 MiB, [\d.]+ (KiB|MiB)\/s, ETA \d+s, \d+s elapsed$/m,
    );
    assert.match(r.stderr, /✓ downloading slow\.safetensors: 4\.0 MiB in \d+s/);
    // deno-lint-ignore no-control-regex -- a pipe gets no terminal control at all
    assert.doesNotMatch(r.stderr, /\r|\x1b/);
  });
});

testNeeds(
  HAS_SCRIPT ? null : "util-linux 'script' for a pseudo-terminal",
  "on a terminal: one bar redrawn in place; Ctrl-C leaves the cursor and line wrapping as they were",
  async () => {
    await withTempDir(async (root) => {
      await using server = ModelServer.start();
      await makeEnvSkeleton(root, "e");
      const url = slowModel(server, "big.safetensors", 8, 100); // ~13 s: stopped long before
      const r = await cliTty(["model", "add", url, "--category", "checkpoints", "--no-apply"], {
        env: { COMFYDOCK_HOME: root },
        waitFor: /\[#*-*\] downloading big\.safetensors: \d+%/,
        keys: "\x03",
      });
      assert.equal(r.code, 130, r.output);
      // deno-lint-ignore no-control-regex -- the redraw (carriage return, erase line) is what is checked
      assert.match(r.raw, /\r\x1b\[2K\[#*-*\] downloading big\.safetensors: \d+% .* of 8\.0 MiB, .*\/s, ETA/);
      // The cursor is never hidden and wrapping never switched off, so nothing is left to restore.
      assert.ok(!r.raw.includes("\x1b[?25l"), "cursor hidden");
      assert.ok(!r.raw.includes("\x1b[?7l"), "line wrapping switched off");
    });
  },
);

Deno.test("uv's own lines are summarised live while it runs, and its result closes the task", async () => {
  await withTempDir(async (dir) => {
    const { paths, env } = await createRealEnv(join(dir, "home"), "e");
    const realUv = env.COMFYDOCK_UV ?? "uv";
    // A uv that takes its time in `sync`, as a torch download does, saying so on its stderr.
    const slowUv = join(dir, "slow-uv");
    await Deno.writeTextFile(
      slowUv,
      `#!/bin/sh\nif [ "$1" = sync ]; then echo "Downloading torch (750.0MiB)" >&2; sleep 2; fi\nexec '${realUv}' "$@"\n`,
    );
    await Deno.chmod(slowUv, 0o755);
    await run(realUv, ["pip", "uninstall", "--python", join(paths.venv, "bin", "python"), "alpha"], {
      env: { UV_PYTHON_DOWNLOADS: "never" },
    });
    const r = await cli(["apply", "--yes"], { env: { ...env, COMFYDOCK_UV: slowUv } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /\.\.\. installing packages \(uv sync\): \d+s elapsed \(Downloading torch \(750\.0MiB\)\)/,
    );
    assert.match(r.stderr, /✓ installing packages \(uv sync\): .*Installed 1 package in/);
  });
});
