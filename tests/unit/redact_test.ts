import assert from "node:assert/strict";
import { credentialsProblem, redactSecrets, urlCredentials } from "../../lib/redact.ts";
import { withoutCredentialsInUrls } from "../../providers/models/sources.ts";

Deno.test("urlCredentials: userinfo and token-like parameters are found and removed; other parameters stay", () => {
  assert.deepEqual(urlCredentials("https://civitai.com/api/download/models/1?type=Model&token=abc123"), {
    clean: "https://civitai.com/api/download/models/1?type=Model",
    where: ["its 'token' parameter"],
    values: ["abc123"],
  });
  assert.deepEqual(urlCredentials("https://bob:pw@host/x.safetensors"), {
    clean: "https://host/x.safetensors",
    where: ["user:password@"],
    values: ["pw"],
  });
  assert.deepEqual(urlCredentials("https://s3/x?X-Amz-Signature=s&X-Amz-Credential=c&download=true")?.where, [
    "its 'X-Amz-Signature' parameter",
    "its 'X-Amz-Credential' parameter",
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

Deno.test("credentialsProblem: what .cec may not keep; a git login is not a secret; the message survives redaction", () => {
  const tokened = credentialsProblem("https://h/m.bin?download=1&token=abc123", "download");
  assert.equal(tokened, "carries credentials (its 'token' parameter)");
  assert.equal(
    redactSecrets(tokened!),
    tokened,
    "the message names the parameter in a shape redaction keeps",
  );
  assert.equal(credentialsProblem("https://u:p@h/m.bin", "download"), "carries credentials (user:password@)");
  assert.equal(credentialsProblem("https://h/m.bin?download=true", "download"), null);
  // Git remotes: a token as the http(s) user or any password is a credential; an ssh login is not.
  assert.equal(
    credentialsProblem("https://ghp_x1y2z3@github.com/o/r", "git"),
    "carries credentials (user:password@)",
  );
  assert.equal(credentialsProblem("ssh://git:pw@host/o/r", "git"), "carries credentials (user:password@)");
  assert.equal(credentialsProblem("ssh://git@github.com/o/r", "git"), null);
  assert.equal(credentialsProblem("git@github.com:o/r.git", "git"), null);
  assert.equal(
    credentialsProblem("https://github.com/o/r?token=x", "git"),
    null,
    "git never sends a query as auth",
  );
  assert.equal(credentialsProblem("/srv/repos/r", "git"), null);
});
