/** findSources against a Hub and Civitai on 127.0.0.1: only confirmed sources are offered. */
import assert from "node:assert/strict";
import { ModelServer } from "../../fixtures/model_server.ts";
import { randomBytes } from "../../fixtures/model_files.ts";
import { sha256Hex } from "../../lib/fsx.ts";
import { findSources } from "../../providers/models/find_sources.ts";
import type { SourceConfig } from "../../providers/models/sources.ts";

Deno.test("a Hub file with other content is not offered; an unreachable Civitai is a note, not a failure", async () => {
  await using server = ModelServer.start();
  const mine = randomBytes(4000);
  const other = randomBytes(4000);
  const same = server.hf("org/a", "m.safetensors", mine);
  const differs = server.hf("org/b", "m.safetensors", other);
  const cfg: SourceConfig = {
    hfEndpoint: server.url,
    civitaiApi: "http://127.0.0.1:9/api/v1",
    hfToken: "hf_SECRET_TOKEN",
  };
  const spec = {
    sha256: sha256Hex(mine),
    hash: `sha256:${sha256Hex(mine)}`,
    category: "checkpoints",
    filename: "m.safetensors",
    sources: [{ type: "url" as const, url: server.url + same }, {
      type: "url" as const,
      url: server.url + differs,
    }],
  };
  const r = await findSources(cfg, spec, null);
  assert.deepEqual(r.found, [{ type: "huggingface", repo: "org/a", file: "m.safetensors" }]);
  assert.equal(r.civitai, null);
  assert.ok(r.notes.some((n) => /huggingface org\/b\/m\.safetensors: the Hub serves other content/.test(n)));
  assert.ok(r.notes.some((n) => n.startsWith("Civitai: ")), r.notes.join("\n"));
  assert.ok(!r.notes.join("\n").includes("SECRET"));
  // The Hub was asked with the token in a header, never in the URL.
  const heads = server.requests.filter((q) => q.method === "HEAD");
  assert.equal(heads.length, 2);
  assert.ok(heads.every((q) => q.authorization === "Bearer hf_SECRET_TOKEN" && q.token === null));
});
