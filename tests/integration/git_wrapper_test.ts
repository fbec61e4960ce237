import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { withTempDir } from "../../fixtures/tmp.ts";
import { noGitIdentity, TEST_GIT_IDENTITY } from "../../fixtures/tools.ts";
import { recordingProgress } from "../../fixtures/app.ts";
import * as git from "../../providers/git/git.ts";
import { checkoutInto, ensureMirror, mirrorDir } from "../../providers/git/mirror.ts";
import { assertNoCanary, canaryCommand, poisonCheckout } from "../../fixtures/hostile.ts";
import { gitIn } from "../../fixtures/node_git.ts";
import { CdError } from "../../lib/errors.ts";
import { exists } from "../../lib/fsx.ts";

/** No user or system git config, no identity variables: a fresh machine without an identity. */
const FRESH = noGitIdentity();

Deno.test("commit: returns the sha, null when nothing changed, fallback identity on a fresh machine", async () => {
  await withTempDir(async (dir) => {
    const repo = join(dir, "repo");
    await git.init(repo, { env: FRESH });
    assert.equal(await git.commit(repo, "empty", { env: FRESH }), null); // no files, no commit
    await Deno.writeTextFile(join(repo, "a.txt"), "one\n");
    const first = await git.commit(repo, "first", { env: FRESH });
    assert.match(first!, /^[0-9a-f]{40}$/);
    assert.equal(await git.commit(repo, "again", { env: FRESH }), null);
    assert.equal(await git.revParse(repo, "HEAD"), first);
    const author = (await git.git(repo, ["log", "-1", "--format=%an <%ae>"])).stdout.trim();
    assert.equal(author, "ComfyDock <comfydock@localhost>");
    // No identity was written to the repo's config.
    assert.equal((await git.git(repo, ["config", "--local", "user.name"], { check: false })).code, 1);
  });
});

Deno.test("commit uses the user's identity when there is one", async () => {
  await withTempDir(async (dir) => {
    const repo = join(dir, "repo");
    await git.init(repo);
    await git.git(repo, ["config", "user.name", "Ada"]);
    await git.git(repo, ["config", "user.email", "ada@example.com"]);
    await Deno.writeTextFile(join(repo, "a"), "x");
    await git.commit(repo, "mine");
    assert.equal(
      (await git.git(repo, ["log", "-1", "--format=%an <%ae>"])).stdout.trim(),
      "Ada <ada@example.com>",
    );
  });
});

Deno.test("log, showFile, status, isDirty, checkoutFiles restore a revision's files exactly", async () => {
  await withTempDir(async (dir) => {
    const repo = join(dir, "repo");
    await git.init(repo);
    await Deno.writeTextFile(join(repo, "pyproject.toml"), "v1\n");
    const c1 = (await git.commit(repo, "one"))!;
    await Deno.writeTextFile(join(repo, "pyproject.toml"), "v2\n");
    await Deno.writeTextFile(join(repo, "added.json"), "{}");
    const c2 = (await git.commit(repo, "two\n\nbody line"))!;
    const entries = await git.log(repo);
    assert.deepEqual(entries.map((e) => e.sha), [c2, c1]);
    assert.equal(entries[0].message, "two\n\nbody line");
    assert.ok(!Number.isNaN(Date.parse(entries[0].date)));
    assert.equal((await git.log(repo, { maxCount: 1 })).length, 1);
    assert.equal(await git.showFile(repo, c1, "pyproject.toml"), "v1\n");
    assert.equal(await git.showFile(repo, c1, "added.json"), null);
    assert.equal(await git.isDirty(repo), false);
    await Deno.writeTextFile(join(repo, "untracked.txt"), "u");
    assert.deepEqual(await git.status(repo), [{ code: "??", path: "untracked.txt" }]);
    assert.equal(await git.isDirty(repo, { untracked: false }), false);

    await git.checkoutFiles(repo, c1);
    assert.equal(await Deno.readTextFile(join(repo, "pyproject.toml")), "v1\n");
    await assert.rejects(Deno.stat(join(repo, "added.json")), Deno.errors.NotFound);
    assert.equal(await Deno.readTextFile(join(repo, "untracked.txt")), "u"); // untracked files are left alone
    assert.equal(await git.revParse(repo, "HEAD"), c2); // HEAD did not move
    const c3 = await git.commit(repo, "rollback to one");
    assert.equal(await git.showFile(repo, c3!, "pyproject.toml"), "v1\n");
    await assert.rejects(git.checkoutFiles(repo, "nope"), /not a commit/);
    assert.equal(await git.revParse(repo, "deadbeef"), null);
  });
});

