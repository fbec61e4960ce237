import assert from "node:assert/strict";
import { join } from "node:path";
import { basePyproject, makeEnvSkeleton } from "../../fixtures/env_skeleton.ts";
import { ModelServer } from "../../fixtures/model_server.ts";
import { sha256Hex } from "../../lib/fsx.ts";
import { randomBytes } from "../../fixtures/model_files.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { applyPlan, makePlan } from "../../reconcile/engine.ts";
import type { EnvPaths } from "../../reconcile/paths.ts";
import { modelProvider } from "../../providers/models/provider.ts";
import { ModelIndex } from "../../providers/models/index_db.ts";
import { hashFileFull } from "../../providers/models/hash.ts";
import { testSettings } from "../../fixtures/app.ts";

const providers = [modelProvider];
const A = randomBytes(200_000);
const B = randomBytes(5 * 1024 * 1024 + 7);

function modelToml(
  key: string,
  data: Uint8Array,
  category: string,
  filename: string,
  sources = "[]",
): string {
  const sha = sha256Hex(data);
  return `
[tool.comfydock.models.${key}]
hash = "sha256:${sha}"
sha256 = "${sha}"
size = ${data.length}
category = "${category}"
filename = "${filename}"
sources = ${sources}
`;
}

async function withEnv(
  fn: (paths: EnvPaths, server: ModelServer, dir: string) => Promise<void>,
  toml: string,
) {
  await using server = ModelServer.start();
  await withTempDir(async (dir) => {
    const paths = await makeEnvSkeleton(join(dir, "ws"), "test", toml);
    const saved = Deno.env.get("HF_ENDPOINT");
    Deno.env.set("HF_ENDPOINT", server.url);
    Deno.env.set("COMFYDOCK_DOWNLOAD_RETRY_MS", "10");
    try {
      await fn(paths, server, dir);
    } finally {
      if (saved === undefined) Deno.env.delete("HF_ENDPOINT");
      else Deno.env.set("HF_ENDPOINT", saved);
      Deno.env.delete("COMFYDOCK_DOWNLOAD_RETRY_MS");
    }
  });
}

async function planApply(paths: EnvPaths) {
  const { plan } = await makePlan(paths, { providers, settings: testSettings() });
  const result = await applyPlan(paths, plan, { providers, settings: testSettings() });
  return { plan, result };
}

async function readLinked(p: string): Promise<Uint8Array> {
  return await Deno.readFile(p);
}

Deno.test("a model in a configured user folder is linked; one from Hugging Face is downloaded; replan is empty", async () => {
  const toml = modelToml("local_a", A, "checkpoints", "a.safetensors") +
    modelToml(
      "remote_b",
      B,
      "loras",
      "b.safetensors",
      `[{ type = "huggingface", repo = "org/repo", file = "b.safetensors" }]`,
    );
  await withEnv(async (paths, server, dir) => {
    const userModels = join(dir, "my-models", "checkpoints");
    await Deno.mkdir(userModels, { recursive: true });
    await Deno.writeFile(join(userModels, "renamed-a.safetensors"), A);
    const meta = JSON.parse(await Deno.readTextFile(paths.workspace.workspaceJson));
    await Deno.writeTextFile(
      paths.workspace.workspaceJson,
      JSON.stringify({ ...meta, settings: { ...meta.settings, model_paths: [join(dir, "my-models")] } }),
    );
    server.hf("org/repo", "b.safetensors", B);

    const { plan } = await makePlan(paths, { providers, settings: testSettings() });
    assert.deepEqual(plan.actions.map((a) => [a.address, a.kind]), [
      ["model.local_a", "create"],
      ["model.remote_b", "create"],
    ]);
    assert.match(plan.actions[0].reason, /in the model index/);
    assert.match(
      plan.actions[1].details!.join("\n"),
      /download from huggingface org\/repo\/b\.safetensors \(5\.0 MiB\)/,
    );

    await applyPlan(paths, plan, { providers, settings: testSettings() });
    const linkA = join(paths.models, "checkpoints", "a.safetensors");
    const linkB = join(paths.models, "loras", "b.safetensors");
    assert.equal((await Deno.lstat(linkA)).isSymlink, true);
    assert.equal(await Deno.realPath(linkA), join(dir, "my-models", "checkpoints", "renamed-a.safetensors"));
    assert.deepEqual(await readLinked(linkB), B);
    const stored = await Deno.realPath(linkB);
    assert.ok(stored.startsWith(paths.workspace.modelStore), stored);
    assert.equal(server.count("/org/repo"), 1);

    const again = await makePlan(paths, { providers, settings: testSettings() });
    assert.deepEqual(again.plan.actions, []);
    assert.equal(server.count("/org/repo"), 1);

    // Dropping the entries removes both links; the user's file and the stored download stay.
    await Deno.writeTextFile(paths.pyproject, basePyproject("test"));
    const { plan: removal } = await planApply(paths);
    assert.deepEqual(removal.actions.map((a) => [a.address, a.kind]), [
      ["model.checkpoints/a.safetensors", "delete"],
      ["model.loras/b.safetensors", "delete"],
    ]);
    assert.equal(await Deno.lstat(linkA).then(() => true, () => false), false);
    assert.deepEqual(await Deno.readFile(join(dir, "my-models", "checkpoints", "renamed-a.safetensors")), A);
    assert.deepEqual(await Deno.readFile(stored), B);
    assert.deepEqual((await makePlan(paths, { providers, settings: testSettings() })).plan.actions, []);
  }, toml);
});

