/** Resolving `node add` / `node update` specs against a registry on 127.0.0.1 and local git repos. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse } from "smol-toml";
import {
  addEdits,
  parseNodeSpec,
  pinnedVersionWarnings,
  removeEdits,
  resolveNodeSpec,
  resolveUpdate,
} from "../../providers/nodes/add.ts";
import { RegistryClient } from "../../providers/nodes/registry.ts";
import { readDesired } from "../../reconcile/desired.ts";
import { editPyprojectText } from "../../reconcile/pyproject_edit.ts";
import { deadUrl, startRegistryServer } from "../../fixtures/registry_server.ts";
import { makeNodeEnv } from "../../fixtures/node_env.ts";
import { makeNodeRepo } from "../../fixtures/node_git.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { CdError } from "../../lib/errors.ts";

function isCode(code: string) {
  return (e: unknown) => {
    assert.ok(e instanceof CdError, String(e));
    assert.equal(e.code, code, e.message);
    return true;
  };
}

Deno.test("node add: git URL matched to its registry id, pinned to the tag's commit; unknown ref refused", async () => {
  await withTempDir(async (root) => {
    const repo = await makeNodeRepo(root, "ComfyUI-Delta", [
      { tag: "v1", pack: { requirements: ["numpy"] } },
      { tag: "v2", pack: { requirements: ["numpy>=2", "torch"], installPy: true } },
    ]);
    const server = await startRegistryServer([{
      id: "comfyui-delta",
      repository: repo.url,
      versions: [{ version: "1.0.0" }],
    }]);
    try {
      const paths = await makeNodeEnv(join(root, "ws"));
      const ctx = { paths, registry: new RegistryClient({ baseUrl: server.url, retryBaseMs: 1 }) };
      const r = await resolveNodeSpec(parseNodeSpec(`${repo.url}@v2`), ctx);
      assert.equal(r.id, "comfyui-delta");
      assert.deepEqual(r.spec, {
        source: "git",
        repository: repo.url,
        commit: repo.commits[1].sha,
        ref: "v2",
        registry_id: "comfyui-delta",
      });
      assert.deepEqual(r.requirements, ["numpy>=2"]);
      assert.equal(r.warnings.length, 2, r.warnings.join("\n"));
      await assert.rejects(
        resolveNodeSpec(parseNodeSpec(`${repo.url}@v9`), ctx),
        isCode("GIT_REF_NOT_FOUND"),
      );

      // Without a registry the id comes from the repository name.
      const offline = { paths, registry: new RegistryClient({ baseUrl: await deadUrl(), retries: 0 }) };
      const o = await resolveNodeSpec(parseNodeSpec(`${repo.url}@v1`), offline);
      assert.equal(o.id, "comfyui-delta");
      assert.equal(o.spec.source === "git" && o.spec.registry_id, undefined);
    } finally {
      await server.close();
    }
  });
});

Deno.test("node add: edits write the node table and its dependency group; remove takes both away", async () => {
  const server = await startRegistryServer([{
    id: "eps",
    versions: [{
      version: "2.0.0",
      pack: { pyproject: { name: "eps", version: "2.0.0", dependencies: ["pillow"] } },
    }, {
      version: "1.0.0",
    }],
  }]);
  try {
    await withTempDir(async (root) => {
      const paths = await makeNodeEnv(root);
      const ctx = { paths, registry: new RegistryClient({ baseUrl: server.url }) };
      const r = await resolveNodeSpec(parseNodeSpec("eps@1.0.0"), ctx);
      let desired = await readDesired(paths);
      let { text } = await editPyprojectText(desired.pyprojectText, addEdits(desired.pyproject, [r]));
      await Deno.writeTextFile(paths.pyproject, text);
      desired = await readDesired(paths);
      assert.equal(desired.nodes.eps.source === "registry" && desired.nodes.eps.version, "1.0.0");

      // update: to the latest, requirements from the node's own pyproject this time.
      const up = await resolveUpdate("eps", desired.nodes.eps, {}, ctx);
      assert.ok(up);
      ({ text } = await editPyprojectText(text, addEdits(desired.pyproject, [up])));
      const data = parse(text) as { "dependency-groups": Record<string, string[]> };
      assert.deepEqual(data["dependency-groups"].eps, ["pillow"]);
      await Deno.writeTextFile(paths.pyproject, text);
      desired = await readDesired(paths);
      assert.equal(
        await resolveUpdate("eps", desired.nodes.eps, {}, ctx),
        null,
        "already at the latest",
      );
      await assert.rejects(
        resolveUpdate("eps", desired.nodes.eps, { version: "3.0.0" }, ctx),
        isCode("REGISTRY_VERSION_NOT_FOUND"),
      );

      ({ text } = await editPyprojectText(text, removeEdits(desired.pyproject, "eps")));
      const after = parse(text) as {
        "dependency-groups": Record<string, unknown>;
        tool: { comfydock: { nodes: object } };
      };
      assert.deepEqual(Object.keys(after.tool.comfydock.nodes), []);
      assert.equal("eps" in after["dependency-groups"], false);
    });
  } finally {
    await server.close();
  }
});

Deno.test("node add: dev paths must exist; inside the environment they are stored relative", async () => {
  await withTempDir(async (root) => {
    const paths = await makeNodeEnv(root);
    const ctx = { paths, registry: new RegistryClient({ baseUrl: "http://127.0.0.1:1" }) };
    await assert.rejects(
      resolveNodeSpec(parseNodeSpec(join(root, "nope"), { dev: true }), ctx),
      isCode("NODE_PATH_NOT_FOUND"),
    );
    const inside = join(paths.root, "dev", "My-Node");
    await Deno.mkdir(inside, { recursive: true });
    await Deno.writeTextFile(join(inside, "requirements.txt"), "rich\n");
    const r = await resolveNodeSpec(parseNodeSpec(inside, { dev: true }), ctx);
    assert.deepEqual(r.spec, { source: "dev", path: "dev/My-Node" });
    assert.equal(r.id, "my-node");
    assert.deepEqual(r.requirements, ["rich"]);
  });
});

Deno.test("node update: pinned versions that were banned or deleted since are reported (one bulk request)", async () => {
  const server = await startRegistryServer([{
    id: "zeta",
    versions: [{ version: "2.0.0" }, {
      version: "1.0.0",
      status: "NodeVersionStatusBanned",
      status_reason: "malware",
    }],
  }]);
  try {
    const registry = new RegistryClient({ baseUrl: server.url });
    const warnings = await pinnedVersionWarnings({
      zeta: { source: "registry", version: "1.0.0" },
      gone: { source: "registry", version: "0.1.0" },
      ok: { source: "registry", version: "2.0.0", registry_id: "zeta" },
      g: { source: "git", repository: "file:///x", commit: "1".repeat(40) },
    }, registry);
    assert.deepEqual(warnings, [
      "zeta: the pinned version 1.0.0 is banned in the registry (malware); update it",
      "gone: the pinned version 0.1.0 is no longer in the registry (the cached archive still works)",
    ]);
    assert.deepEqual(server.requests, ["POST /bulk/nodes/versions"]);
  } finally {
    await server.close();
  }
});