Deno.test("mirror: clone --mirror, fetch new commits and tags, ls-remote tags (annotated peeled)", async () => {
  await withTempDir(async (dir) => {
    const src = join(dir, "src");
    await git.init(src);
    await Deno.writeTextFile(join(src, "f"), "1");
    const c1 = (await git.commit(src, "c1"))!;
    // An annotated tag needs a tagger: the test's own identity, never the machine's git config.
    await git.git(src, ["tag", "-a", "v1.0.0", "-m", "release"], { env: { ...TEST_GIT_IDENTITY } });
    const mirror = join(dir, "m.git");
    await git.cloneMirror(src, mirror);
    assert.deepEqual(await git.tags(mirror), { "v1.0.0": c1 });
    await Deno.writeTextFile(join(src, "f"), "2");
    const c2 = (await git.commit(src, "c2"))!;
    await git.git(src, ["tag", "v2.0.0"]);
    assert.equal(await git.hasCommit(mirror, c2), false);
    await git.fetchMirror(mirror);
    assert.equal(await git.hasCommit(mirror, c2), true);
    assert.deepEqual(await git.lsRemoteTags(src), { "v1.0.0": c1, "v2.0.0": c2 });
    assert.deepEqual(await git.tagsAt(mirror, c2), ["v2.0.0"]);
    await assert.rejects(git.cloneMirror(join(dir, "missing"), join(dir, "x.git")), (e: Error) => {
      assert.match(e.message, /clone/);
      return true;
    });
  });
});

Deno.test("checkout from a repository missing an object fails naming the file (git itself exits 0)", async () => {
  await withTempDir(async (dir) => {
    const src = join(dir, "src");
    await git.init(src);
    await Deno.writeTextFile(join(src, "small.py"), "x = 1\n");
    await Deno.writeTextFile(join(src, "big.json"), "{}\n");
    const c1 = (await git.commit(src, "c1"))!;
    const mirror = await ensureMirror(join(dir, "mirrors"), src);
    // The mirror loses big.json's content, as a download cut short or a store without large files would.
    const blob = (await git.git(mirror.dir, ["rev-parse", `${c1}:big.json`])).stdout.trim();
    // A local clone links the source's loose objects: removing the mirror's link leaves the source whole.
    await Deno.remove(join(mirror.dir, "objects", blob.slice(0, 2), blob.slice(2)));
    const plain = join(dir, "plain");
    await git.git(dir, ["clone", "-q", "--no-checkout", mirror.dir, plain]);
    assert.equal((await git.git(plain, ["checkout", "-q", "--detach", c1], { check: false })).code, 0);
    assert.equal(await exists(join(plain, "big.json")), false, "git left the file out and said 0");

    const dest = join(dir, "dest");
    await assert.rejects(checkoutInto(mirror, c1, dest), (e: unknown) => {
      assert.ok(e instanceof CdError);
      assert.equal(e.code, "GIT_CHECKOUT_INCOMPLETE");
      assert.match(e.message, /left 1 file\(s\) out.*: big\.json$/);
      assert.ok(e.hint?.includes(mirror.dir), e.hint);
      return true;
    });
  });
});

Deno.test("mirror from a local source names the URL before it is in place; a missing git is not blamed on the URL", async () => {
  await withTempDir(async (dir) => {
    const src = join(dir, "src");
    await git.init(src);
    await Deno.writeTextFile(join(src, "f"), "1");
    const c1 = (await git.commit(src, "c1"))!;
    const url = "https://example.invalid/org/repo";
    const m = await ensureMirror(join(dir, "mirrors"), url, { source: src });
    assert.equal(await git.originUrl(m.dir), url);
    assert.equal(await git.hasCommit(m.dir, c1), true);
    // A checkout whose .git is a file (a worktree): its HEAD is still read, through git.
    const wt = join(dir, "wt");
    await git.git(src, ["worktree", "add", "--quiet", "--detach", wt, c1]);
    assert.equal((await Deno.stat(join(wt, ".git"))).isFile, true);
    assert.equal(await git.headCommit(wt), c1);
    // Without git on PATH the error says to install git, not to check the URL.
    const path = Deno.env.get("PATH")!;
    Deno.env.set("PATH", join(dir, "empty"));
    try {
      await assert.rejects(
        ensureMirror(join(dir, "mirrors2"), url, { source: src }),
        (e) => e instanceof CdError && e.code === "COMMAND_NOT_FOUND" && /install git/.test(e.hint ?? ""),
      );
    } finally {
      Deno.env.set("PATH", path);
    }
  });
});

