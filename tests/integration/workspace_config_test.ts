import assert from "node:assert/strict";
import { withTempDir } from "../../fixtures/tmp.ts";
import { ConfigManager, loadSettings } from "../../workspace/config.ts";
import { workspacePaths } from "../../reconcile/paths.ts";
import { initWorkspace, readWorkspaceMeta } from "../../workspace/workspace.ts";

Deno.test("settings: typed set/get/list in workspace.json; unknown keys and bad values are refused", async () => {
  await withTempDir(async (dir) => {
    await initWorkspace(dir);
    const ws = workspacePaths(dir);
    const config = new ConfigManager(ws, {}); // no key variables: keys.json alone answers
    assert.equal(await config.get("model_paths"), null);
    assert.deepEqual(await config.set("model_paths", "/data/models, /mnt/ckpt"), [
      "/data/models",
      "/mnt/ckpt",
    ]);
    assert.deepEqual(await config.set("model_paths", '["/a,b"]'), ["/a,b"]);
    assert.equal(await config.set("default_python", "3.12"), "3.12");
    assert.deepEqual((await readWorkspaceMeta(ws)).settings, {
      model_paths: ["/a,b"],
      default_python: "3.12",
    });
    await assert.rejects(config.set("default_python", "three"), /default_python: must look like 3\.12/);
    await assert.rejects(config.set("colour", "blue"), /unknown setting 'colour'/);
    await assert.rejects(
      config.get("nope"),
      (e: Error & { hint?: string }) => /known settings: model_paths/.test(e.hint!),
    );
    assert.deepEqual((await config.list()).settings, { model_paths: ["/a,b"], default_python: "3.12" });
  });
});

Deno.test("API keys: 0600 file, masked in list, never in workspace.json", async () => {
  await withTempDir(async (dir) => {
    await initWorkspace(dir);
    const ws = workspacePaths(dir);
    const config = new ConfigManager(ws, {}); // no key variables: keys.json alone answers
    const secret = "hf_SuperSecretValue9876";
    assert.deepEqual(await config.setKey("huggingface", `  ${secret}\n`), {
      service: "huggingface",
      masked: "hf_****9876",
    });
    assert.equal((await Deno.stat(ws.keysFile)).mode! & 0o777, 0o600);
    assert.equal(await config.getKey("huggingface"), secret);
    assert.equal((await loadSettings(ws, {})).hf.token, secret, "the run's settings carry the stored key");
    assert.equal(
      await new ConfigManager(ws, { HF_TOKEN: "hf_FromTheEnvironment1" }).getKey("huggingface"),
      "hf_FromTheEnvironment1",
      "the tool's own variable wins over keys.json",
    );
    const listed = JSON.stringify(await config.list());
    assert.ok(!listed.includes(secret));
    assert.match(listed, /hf_\*\*\*\*9876/);
    assert.ok(!(await Deno.readTextFile(ws.workspaceJson)).includes(secret));
    await config.setKey("civitai", "abcdef0123456789");
    assert.equal((await Deno.stat(ws.keysFile)).mode! & 0o777, 0o600);
    assert.equal(await config.getKey("huggingface"), secret); // other keys kept
    await assert.rejects(config.setKey("dropbox", "x"), /unknown service 'dropbox'/);
    await assert.rejects(config.setKey("github", "two words"), /whitespace/);
    assert.deepEqual(await config.setKey("civitai", ""), { service: "civitai", masked: null });
    assert.equal(await config.getKey("civitai"), null);
    await Deno.writeTextFile(ws.keysFile, "{ not json");
    await assert.rejects(config.getKey("civitai"), { code: "KEYS_FILE_INVALID" });
  });
});