Deno.test("wrong content at the path is replaced and the old file goes to the trash; removed entries unlink", async () => {
  const toml = modelToml(
    "m",
    A,
    "vae",
    "v.safetensors",
    `[{ type = "url", url = "URL" }]`,
  );
  await using urlServer = ModelServer.start();
  const url = urlServer.file("/v.safetensors", A);
  await withEnv(async (paths) => {
    const target = join(paths.models, "vae", "v.safetensors");
    await Deno.mkdir(join(paths.models, "vae"), { recursive: true });
    const userBytes = randomBytes(1000);
    await Deno.writeFile(target, userBytes);
    const { plan, result } = await planApply(paths);
    assert.equal(plan.actions[0].kind, "replace");
    assert.match(plan.actions[0].reason, /wrong content at models\/vae\/v\.safetensors/);
    assert.deepEqual(await Deno.readFile(target), A);
    assert.ok(result.trashDir);
    const trashed = [...Deno.readDirSync(result.trashDir!)].map((e) => join(result.trashDir!, e.name));
    assert.deepEqual(await Deno.readFile(trashed[0]), userBytes);

    // model remove: the entry goes, the link into the store is planned for deletion, the stored copy stays.
    await Deno.writeTextFile(paths.pyproject, basePyproject("test"));
    const { plan: p2 } = await planApply(paths);
    assert.deepEqual(p2.actions.map((a) => [a.address, a.kind]), [["model.vae/v.safetensors", "delete"]]);
    assert.equal(await Deno.lstat(target).then(() => true, () => false), false);
    const stored = join(paths.workspace.modelStore, "vae", "v.safetensors");
    assert.deepEqual(await Deno.readFile(stored), A);
  }, toml.replace("URL", url));
});

Deno.test("an apply that unlinks a model and then fails leaves the link manifest and the link as they were", async () => {
  const C = randomBytes(3000);
  await using urlServer = ModelServer.start();
  const urlA = urlServer.file("/v.safetensors", A);
  const urlC = urlServer.file("/zz.safetensors", C);
  const linkedA = modelToml("m", A, "vae", "v.safetensors", `[{ type = "url", url = "${urlA}" }]`);
  await withEnv(async (paths) => {
    const link = join(paths.models, "vae", "v.safetensors");
    const manifest = join(paths.state, "model_links.json");
    await planApply(paths);
    const manifestBefore = await Deno.readTextFile(manifest);
    assert.deepEqual(JSON.parse(manifestBefore), [link]);
    const targetBefore = await Deno.readLink(link);

    // m goes (its link is a delete at index 0), zz comes (index 1, where the fault hits after it ran).
    await Deno.writeTextFile(
      paths.pyproject,
      basePyproject("test") +
        modelToml("zz", C, "vae", "zz.safetensors", `[{ type = "url", url = "${urlC}" }]`),
    );
    const { plan } = await makePlan(paths, { providers, settings: testSettings() });
    assert.deepEqual(plan.actions.map((a) => `${a.kind} ${a.address}`), [
      "delete model.vae/v.safetensors",
      "create model.zz",
    ]);
    Deno.env.set("COMFYDOCK_FAULT", "1:error");
    try {
      await assert.rejects(
        () => applyPlan(paths, plan, { providers, settings: testSettings() }),
        /fault injected at action 1/,
      );
    } finally {
      Deno.env.delete("COMFYDOCK_FAULT");
    }
    assert.equal(await Deno.readTextFile(manifest), manifestBefore, "the manifest is rolled back too");
    assert.equal(await Deno.readLink(link), targetBefore);
    assert.equal(
      await Deno.lstat(join(paths.models, "vae", "zz.safetensors")).then(() => true, () => false),
      false,
    );

    // Again without the fault (a new plan: the downloaded copy stayed in the store, so zz is now a link).
    const { plan: again } = await planApply(paths);
    assert.deepEqual(again.actions.map((a) => `${a.kind} ${a.address}`), [
      "delete model.vae/v.safetensors",
      "create model.zz",
    ]);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(manifest)), [
      join(paths.models, "vae", "zz.safetensors"),
    ]);
    assert.equal(await Deno.lstat(link).then(() => true, () => false), false);
  }, linkedA);
});

