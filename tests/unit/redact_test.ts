import assert from "node:assert/strict";
import { redactSecrets, urlCredentials } from "../../lib/redact.ts";
import { withoutCredentialsInUrls } from "../../providers/models/sources.ts";

Deno.test("urlCredentials: userinfo and token-like parameters are found and removed; other parameters stay", () => {
  assert.deepEqual(urlCredentials("https://civitai.com/api/download/models/1?type=Model&token=abc123"), {
    clean: "https://civitai.com/api/download/models/1?type=Model",
    where: ["?token="],
    values: ["abc123"],
  });
  assert.deepEqual(urlCredentials("https://bob:pw@host/x.safetensors"), {
    clean: "https://host/x.safetensors",
    where: ["user:password@"],
    values: ["pw"],
  });
  assert.deepEqual(urlCredentials("https://s3/x?X-Amz-Signature=s&X-Amz-Credential=c&download=true")?.where, [
    "?X-Amz-Signature=",
    "?X-Amz-Credential=",
  ]);
  assert.equal(urlCredentials("https://huggingface.co/a/b/resolve/main/c.safetensors?download=true"), null);
  assert.equal(urlCredentials("not a url"), null);
});

Deno.test("withoutCredentialsInUrls: someone else's token is dropped from url sources only", () => {
  assert.deepEqual(
    withoutCredentialsInUrls([
      { type: "url", url: "https://h/m.bin?api_key=theirs&v=2" },
      { type: "civitai", version_id: 3 },
    ]),
    [{ type: "url", url: "https://h/m.bin?v=2" }, { type: "civitai", version_id: 3 }],
  );
});

Deno.test("redactSecrets: known secrets anywhere, credential shapes; ordinary words after 'token' stay", () => {
  assert.equal(redactSecrets("key s3cr3t-value in text", ["s3cr3t-value"]), "key *** in text");
  assert.equal(redactSecrets("set a token permission for the repo"), "set a token permission for the repo");
  assert.equal(redactSecrets("token abcd1234efgh"), "token ***");
});
