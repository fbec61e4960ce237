/** `comfydock export` / `import` / `push` as a user types them. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, jsonData, MAIN } from "../../fixtures/cli.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { manifestEntry, rawTarGz, readTree, writeCec } from "../../fixtures/bundle_archives.ts";
import { commit, init } from "../../providers/git/git.ts";
import { envPaths, workspacePaths } from "../../reconcile/paths.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { randomBytes } from "../../fixtures/model_files.ts";

/** A git host that never answers until closed: a clone against it hangs mid-import. */
function hangingHost(): { port: number; requests: () => number; close: () => Promise<void> } {
  let release: (r: Response) => void = () => {};
  const held = new Promise<Response>((r) => (release = r));
  let requests = 0;
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, () => {
    requests++;
    return held;
  });
  return {
    port: server.addr.port,
    requests: () => requests,
    close: async () => {
      release(new Response("gone", { status: 500 }));
      await server.shutdown();
    },
  };
}

Deno.test("cli: export, import --no-apply, hostile import, push without remote", async () => {
  await withTempDir(async (dir) => {
    const env = { COMFYDOCK_HOME: join(dir, "ws"), GIT_CONFIG_GLOBAL: "/dev/null" };
    const ws = workspacePaths(env.COMFYDOCK_HOME);
    await Deno.mkdir(ws.metadata, { recursive: true });
    await Deno.writeTextFile(ws.workspaceJson, '{"version":1,"active_environment":"alpha"}');
    const a = envPaths(ws, "alpha");
    await writeCec(a.cec, "alpha");
    await init(a.cec, { env: { GIT_CONFIG_GLOBAL: "/dev/null" } });
    await commit(a.cec, "init", { env: { GIT_CONFIG_GLOBAL: "/dev/null" } });

    const out = join(dir, "alpha.tar.gz");
    const exp = await cli(["export", "--out", out], { env, cwd: dir });
    assert.equal(exp.code, 0, exp.stderr);
    assert.match(exp.stdout, /Exported 'alpha' to .*alpha\.tar\.gz \(5 files/);
    assert.match(exp.stdout, /referenced by hash and sources/);

    const again = await cli(["export", "--out", out], { env, cwd: dir });
    assert.equal(again.code, 1, "replacing needs --yes when nobody can be asked");
    assert.match(again.stderr, /exists\. Replace it\?[\s\S]*hint: pass --yes/);

    const imp = await cli(["--json", "import", out, "--name", "beta", "--no-apply"], { env, cwd: dir });
    assert.equal(imp.code, 0, imp.stderr);
    const res = jsonData(imp);
    assert.equal(res.environment, "beta");
    assert.equal(res.source.type, "bundle");
    assert.equal(res.source.manifest.source_environment, "alpha");
    assert.equal(res.built, false);
    assert.equal(
      await Deno.readTextFile(envPaths(ws, "beta").pyproject),
      await Deno.readTextFile(a.pyproject),
    );

    const dup = await cli(["import", out, "--name", "beta", "--no-apply"], { env, cwd: dir });
    assert.equal(dup.code, 1);
    assert.match(
      dup.stderr,
      /error: environment 'beta' already exists[\s\S]*hint: import under another name/,
    );

    const evil = join(dir, "evil.tar.gz");
    await Deno.writeFile(
      evil,
      rawTarGz([manifestEntry([]), { name: "cec/../../../escape.txt", data: "x" }]),
    );
    const before = await readTree(ws.root);
    const bad = await cli(["import", evil, "--name", "evil"], { env, cwd: dir });
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /error: .*evil\.tar\.gz: entry 'cec\/\.\.\/\.\.\/\.\.\/escape\.txt': contains '\.\.' \(path traversal\)/,
    );
    assert.match(bad.stderr, /hint: /);
    assert.deepEqual(await readTree(ws.root), before, "a rejected import changed the workspace");

    const push = await cli(["push"], { env, cwd: dir });
    assert.equal(push.code, 1);
    assert.match(push.stderr, /has no git remote[\s\S]*hint: add one with 'git -C/);
  });
});

Deno.test("cli: an import interrupted by SIGTERM leaves nothing behind", async () => {
  await withTempDir(async (dir) => {
    const env = { COMFYDOCK_HOME: join(dir, "ws"), GIT_CONFIG_GLOBAL: "/dev/null", NO_COLOR: "1" };
    const ws = workspacePaths(env.COMFYDOCK_HOME);
    await Deno.mkdir(ws.environments, { recursive: true });
    await Deno.mkdir(ws.metadata, { recursive: true });
    await Deno.writeTextFile(ws.workspaceJson, '{"version":1,"active_environment":null}');
    const before = await readTree(ws.root);
    // A git server that never answers: the clone hangs mid-import, with its staging dir in place.
    const host = hangingHost();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        MAIN,
        "import",
        `http://127.0.0.1:${host.port}/team.git`,
        "--name",
        "t",
      ],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    try {
      const staging = join(ws.metadata, "staging");
      for (
        let i = 0;
        i < 200 && !(host.requests() > 0 && (await readTree(ws.root)).has(".metadata/staging"));
        i++
      ) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(host.requests() > 0, "the clone never reached the server");
      assert.ok((await Array.fromAsync(Deno.readDir(staging))).length > 0, "no staging dir while importing");
      child.kill("SIGTERM");
      const out = await child.output();
      assert.equal(out.code, 130, new TextDecoder().decode(out.stderr));
      assert.match(new TextDecoder().decode(out.stderr), /Import interrupted; nothing was left behind/);
      assert.deepEqual(await readTree(ws.root), before);
    } finally {
      await host.close();
    }
  });
});

