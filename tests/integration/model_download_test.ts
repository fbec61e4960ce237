import assert from "node:assert/strict";
import { join } from "node:path";
import { ModelServer } from "../../fixtures/model_server.ts";
import { exists, sha256Hex } from "../../lib/fsx.ts";
import { randomBytes } from "../../fixtures/model_files.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { CdError } from "../../lib/errors.ts";
import { downloadModel, type Expected, partPathFor } from "../../providers/models/download.ts";
import { scrub, type SourceConfig, sourceConfig } from "../../providers/models/sources.ts";
import { workspacePaths } from "../../reconcile/paths.ts";
import { loadSettings } from "../../workspace/config.ts";

const DATA = randomBytes(3 * 1024 * 1024 + 123);
const SHA = sha256Hex(DATA);
const fast = { retryBaseMs: 10 };

function cfgFor(server: ModelServer, tokens: Partial<SourceConfig> = {}): SourceConfig {
  return { hfEndpoint: server.url, civitaiApi: server.civitaiApi, ...tokens };
}

/** A single plain-URL source with no tokens: what the fault tests need. */
function fetchUrl(server: ModelServer, url: string, expected: Expected, dest: string, downloads: string) {
  return downloadModel(cfgFor(server), [{ type: "url", url }], expected, dest, downloads, fast);
}

Deno.test("huggingface download with a token: verified, renamed into place, no part left", async () => {
  await using server = ModelServer.start();
  server.hf("org/repo", "sub/model.safetensors", DATA, { requireToken: "hf_secret" });
  await withTempDir(async (dir) => {
    const dest = join(dir, "store", "checkpoints", "model.safetensors");
    const r = await downloadModel(
      cfgFor(server, { hfToken: "hf_secret" }),
      [{ type: "huggingface", repo: "org/repo", file: "sub/model.safetensors" }],
      { sha256: SHA, size: DATA.length },
      dest,
      join(dir, "store", ".downloads"),
      fast,
    );
    assert.equal(r.sha256, SHA);
    assert.deepEqual(await Deno.readFile(dest), DATA);
    const left = [...Deno.readDirSync(join(dir, "store", ".downloads"))].map((e) => e.name);
    assert.deepEqual(left.filter((n) => !n.endsWith(".lock")), []);
    assert.equal(server.requests[0].authorization, "Bearer hf_secret");
  });
});

Deno.test("a dropped connection resumes with a Range request from where it stopped", async () => {
  await using server = ModelServer.start();
  const url = server.file("/m/drop.bin", DATA);
  server.fault("/m/drop.bin", { kind: "drop", afterBytes: 1_500_000 });
  await withTempDir(async (dir) => {
    const dest = join(dir, "out.bin");
    await fetchUrl(server, url, { sha256: SHA }, dest, join(dir, ".dl"));
    assert.deepEqual(await Deno.readFile(dest), DATA);
    const ranges = server.requests.map((r) => r.range);
    assert.equal(ranges.length, 2);
    assert.equal(ranges[0], null);
    const resumedAt = Number(/bytes=(\d+)-/.exec(ranges[1] ?? "")?.[1]);
    assert.ok(resumedAt > 0 && resumedAt <= 1_500_000, `resumed at ${resumedAt}`);
  });
});

Deno.test("429 with Retry-After is honoured, then the download succeeds", async () => {
  await using server = ModelServer.start();
  const url = server.file("/m/busy.bin", DATA);
  server.fault("/m/busy.bin", { kind: "429", times: 2, retryAfter: 0 });
  await withTempDir(async (dir) => {
    const logs: string[] = [];
    await downloadModel(cfgFor(server), [{ type: "url", url }], { sha256: SHA }, join(dir, "o.bin"), dir, {
      ...fast,
      log: (l) => logs.push(l),
    });
    assert.equal(server.count("/m/busy.bin"), 3);
    assert.equal(logs.filter((l) => l.includes("HTTP 429")).length, 2);
  });
});

Deno.test("wrong bytes: clear error naming the source, no final file, part discarded, user file untouched", async () => {
  await using server = ModelServer.start();
  const url = server.file("/m/wrong.bin", DATA);
  server.fault("/m/wrong.bin", { kind: "wrong", bytes: randomBytes(DATA.length) });
  await withTempDir(async (dir) => {
    const dest = join(dir, "o.bin");
    const err = await downloadModel(
      cfgFor(server),
      [{ type: "url", url: `${url}?token=supersecret` }],
      { sha256: SHA },
      dest,
      join(dir, ".dl"),
      fast,
    ).then(() => null, (e) => e);
    assert.ok(err instanceof CdError);
    assert.equal(err.code, "MODEL_HASH_MISMATCH");
    assert.match(err.message, /\/m\/wrong\.bin/);
    assert.match(err.message, new RegExp(`expected ${SHA}`));
    assert.doesNotMatch(err.message, /supersecret/);
    assert.equal(await exists(dest), false);
    assert.equal(await exists(partPathFor(join(dir, ".dl"), { sha256: SHA }, [])), false);
  });
});

