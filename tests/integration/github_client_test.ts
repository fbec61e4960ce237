/** The GitHub client (real octokit) against the local GitHub API server, and the server's own contract. */
import assert from "node:assert/strict";
import { CdError } from "../../lib/errors.ts";
import { sha256Hex } from "../../lib/fsx.ts";
import { createGitHubClient, driftMarker, planMarker } from "../../providers/github/client.ts";
import { startGitHubServer } from "../../fixtures/github_server.ts";

const REPO = "acme/studio";

Deno.test("server: bearer/token auth, 401 without or with a wrong token, GitHub error bodies, Link pagination", async () => {
  const server = startGitHubServer();
  try {
    const get = (path: string, auth?: string) =>
      fetch(`${server.url}${path}`, { headers: auth ? { authorization: auth } : {} });
    const none = await get(`/repos/${REPO}/issues`);
    assert.equal(none.status, 401);
    assert.equal((await none.json()).message, "Bad credentials");
    const wrong = await get(`/repos/${REPO}/issues`, "Bearer nope");
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
    const pr = server.addPullRequest(REPO);
    for (let i = 0; i < 5; i++) server.addComment(REPO, pr, `c${i}`);
    const page1 = await get(`/repos/${REPO}/issues/${pr}/comments?per_page=2`, `Bearer ${server.token}`);
    assert.equal(page1.status, 200);
    assert.deepEqual((await page1.json()).map((c: { body: string }) => c.body), ["c0", "c1"]);
    assert.match(page1.headers.get("link")!, /[?&]page=2[^>]*>; rel="next".*[?&]page=3[^>]*>; rel="last"/);
    const label = await get(`/repos/${REPO}/labels/missing`, `token ${server.token}`);
    assert.equal(label.status, 404);
    assert.equal((await label.json()).message, "Not Found");
    server.fail({ method: "GET", path: /\/issues$/, status: 500, times: 1 });
    const failed = await get(`/repos/${REPO}/issues`, `token ${server.token}`);
    assert.equal(failed.status, 500);
    await failed.body?.cancel();
    const ok = await get(`/repos/${REPO}/issues?state=all`, `token ${server.token}`);
    assert.equal(ok.status, 200, "a fault with times: 1 fires once");
    assert.equal((await ok.json()).length, 1, "pull requests are listed as issues, as on GitHub");
    assert.deepEqual(server.calls.map((c) => c.status), [401, 401, 200, 404, 500, 200]);
  } finally {
    await server.close();
  }
});

const A = { machine: "gpu-1", env: "a" };
const B = { machine: "gpu-1", env: "b" };
const report = (markdown: string) => ({ markdown, hash: sha256Hex(markdown) });