Deno.test("cli: an import interrupted while building leaves nothing; the env is never listed meanwhile", async () => {
  await withTempDir(async (dir) => {
    const home = join(dir, "ws");
    const { paths: src, env: realEnv } = await createRealEnv(home, "src");
    const env = { ...realEnv, GIT_CONFIG_GLOBAL: "/dev/null", NO_COLOR: "1" };
    // A ComfyUI host that never answers: the build hangs in its first action (the ComfyUI clone).
    const host = hangingHost();
    const url = `http://127.0.0.1:${host.port}/ComfyUI.git`;
    const text = await Deno.readTextFile(src.pyproject);
    await Deno.writeTextFile(src.pyproject, text.replace(/^comfyui_url = .*$/m, `comfyui_url = "${url}"`));
    await commit(src.cec, "ComfyUI from the team's host");
    const out = join(dir, "src.tar.gz");
    assert.equal((await cli(["export", "--out", out], { env })).code, 0);
    const ws = workspacePaths(home);
    const kept = async () =>
      [
        await readTree(ws.environments, (rel) => rel.startsWith("src/")),
        await readTree(ws.gitMirrors),
        await readTree(ws.logs),
        await Deno.readTextFile(ws.workspaceJson),
      ] as const;
    const before = await kept();

    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", MAIN, "import", out, "--name", "team", "--yes"],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    try {
      for (let i = 0; i < 300 && host.requests() === 0; i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(host.requests() > 0, "the build never reached the ComfyUI host");
      const dirs = (await Array.fromAsync(Deno.readDir(ws.environments))).map((e) => e.name);
      assert.ok(dirs.some((d) => /^\.staging-team-\d+-[0-9a-f]{8}$/.test(d)), dirs.join());
      assert.ok(!dirs.includes("team"));
      const listed = await cli(["--json", "list"], { env });
      assert.deepEqual(jsonData(listed).environments.map((e: { name: string }) => e.name), ["src"]);
      child.kill("SIGTERM");
      const res = await child.output();
      assert.equal(res.code, 130, new TextDecoder().decode(res.stderr));
    } finally {
      await host.close();
    }
    // The orphaned git clone fails once the host answers and removes its half mirror itself.
    for (let i = 0; i < 100 && (await Array.fromAsync(Deno.readDir(ws.gitMirrors))).length > 1; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(await kept(), before);
  });
});

Deno.test("cli: export --with-models carries the model files; an import on another machine places them from the bundle", async () => {
  await withTempDir(async (dir) => {
    const { paths: src, env: realEnv } = await createRealEnv(join(dir, "ws"), "src");
    const env = { ...realEnv, HOME: join(dir, "home"), GIT_CONFIG_GLOBAL: "/dev/null" };
    const model = randomBytes(70_000);
    const file = join(dir, "my-models", "tiny.safetensors");
    await Deno.mkdir(join(dir, "my-models"));
    await Deno.writeFile(file, model);
    let r = await cli(["model", "add", file, "--category", "loras", "--yes"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await Deno.readFile(join(src.models, "loras", "tiny.safetensors")), model);

    const packed = async (out: string, ...flags: string[]) => {
      const r = await cli(["--json", "export", "--out", out, ...flags], { env });
      const files: { path: string; size: number }[] = jsonData(r).manifest.files;
      return files.filter((f) => !f.path.startsWith("cec/")).map((f) => [f.path, f.size]);
    };
    assert.deepEqual(
      await packed(join(dir, "plain.tar.gz")),
      [],
      "models travel as hash and sources by default",
    );
    const out = join(dir, "src.tar.gz");
    assert.deepEqual(await packed(out, "--with-models"), [["models/loras/tiny.safetensors", model.length]]);

    // The other machine: its own workspace, and the model's only other copy gone, so the bundle is the
    // one place the file can come from.
    await Deno.remove(file);
    const other = { ...env, COMFYDOCK_HOME: join(dir, "other") };
    assert.equal((await cli(["init"], { env: other })).code, 0);
    r = await cli(["--json", "import", out, "--name", "copy", "--yes"], { env: other });
    const res = jsonData(r);
    assert.deepEqual([res.built, res.modelsPlaced, res.missingModels], [
      true,
      ["loras/tiny.safetensors"],
      [],
    ]);
    const placed = join(
      envPaths(workspacePaths(other.COMFYDOCK_HOME), "copy").models,
      "loras",
      "tiny.safetensors",
    );
    assert.deepEqual(await Deno.readFile(placed), model);
  });
});