Deno.test("mirrors under their old names are swept when a mirror is cloned; current ones stay", async () => {
  await withTempDir(async (dir) => {
    const src = join(dir, "src");
    await git.init(src);
    await Deno.writeTextFile(join(src, "f"), "1");
    await git.commit(src, "c1");
    const mirrors = join(dir, "mirrors");
    const first = await ensureMirror(mirrors, src);
    const legacy = [`comfyui-${"a".repeat(16)}.git`, `github.com_x_pack-${"b".repeat(12)}.git`];
    for (const n of legacy) await Deno.mkdir(join(mirrors, n, "objects"), { recursive: true });
    const other = join(dir, "other");
    await git.init(other);
    await Deno.writeTextFile(join(other, "g"), "2");
    await git.commit(other, "c2");
    await ensureMirror(mirrors, other);
    const names = (await Array.fromAsync(Deno.readDir(mirrors))).map((e) => e.name).sort();
    assert.deepEqual(names, [basename(first.dir), basename(mirrorDir(mirrors, other))].sort());
  });
});

Deno.test("progressInto: git's meters become amounts of the task, other lines its detail", () => {
  const { progress, tasks } = recordingProgress();
  const feed = git.progressInto(progress.task("cloning x"));
  feed("Cloning into bare repository 'x'...");
  for (let i = 0; i <= 100; i++) feed(`Receiving objects: ${String(i).padStart(3)}% (${i}/100)`);
  feed("Receiving objects: 100% (100/100), 1.2 MiB | 3 MiB/s, done.");
  const t = tasks[0];
  assert.equal(t.details[0], "Cloning into bare repository 'x'...");
  assert.deepEqual([t.done, t.total], [100, 100]);
  assert.equal(t.details.at(-1), "Receiving objects 1.2 MiB | 3 MiB/s");
  feed("remote: Counting objects:  50% (5/10)");
  feed("   ");
  assert.deepEqual([t.done, t.total, t.details.at(-1)], [5, 10, "Counting objects"]);
});

Deno.test("cloneMirror with onLine streams git's --progress meters (file:// transport)", async () => {
  await withTempDir(async (dir) => {
    const src = join(dir, "src");
    await git.init(src, { env: FRESH });
    for (let i = 0; i < 30; i++) await Deno.writeTextFile(join(src, `f${i}.txt`), `${i}\n`.repeat(100));
    await git.commit(src, "files", { env: FRESH });
    const { progress, tasks } = recordingProgress();
    await git.cloneMirror(`file://${src}`, join(dir, "m.git"), {
      onLine: git.progressInto(progress.task("c")),
    });
    const t = tasks[0];
    assert.ok(t.total && t.done === t.total, JSON.stringify(t));
    assert.ok(t.details.some((d) => /^Receiving objects/.test(d)), t.details.join("\n"));
    assert.ok(await git.hasCommit(join(dir, "m.git"), (await git.revParse(src, "HEAD"))!));
  });
});

Deno.test("commit with paths commits only those paths; the user's other staged edits stay staged", async () => {
  await withTempDir(async (dir) => {
    await git.init(dir);
    await Deno.writeTextFile(`${dir}/a.txt`, "a1");
    await Deno.writeTextFile(`${dir}/b.txt`, "b1");
    await git.commit(dir, "first");
    await Deno.writeTextFile(`${dir}/a.txt`, "a2");
    await Deno.writeTextFile(`${dir}/b.txt`, "b2 (the user's own edit)");
    await git.git(dir, ["add", "b.txt"]);
    const sha = await git.commit(dir, "only a", { paths: ["a.txt"] });
    assert.ok(sha);
    const shown = (await git.git(dir, ["show", "--name-only", "--format=", "HEAD"])).stdout.trim();
    assert.equal(shown, "a.txt");
    const staged = (await git.git(dir, ["diff", "--cached", "--name-only"])).stdout.trim();
    assert.equal(staged, "b.txt");
    assert.equal(await git.commit(dir, "nothing new", { paths: ["a.txt"] }), null);
  });
});