Deno.test("404 on the first source falls back to the next (Civitai via its API, token as query)", async () => {
  await using server = ModelServer.start();
  server.civitai(4242, "civ.safetensors", DATA, { requireToken: "civ_tok" });
  await withTempDir(async (dir) => {
    const cfg = cfgFor(server, { civitaiToken: "civ_tok" });
    const r = await downloadModel(
      cfg,
      [{ type: "url", url: `${server.url}/nothing-here.bin` }, { type: "civitai", version_id: 4242 }],
      { sha256: SHA, size: DATA.length },
      join(dir, "c.safetensors"),
      join(dir, ".dl"),
      fast,
    );
    assert.equal(r.source.type, "civitai");
    const dl = server.requests.find((q) => q.path === "/api/download/models/4242");
    assert.equal(dl?.token, "civ_tok");
    const api = server.requests.find((q) => q.path === "/api/v1/model-versions/4242");
    assert.equal(api?.authorization, "Bearer civ_tok");
  });
});

Deno.test("size in pyproject differs from what the server sends: refused before writing", async () => {
  await using server = ModelServer.start();
  const url = server.file("/m/size.bin", DATA);
  await withTempDir(async (dir) => {
    const err = await fetchUrl(
      server,
      url,
      { sha256: SHA, size: DATA.length + 1 },
      join(dir, "o.bin"),
      join(dir, ".dl"),
    ).then(() => null, (e) => e);
    assert.ok(err instanceof CdError);
    assert.match(err.message, /pyproject\.toml says size/);
  });
});

Deno.test("a server that ignores Range restarts cleanly; a complete part is not downloaded again", async () => {
  await using server = ModelServer.start();
  const url = server.file("/m/norange.bin", DATA);
  server.fault("/m/norange.bin", { kind: "drop", afterBytes: 1_000_000 });
  server.fault("/m/norange.bin", { kind: "noRange" });
  await withTempDir(async (dir) => {
    const dest = join(dir, "o.bin");
    await fetchUrl(server, url, { sha256: SHA }, dest, join(dir, ".dl"));
    assert.deepEqual(await Deno.readFile(dest), DATA);
    // A finished part (e.g. a crash between download and rename) is verified without another transfer.
    const part = partPathFor(join(dir, ".dl"), { sha256: SHA, size: DATA.length }, []);
    await Deno.writeFile(part, DATA);
    const before = server.requests.length;
    await fetchUrl(server, url, { sha256: SHA, size: DATA.length }, dest + "2", join(dir, ".dl"));
    assert.equal(server.requests.length, before);
  });
});

Deno.test("a destination taken by other content stops at once: the user's file kept, no other source tried", async () => {
  await using server = ModelServer.start();
  const first = server.file("/m/first.bin", DATA);
  const second = server.file("/m/second.bin", DATA);
  await withTempDir(async (dir) => {
    const dest = join(dir, "o.bin");
    await Deno.writeTextFile(dest, "the user's own file");
    const err = await downloadModel(
      cfgFor(server),
      [{ type: "url", url: first }, { type: "url", url: second }],
      { sha256: SHA },
      dest,
      join(dir, ".dl"),
      fast,
    ).then(() => null, (e) => e);
    assert.ok(err instanceof CdError);
    assert.equal(err.code, "MODEL_STORE_CONFLICT");
    assert.equal(await Deno.readTextFile(dest), "the user's own file");
    assert.equal(server.count("/m/second.bin"), 0);
  });
});

Deno.test("scrub removes tokens from text", () => {
  const cfg = { hfEndpoint: "", civitaiApi: "", hfToken: "hf_abcdef", civitaiToken: "civXYZ123" };
  assert.equal(
    scrub("a hf_abcdef b civXYZ123 https://x/y?token=zzz&a=1", cfg),
    "a *** b *** https://x/y?token=***&a=1",
  );
});

Deno.test({
  name: "tokens come from keys.json when no env var is set; base URLs from HF_ENDPOINT / CIVITAI_API_URL",
  fn: async () => {
    await withTempDir(async (dir) => {
      const ws = workspacePaths(dir);
      await Deno.mkdir(ws.metadata, { recursive: true });
      await Deno.writeTextFile(
        ws.keysFile,
        JSON.stringify({ huggingface: "hf_fromfile", civitai: "civ_fromfile" }),
      );
      const settings = await loadSettings(ws, {
        HF_ENDPOINT: "http://127.0.0.1:9/",
        CIVITAI_API_URL: "http://x/api/v1",
      });
      assert.deepEqual(sourceConfig(settings), {
        hfEndpoint: "http://127.0.0.1:9",
        civitaiApi: "http://x/api/v1",
        hfToken: "hf_fromfile",
        civitaiToken: "civ_fromfile",
        net: { http: settings.http, download: settings.download },
      });
    });
  },
});