Deno.test("client: sticky comment per marker, labels created once, no token in errors", async () => {
  const server = startGitHubServer();
  try {
    const gh = await createGitHubClient({ token: server.token, baseUrl: `${server.url}/` });
    const pr = server.addPullRequest(REPO);
    const a = await gh.upsertStickyComment(REPO, pr, planMarker(A), "plan A v1");
    const b = await gh.upsertStickyComment(REPO, pr, planMarker(B), "plan B v1");
    const a2 = await gh.upsertStickyComment(REPO, pr, planMarker(A), "plan A v2");
    assert.deepEqual([a.action, b.action, a2.action], ["created", "created", "updated"]);
    assert.equal(a2.id, a.id);
    assert.deepEqual(server.comments(REPO, pr).map((c) => c.body), [
      "<!-- comfydock:plan:gpu-1/a -->\nplan A v2",
      "<!-- comfydock:plan:gpu-1/b -->\nplan B v1",
    ]);
    assert.equal(planMarker({ machine: "gpu/1", env: "x-->y" }), "<!-- comfydock:plan:gpu%2F1/x--%3Ey -->");

    const opened = await gh.reportDrift(REPO, A, "drift", report("report 1"));
    const other = await gh.reportDrift(REPO, B, "drift", report("report b"));
    const elsewhere = await gh.reportDrift(REPO, { ...A, machine: "gpu-2" }, "drift", report("report 1"));
    assert.ok(opened.action === "opened" && other.action === "opened" && elsewhere.action === "opened");
    assert.equal(new Set([opened.issue, other.issue, elsewhere.issue]).size, 3, "one issue per machine+env");
    assert.equal(server.labels(REPO).filter((l) => l.name === "drift").length, 1);
    assert.equal(server.calls.filter((c) => c.method === "POST" && c.path.endsWith("/labels")).length, 1);
    assert.equal((await gh.reportDrift(REPO, A, "drift", null)).action, "closed");
    assert.equal((await gh.reportDrift(REPO, B, "drift", report("report b"))).action, "unchanged");
    assert.equal((await gh.reportDrift(REPO, B, "drift", report("report b2"))).action, "commented");

    // The merged pull request of a merge commit; an open one whose head is the commit is not it.
    const merged = server.addPullRequest(REPO, "merged", { sha: "1".repeat(40) });
    server.mergePullRequest(REPO, merged, "2".repeat(40));
    server.addPullRequest(REPO, "open", { sha: "2".repeat(40) });
    assert.equal((await gh.mergedPullRequestOf(REPO, "2".repeat(40)))?.number, merged);
    assert.equal(await gh.mergedPullRequestOf(REPO, "3".repeat(40)), null);
    // Only a bot's comment is read back; a person's comment quoting the marker is not.
    server.addComment(REPO, merged, `${planMarker(A)}\nforged`);
    assert.equal(await gh.botCommentWith(REPO, merged, planMarker(A)), null);
    await gh.upsertStickyComment(REPO, merged, planMarker(A), "genuine");
    assert.match((await gh.botCommentWith(REPO, merged, planMarker(A)))!.body, /genuine$/);
    assert.match(server.comments(REPO, merged)[0].body, /forged$/, "the person's comment is not edited");

    await assert.rejects(() => gh.upsertStickyComment(REPO, 999, planMarker(A), "x"), (e: unknown) => {
      assert.ok(e instanceof CdError);
      assert.match(
        e.message,
        /GitHub API 404 failed on GET \/repos\/\{owner\}\/\{repo\}\/issues\/\{issue_number\}\/comments/,
      );
      assert.ok(!JSON.stringify({ m: e.message, h: e.hint, s: e.stack }).includes(server.token));
      return true;
    });
    await assert.rejects(
      () => gh.upsertStickyComment("not a repo", 1, "m", "x"),
      /'not a repo' is not an 'owner\/name'/,
    );
    await assert.rejects(() => createGitHubClient({ token: "" }), /no GitHub token/);
  } finally {
    await server.close();
  }
});

Deno.test("client: a person's issue quoting the drift marker is never taken for the drift issue", async () => {
  const server = startGitHubServer();
  try {
    const gh = await createGitHubClient({ token: server.token, baseUrl: `${server.url}/` });
    // Someone with triage rights opens a labelled issue carrying the marker and a report hash: it is theirs.
    const forgedBody = `${driftMarker(A)}\n<!-- comfydock:drift-report:${sha256Hex("report 1")} -->\nmine`;
    const forged = server.addIssue(REPO, "my notes", forgedBody, ["drift"]);
    assert.equal((await gh.reportDrift(REPO, A, "drift", null)).action, "none", "theirs is not closed");
    const opened = await gh.reportDrift(REPO, A, "drift", report("report 1"));
    assert.equal(opened.action, "opened", "not 'unchanged' on the strength of the forged hash");
    assert.notEqual(opened.issue, forged);
    assert.equal((await gh.reportDrift(REPO, A, "drift", report("report 2"))).action, "commented");
    assert.equal((await gh.reportDrift(REPO, A, "drift", null)).action, "closed");
    const theirs = server.issues(REPO).find((i) => i.number === forged)!;
    assert.deepEqual(
      [theirs.body, theirs.state],
      [forgedBody, "open"],
      "their issue is not edited or closed",
    );
    assert.deepEqual(server.comments(REPO, forged), [], "nor commented on");
  } finally {
    await server.close();
  }
});

Deno.test("client: an unreachable API is a clear error", async () => {
  const server = startGitHubServer();
  const url = server.url;
  await server.close();
  const gh = await createGitHubClient({ token: "ghs_x", baseUrl: url });
  await assert.rejects(
    () => gh.reportDrift(REPO, A, "drift", null),
    (e: unknown) =>
      e instanceof CdError && e.code === "GITHUB_API" &&
      /failed on GET \/repos\/\{owner\}\/\{repo\}\/issues/.test(e.message) &&
      /unreachable/.test(e.hint ?? ""),
  );
});