Deno.test("isRemoteUrl: scheme URLs and scp-like addresses are remotes; paths are not", () => {
  for (
    const u of [
      "https://github.com/a/b",
      "file:///tmp/repo",
      "ssh://git@host/x.git",
      "git@github.com:a/b.git",
    ]
  ) {
    assert.ok(git.isRemoteUrl(u), u);
  }
  for (const p of ["/abs/repo", "rel/repo", "./team.git", "C:/x", "dir with@sign:x/y"]) {
    assert.ok(!git.isRemoteUrl(p), p);
  }
});

Deno.test("foreign config: fsmonitor and hooks never run; an untrusted status blanks the repo's own filter drivers", async () => {
  await withTempDir(async (dir) => {
    const repo = join(dir, "repo");
    await git.init(repo);
    await Deno.writeTextFile(join(repo, "a.py"), "x = 1\n");
    await git.commit(repo, "one");
    const canary = join(dir, "canary");
    await poisonCheckout(repo, canary);
    await Deno.mkdir(join(repo, ".git", "hooks"), { recursive: true });
    await Deno.writeTextFile(
      join(repo, ".git", "hooks", "post-checkout"),
      `#!/bin/sh\n${canaryCommand(canary)}\n`,
      {
        mode: 0o755,
      },
    );
    // Same size, older mtime: git has to read the file, which is when a clean filter runs.
    await Deno.utime(join(repo, "a.py"), new Date(), new Date(2001, 1, 1));
    await git.status(repo, { untrusted: true });
    await git.checkoutDetached(repo, "HEAD", { untrusted: true });
    assert.deepEqual(await git.dirtyFiles(repo), ["?? .gitattributes"]);
    await assertNoCanary(canary, "an untrusted status");
    // The same status without `untrusted` runs the repository's filter: the payload is real.
    await Deno.utime(join(repo, "a.py"), new Date(), new Date(2002, 1, 1));
    await git.status(repo);
    assert.ok(await exists(canary), "the filter payload works when it is not blanked");
  });
});

Deno.test("foreign config: a driver whose name cannot be blanked stops git; so does an unreadable config", async () => {
  await withTempDir(async (dir) => {
    const repo = join(dir, "repo");
    await git.init(repo);
    await Deno.writeTextFile(join(repo, ".git", "config"), '[filter "a=b"]\n\tclean = x\n', { append: true });
    await assert.rejects(
      git.status(repo, { untrusted: true }),
      (e: CdError) => e.code === "GIT_CONFIG_UNSAFE",
    );
    assert.match((await git.dirtyFiles(repo))[0], /git status failed/);
    await Deno.writeTextFile(join(repo, ".git", "config"), "[core\n");
    await assert.rejects(
      git.status(repo, { untrusted: true }),
      (e: CdError) => e.code === "GIT_CONFIG_UNREADABLE",
    );
  });
});

Deno.test("URLs: ext:: and option-like URLs run nothing; a repository's file:// submodule is refused", async () => {
  await withTempDir(async (dir) => {
    const canary = join(dir, "canary");
    const mirrors = join(dir, "mirrors");
    for (const url of [`ext::sh -c touch% ${canary}`, `--upload-pack=touch ${canary}`]) {
      await assert.rejects(ensureMirror(mirrors, url), CdError);
      await assertNoCanary(canary, url);
    }
    // A pack whose .gitmodules points at a private repository on this machine.
    const secret = join(dir, "secret");
    await git.init(secret);
    await Deno.writeTextFile(join(secret, "token.txt"), "s3cret\n");
    await git.commit(secret, "secret");
    const pack = join(dir, "pack");
    await gitIn(dir, "init", "--quiet", pack);
    await gitIn(
      pack,
      "-c",
      "protocol.file.allow=always",
      "submodule",
      "add",
      "--quiet",
      `file://${secret}`,
      "sub",
    );
    await gitIn(pack, "commit", "--quiet", "-m", "with submodule");
    const mirror = await ensureMirror(mirrors, pack);
    const head = (await git.revParse(pack, "HEAD"))!;
    await assert.rejects(
      checkoutInto(mirror, head, join(dir, "out"), { submodules: true }),
      (e: CdError) => e.code === "GIT_SUBMODULE_FAILED",
    );
    assert.equal(await exists(join(dir, "out", "sub", "token.txt")), false);
  });
});
