import assert from "node:assert/strict";
import { join } from "node:path";
import { parse } from "smol-toml";
import { cli, jsonData } from "../../fixtures/cli.ts";
import { makeEnvSkeleton } from "../../fixtures/env_skeleton.ts";
import { ModelServer } from "../../fixtures/model_server.ts";
import { sha256Hex } from "../../lib/fsx.ts";
import { randomBytes } from "../../fixtures/model_files.ts";
import { withTempDir } from "../../fixtures/tmp.ts";

const CKPT = randomBytes(300_000);
const LORA = randomBytes(40_000);
const HF = randomBytes(70_000);
const CIV = randomBytes(50_000);

type Models = Record<string, { sha256: string; category: string; filename: string; sources: unknown[] }>;

function models(pyproject: string): Models {
  const t = parse(pyproject) as { tool: { comfydock: { models?: Models } } };
  return t.tool.comfydock.models ?? {};
}

Deno.test("model commands as a user types them: scan, find, show, add (path/hf/civitai), list, remove, sources, rebuild", async () => {
  await using server = ModelServer.start();
  server.hf("org/repo", "vae/hf-vae.safetensors", HF);
  server.civitai(777, "civ-lora.safetensors", CIV, { type: "LORA" });
  await withTempDir(async (dir) => {
    const root = join(dir, "ws");
    const paths = await makeEnvSkeleton(root, "demo");
    const env = {
      COMFYDOCK_HOME: root,
      HF_ENDPOINT: server.url,
      HF_TOKEN: "hf_TOPSECRET_123",
      CIVITAI_API_URL: server.civitaiApi,
      CIVITAI_API_TOKEN: "civ_TOPSECRET_456",
    };
    const run = async (...args: string[]) => {
      const r = await cli(args, { env });
      for (const secret of [env.HF_TOKEN, env.CIVITAI_API_TOKEN]) {
        assert.ok(
          !r.stdout.includes(secret) && !r.stderr.includes(secret),
          `token printed by ${args.join(" ")}`,
        );
      }
      return r;
    };

    // A user's model folder with a symlink loop, a broken link and a FIFO next to real models.
    const mine = join(dir, "my", "models");
    await Deno.mkdir(join(mine, "checkpoints"), { recursive: true });
    await Deno.mkdir(join(mine, "loras", "style"), { recursive: true });
    await Deno.writeFile(join(mine, "checkpoints", "base.safetensors"), CKPT);
    await Deno.writeFile(join(mine, "loras", "style", "ink.safetensors"), LORA);
    await Deno.writeTextFile(join(mine, "checkpoints", "notes.txt"), "not a model");
    await Deno.symlink(mine, join(mine, "loras", "loop"));
    await Deno.symlink(join(dir, "nowhere.safetensors"), join(mine, "loras", "broken.safetensors"));
    await new Deno.Command("mkfifo", { args: [join(mine, "loras", "pipe.safetensors")] }).output();

    let r = await run("model", "scan", mine);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /2 model file\(s\), 0 unchanged, 2 hashed/);
    assert.match(r.stderr, /warning: skipped symlink loop .*loop/);
    assert.match(r.stderr, /warning: skipped broken symlink .*broken\.safetensors/);
    assert.match(r.stderr, /warning: skipped .*pipe\.safetensors: not a regular file/);

    r = await run("model", "scan", mine, "--json");
    assert.equal(jsonData(r).results[0].unchanged, 2);

    r = await run("model", "find", "ink", "--json");
    const found = jsonData(r).models;
    assert.equal(found.length, 1);
    assert.equal(found[0].files[0].category, "loras");

    // add by path: hashed in place (sha256), not copied, pyproject gets the entry and .cec a commit.
    r = await run("model", "add", join(mine, "checkpoints", "base.safetensors"), "--yes", "--no-apply");
    assert.equal(r.code, 0, r.stderr);
    let m = models(await Deno.readTextFile(paths.pyproject));
    assert.equal(m.base.sha256, sha256Hex(CKPT));
    assert.equal(m.base.category, "checkpoints");
    const log = await new Deno.Command("git", { args: ["-C", paths.cec, "log", "--format=%s"] }).output();
    assert.match(new TextDecoder().decode(log.stdout), /^model add base$/m);

    r = await run("model", "show", `sha256:${sha256Hex(CKPT).slice(0, 16)}`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /base\.safetensors/);

    // hf: the Hub's LFS sha256 is used, nothing downloaded at add time.
    r = await run(
      "model",
      "add",
      "hf:org/repo/vae/hf-vae.safetensors",
      "--category",
      "vae",
      "--yes",
      "--no-apply",
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      server.requests.filter((q) => q.method === "GET" && q.path.startsWith("/org/repo")).length,
      0,
    );
    // civitai: category from the model type.
    r = await run("model", "add", "civitai:777", "--key", "ink2", "--yes", "--no-apply");
    assert.equal(r.code, 0, r.stderr);
    const pyText = await Deno.readTextFile(paths.pyproject);
    m = models(pyText);
    assert.equal(m["hf-vae"].sha256, sha256Hex(HF));
    assert.deepEqual(JSON.parse(JSON.stringify(m["hf-vae"].sources)), [{
      type: "huggingface",
      repo: "org/repo",
      file: "vae/hf-vae.safetensors",
    }]);
    assert.equal(m.ink2.category, "loras");
    assert.equal(m.ink2.sha256, sha256Hex(CIV));
    assert.ok(!pyText.includes("TOPSECRET"));

    // A plain URL publishes no hash: downloaded now into the store, so apply only has to link it.
    const URLDATA = randomBytes(20_000);
    const url = server.file("/files/upscaler.pth", URLDATA);
    r = await run("model", "add", url, "--category", "upscale_models", "--yes", "--no-apply");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(models(await Deno.readTextFile(paths.pyproject)).upscaler.sha256, sha256Hex(URLDATA));
    assert.deepEqual(
      await Deno.readFile(join(paths.workspace.modelStore, "upscale_models", "upscaler.pth")),
      URLDATA,
    );

    r = await run("model", "list", "--json");
    const rows = jsonData(r).models as { key: string; state: string }[];
    assert.deepEqual(rows.map((x) => x.key).sort(), ["base", "hf-vae", "ink2", "upscaler"]);
    assert.ok(rows.every((x) => ["present", "missing"].includes(x.state)));

    r = await run("model", "sources", "ink2");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Civitai: civ-lora\.safetensors v777 \(version 777, model 7770\)/);

    // sources: Civitai knows the file added by path; --write adds it through a .cec commit, nothing else.
    server.civitai(888, "base.safetensors", CKPT, { modelName: "Base" });
    const beforeSources = await Deno.readTextFile(paths.pyproject);
    r = await run("model", "sources", "base");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /New: civitai version 888\nRun again with --write/);
    assert.equal(await Deno.readTextFile(paths.pyproject), beforeSources, "without --write nothing changes");
    r = await run("model", "sources", "base", "--write");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Added 1 source\(s\) to \[tool\.comfydock\.models\.base\]/);
    assert.deepEqual(
      JSON.parse(JSON.stringify(models(await Deno.readTextFile(paths.pyproject)).base.sources)),
      [{ type: "civitai", model_id: 8880, version_id: 888 }],
    );
    const sourcesLog = await new Deno.Command("git", { args: ["-C", paths.cec, "log", "-1", "--format=%s"] })
      .output();
    assert.equal(new TextDecoder().decode(sourcesLog.stdout).trim(), "model sources base");
    r = await run("model", "sources", "base", "--json");
    assert.deepEqual(jsonData(r).found, [], "already listed: nothing new");

    // A model downloaded from a Hub URL gets its typed Hugging Face source once the Hub confirms the sha256;
    // the same content added again by path finds it through what the index remembers of the download.
    const UNET = randomBytes(30_000);
    const hfPath = server.hf("org/unets", "unet/u.safetensors", UNET);
    r = await run("model", "add", server.url + hfPath, "--category", "unet", "--yes", "--no-apply");
    assert.equal(r.code, 0, r.stderr);
    r = await run("model", "sources", "u", "--write", "--json");
    assert.equal(r.code, 0, r.stderr);
    const hfSource = { type: "huggingface", repo: "org/unets", file: "unet/u.safetensors" };
    assert.deepEqual(jsonData(r).found, [hfSource]);
    assert.deepEqual(JSON.parse(JSON.stringify(models(await Deno.readTextFile(paths.pyproject)).u.sources)), [
      { type: "url", url: server.url + hfPath },
      hfSource,
    ]);
    r = await run(
      "model",
      "add",
      join(paths.workspace.modelStore, "unet", "u.safetensors"),
      "--key",
      "u-again",
      "--yes",
      "--no-apply",
    );
    assert.equal(r.code, 0, r.stderr);
    r = await run("model", "sources", "u-again", "--json");
    assert.deepEqual(jsonData(r).found, [hfSource]);

    r = await run("model", "remove", "ink2", "--yes", "--no-apply");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(models(await Deno.readTextFile(paths.pyproject)).ink2, undefined);

    // Bad input: clear error, exit 1, pyproject untouched.
    const before = await Deno.readTextFile(paths.pyproject);
    r = await run("model", "add", join(dir, "missing.safetensors"), "--yes");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /is not a file/);
    r = await run("model", "add", "hf:org/repo/nothing.bin", "--yes");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--category/);
    assert.equal(await Deno.readTextFile(paths.pyproject), before);

    // A corrupt index: rebuilt from the folders scanned before, with a clear message.
    await Deno.writeTextFile(paths.workspace.modelIndexDb, "garbage".repeat(500));
    for (const s of ["-wal", "-shm"]) await Deno.remove(paths.workspace.modelIndexDb + s).catch(() => {});
    r = await run("model", "index", "rebuild");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Model index rebuilt: \d+ model\(s\)/);
    r = await run("model", "find", "base");
    assert.match(r.stdout, /base\.safetensors/);
  });
});
