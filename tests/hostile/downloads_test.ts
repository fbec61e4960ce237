/**
 * Servers built to hurt: one that drips (1 byte every 2 s), one that sends more than the declared size
 * without a Content-Length, one that streams without end when no size is declared. Each ends with a clear
 * error within the configured bounds (tests set small ones: COMFYDOCK_DOWNLOAD_STALL_SECONDS,
 * COMFYDOCK_DOWNLOAD_MAX_BYTES, COMFYDOCK_DOWNLOAD_MIN_RATE), nothing oversized is left on disk, `.cec` is
 * unchanged. And one that goes silent after a good start, which is resumed, not failed (README "Downloads
 * are bounded").
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli } from "../../fixtures/cli.ts";
import { randomBytes } from "../../fixtures/model_files.ts";
import { ModelServer } from "../../fixtures/model_server.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { CdError } from "../../lib/errors.ts";
import { exists, listFiles, sha256Hex } from "../../lib/fsx.ts";
import { DEFAULT_NET } from "../../lib/http.ts";
import { downloadModel, partPathFor } from "../../providers/models/download.ts";
import type { SourceConfig } from "../../providers/models/sources.ts";

const DATA = randomBytes(256 * 1024);
const SHA = sha256Hex(DATA);

function cfg(server: ModelServer, download: Partial<typeof DEFAULT_NET.download> = {}): SourceConfig {
  return {
    hfEndpoint: server.url,
    civitaiApi: server.civitaiApi,
    net: { http: DEFAULT_NET.http, download: { ...DEFAULT_NET.download, ...download } },
  };
}

Deno.test("hostile downloads: a drip (1 byte every 2 s) ends with a clear error after one stall window", async () => {
  await using server = ModelServer.start();
  const url = server.file("/m/drip.bin", DATA);
  server.fault("/m/drip.bin", { kind: "slow", chunk: 1, delayMs: 2000 });
  await withTempDir(async (dir) => {
    const dest = join(dir, "out.bin");
    const t0 = performance.now();
    const err = await downloadModel(
      cfg(server, { stallMs: 1000 }),
      [{ type: "url", url }],
      { sha256: SHA, size: DATA.length },
      dest,
      join(dir, ".dl"),
      { retryBaseMs: 10 },
    ).then(() => null, (e) => e);
    const seconds = (performance.now() - t0) / 1000;
    assert.ok(err instanceof CdError, String(err));
    assert.equal(err.code, "MODEL_DOWNLOAD_FAILED");
    assert.match(err.message, /too slow, \d+ bytes in the last 1 s \(slower than 1024 bytes\/s\)/);
    assert.ok(seconds < 5, `ended after ${seconds.toFixed(1)} s`);
    assert.equal(server.count("/m/drip.bin"), 1, "a drip is not retried");
    assert.equal(await exists(dest), false);
    console.log(`drip: error after ${seconds.toFixed(2)} s (stall window 1 s)`);
  });
});

Deno.test("hostile downloads: a stall after a good start (data, then silence on an open connection) is resumed with a Range request", async () => {
  await using server = ModelServer.start();
  const url = server.file("/m/stall.bin", DATA);
  const good = 100 * 1024;
  server.fault("/m/stall.bin", { kind: "stall", afterBytes: good });
  await withTempDir(async (dir) => {
    const dest = join(dir, "out.bin");
    const logs: string[] = [];
    const r = await downloadModel(
      cfg(server, { stallMs: 500 }),
      [{ type: "url", url }],
      { sha256: SHA, size: DATA.length },
      dest,
      join(dir, ".dl"),
      { retryBaseMs: 10, log: (l) => logs.push(l) },
    );
    assert.equal(r.sha256, SHA);
    assert.equal(sha256Hex(await Deno.readFile(dest)), SHA);
    // The connection never broke: only the rate rule can have ended it, and the retry asks for the rest.
    assert.match(logs.join("\n"), new RegExp(`stalled at ${good} bytes: 0 bytes in the last 0\\.5 s`));
    assert.deepEqual(server.requests.map((x) => x.range), [null, `bytes=${good}-`]);
  });
});

Deno.test("hostile downloads: more than the declared size without Content-Length is cut there, the part deleted", async () => {
  await using server = ModelServer.start();
  const url = server.file("/m/fat.bin", DATA);
  server.fault("/m/fat.bin", { kind: "noLength" });
  server.fault("/m/fat.bin", { kind: "extra", bytes: 4 * 1024 * 1024 });
  await withTempDir(async (dir) => {
    const dest = join(dir, "out.bin");
    const parts = join(dir, ".dl");
    const err = await downloadModel(
      cfg(server),
      [{ type: "url", url }],
      { sha256: SHA, size: DATA.length },
      dest,
      parts,
      { retryBaseMs: 10 },
    ).then(() => null, (e) => e);
    assert.ok(err instanceof CdError, String(err));
    assert.match(err.message, /sent more than 262144 bytes \(the size pyproject\.toml declares\)/);
    assert.equal(await exists(dest), false);
    assert.equal(await exists(partPathFor(parts, { sha256: SHA, size: DATA.length }, [])), false);
    assert.equal(server.count("/m/fat.bin"), 1, "not retried: the source serves something else");
  });
});

Deno.test("hostile downloads: through the CLI, no size declared and no end in sight, a drip, or slower than a COMFYDOCK_DOWNLOAD_MIN_RATE above the default: clear errors, .cec unchanged", async () => {
  await using server = ModelServer.start();
  const steadyData = randomBytes(128 * 1024);
  const steady = server.file("/m/steady.safetensors", steadyData);
  // About 80 KB/s: 80 times the default minimum (1024 bytes/s), well under the 256 KiB/s set below.
  server.fault("/m/steady.safetensors", { kind: "slow", chunk: 8 * 1024, delayMs: 100 });
  const endless = server.file("/m/endless.safetensors", randomBytes(2 * 1024 * 1024));
  server.fault("/m/endless.safetensors", { kind: "noLength" });
  const drip = server.file("/flows/drip.json", new TextEncoder().encode('{"nodes":[]}'.padEnd(4096)));
  server.fault("/flows/drip.json", { kind: "slow", chunk: 1, delayMs: 2000 });
  await withTempDir(async (dir) => {
    const { paths, env: base } = await createRealEnv(join(dir, "home"), "e");
    const env = {
      ...base,
      HOME: dir,
      COMFYDOCK_DOWNLOAD_MAX_BYTES: String(64 * 1024),
      COMFYDOCK_DOWNLOAD_STALL_SECONDS: "1",
      COMFYDOCK_HTTP_RETRY_BASE_MS: "5",
    };
    const before = await Deno.readTextFile(paths.pyproject);
    let r = await cli(["model", "add", endless, "--category", "checkpoints", "--yes"], { env });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      /sent more than 65536 bytes \(COMFYDOCK_DOWNLOAD_MAX_BYTES\); the partial download was deleted/,
    );
    assert.match(r.stderr, /raise COMFYDOCK_DOWNLOAD_MAX_BYTES/);
    const leftovers = (await listFiles(paths.workspace.modelStore)).filter((f) => !f.endsWith(".lock"));
    assert.deepEqual(leftovers, [], "nothing of it is kept");

    const t0 = performance.now();
    r = await cli(["workflow", "import", drip, "--yes"], { env });
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /could not download .*drip\.json: \d+ bytes in the last 1 s/);
    assert.ok(seconds < 10, `ended after ${seconds.toFixed(1)} s`);

    const addSteady = ["model", "add", steady, "--category", "checkpoints", "--yes"];
    // No size cap in the way: only the rate may end this one.
    const uncapped = { ...env, COMFYDOCK_DOWNLOAD_MAX_BYTES: String(1024 ** 3) };
    r = await cli(addSteady, { env: { ...uncapped, COMFYDOCK_DOWNLOAD_MIN_RATE: String(256 * 1024) } });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /too slow, \d+ bytes in the last 1 s \(slower than 262144 bytes\/s\)/);
    assert.equal(server.count("/m/steady.safetensors"), 1, "it never reached the rate: not retried");
    assert.equal(await Deno.readTextFile(paths.pyproject), before, ".cec unchanged");

    // The same server with the default minimum: the download completes, so the setting is what cut it.
    r = await cli(addSteady, { env: uncapped });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(await Deno.readTextFile(paths.pyproject), new RegExp(`sha256 = "${sha256Hex(steadyData)}"`));
  });
});