Deno.test("a corrupt index database is rebuilt by a rescan and the plan is unchanged", async () => {
  const toml = modelToml("a", A, "checkpoints", "a.safetensors");
  await withEnv(async (paths) => {
    const store = join(paths.workspace.modelStore, "checkpoints");
    await Deno.mkdir(store, { recursive: true });
    await Deno.writeFile(join(store, "a.safetensors"), A);
    const first = await makePlan(paths, { providers, settings: testSettings() });
    await Deno.writeTextFile(paths.workspace.modelIndexDb, "this is not a database ".repeat(200));
    for (const s of ["-wal", "-shm"]) await Deno.remove(paths.workspace.modelIndexDb + s).catch(() => {});
    const second = await makePlan(paths, { providers, settings: testSettings() });
    assert.deepEqual(second.plan.actions, first.plan.actions);
    assert.equal(second.plan.actions[0].kind, "create");
    const kept = [...Deno.readDirSync(paths.workspace.metadata)].map((e) => e.name);
    assert.ok(kept.some((n) => n.startsWith("model_index.db.corrupt-")), kept.join(","));
    using idx = ModelIndex.open(paths.workspace.modelIndexDb);
    assert.equal(idx.recovered, null);
    assert.equal(idx.stats().files, 1);
  }, toml);
});

Deno.test("kill -9 during a download leaves only a .part; the next apply resumes it with a Range request", async () => {
  const toml = modelToml(
    "big",
    B,
    "checkpoints",
    "big.safetensors",
    `[{ type = "huggingface", repo = "org/big", file = "big.safetensors" }]`,
  );
  await withEnv(async (paths, server) => {
    const path = server.hf("org/big", "big.safetensors", B);
    server.fault(path, { kind: "slow", chunk: 256 * 1024, delayMs: 40 });
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        new URL("../../fixtures/model_apply_child.ts", import.meta.url).pathname,
        paths.workspace.root,
        "test",
      ],
      env: { HF_ENDPOINT: server.url, NO_COLOR: "1" },
      stdout: "null",
      stderr: "null",
    }).spawn();
    const downloads = join(paths.workspace.modelStore, ".downloads");
    const part = join(downloads, `${sha256Hex(B)}.part`);
    const deadline = Date.now() + 30_000;
    while ((await Deno.stat(part).then((s) => s.size, () => 0)) < 1024 * 1024) {
      if (Date.now() > deadline) throw new Error("child never started downloading");
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill("SIGKILL");
    await child.status;
    const partSize = (await Deno.stat(part)).size;
    assert.ok(partSize > 0 && partSize < B.length);
    const finals = [...Deno.readDirSync(paths.workspace.modelStore)].map((e) => e.name);
    assert.deepEqual(finals, [".downloads"], "no file under a final name");
    assert.equal(
      await Deno.lstat(join(paths.models, "checkpoints", "big.safetensors")).then(() => 1, () => 0),
      0,
    );

    server.clearFaults();
    const before = server.requests.length;
    await planApply(paths);
    const resumed = server.requests.slice(before).filter((r) => r.path === path);
    assert.equal(resumed.length, 1);
    const from = Number(/bytes=(\d+)-/.exec(resumed[0].range ?? "")?.[1]);
    assert.ok(from >= 1024 * 1024, `resumed from ${from}`);
    assert.deepEqual(await Deno.readFile(join(paths.models, "checkpoints", "big.safetensors")), B);
    assert.equal(await Deno.stat(part).then(() => true, () => false), false);
  }, toml);
});

Deno.test("a blake3-only entry (the seed's format) is downloaded, verified by blake3 and stays in sync", async () => {
  await using srv = ModelServer.start();
  const url = srv.file("/b3.safetensors", A);
  await withTempDir(async (tmp) => {
    await Deno.writeFile(join(tmp, "a"), A);
    const { blake3 } = await hashFileFull(join(tmp, "a"), ["blake3"]);
    const toml = `
[tool.comfydock.models.b3]
hash = "blake3:${blake3}"
category = "embeddings"
filename = "b3.safetensors"
sources = [{ type = "url", url = "${url}" }]
`;
    await withEnv(async (paths) => {
      await planApply(paths);
      assert.deepEqual(await Deno.readFile(join(paths.models, "embeddings", "b3.safetensors")), A);
      const { plan } = await makePlan(paths, { providers, settings: testSettings() });
      assert.deepEqual(plan.actions, []);
    }, toml);
  });
});
