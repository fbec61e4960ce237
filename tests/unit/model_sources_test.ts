/** Hub URLs recognised as typed Hugging Face sources (pure), for `model sources`. */
import assert from "node:assert/strict";
import { hfSourceFromUrl, sameSource } from "../../providers/models/find_sources.ts";

Deno.test("Hub resolve URLs become Hugging Face sources; anything else does not", () => {
  const ep = "http://127.0.0.1:9999";
  assert.deepEqual(hfSourceFromUrl(`${ep}/org/repo/resolve/main/unet/u.safetensors`, ep), {
    type: "huggingface",
    repo: "org/repo",
    file: "unet/u.safetensors",
  });
  assert.deepEqual(
    hfSourceFromUrl("https://huggingface.co/org/repo/resolve/v1.0/a%20b.safetensors?download=true", ep),
    { type: "huggingface", repo: "org/repo", file: "a b.safetensors", revision: "v1.0" },
  );
  // A mirror under a path prefix (HF_ENDPOINT=https://mirror.example/hf).
  assert.deepEqual(
    hfSourceFromUrl("https://mirror.example/hf/o/r/resolve/main/x.bin", "https://mirror.example/hf"),
    { type: "huggingface", repo: "o/r", file: "x.bin" },
  );
  for (
    const url of [
      `${ep}/org/repo/blob/main/x.bin`, // the web page, not the file
      `${ep}/datasets/org/data/resolve/main/x.bin`,
      `${ep}/org/repo/resolve/main/`,
      "https://example.com/org/repo/resolve/main/x.bin",
      "not a url",
    ]
  ) assert.equal(hfSourceFromUrl(url, ep), null, url);
});

Deno.test("sources are the same download when they describe the same file", () => {
  assert.ok(sameSource({ type: "civitai", version_id: 5 }, { type: "civitai", model_id: 1, version_id: 5 }));
  assert.ok(!sameSource({ type: "civitai", version_id: 5 }, { type: "civitai", version_id: "6" }));
  assert.ok(
    sameSource(
      { type: "url", url: "https://x.example/a.bin?token=abc" },
      { type: "url", url: "https://x.example/a.bin" },
    ),
  );
});
