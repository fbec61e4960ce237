/**
 * `comfydock node ...` as a user types it: a registry on 127.0.0.1, local git repos, real uv (offline, on a
 * local wheelhouse) for the resolution check.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, jsonData } from "../../fixtures/cli.ts";
import { makeNodeEnv } from "../../fixtures/node_env.ts";
import { gitIn, makeNodeRepo } from "../../fixtures/node_git.ts";
import { deadUrl, startRegistryServer } from "../../fixtures/registry_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { buildWheelhouse, wheelhouseUvToml } from "../../fixtures/wheels.ts";
import { commit, init } from "../../providers/git/git.ts";
import { run } from "../../lib/proc.ts";
import { listFiles } from "../../lib/fsx.ts";
import { realData } from "../../fixtures/real_data.ts";
import { useLocalUv } from "../../fixtures/tools.ts";

const MAP = await realData("extensionNodeMap");
await useLocalUv();

Deno.test(
  "node CLI: add (registry, git, dev), conflicts and bad input leave .cec untouched, list, find, remove",
  async () => {
    const server = await startRegistryServer([
      {
        id: "alpha-nodes",
        repository: "https://github.com/fixture/alpha-nodes",
        versions: [
          {
            version: "1.1.0",
            pack: { classes: ["AlphaNode"], requirements: ["libx==1.0.0", "torch>=2"], installPy: true },
          },
          { version: "1.0.0" },
        ],
      },
      { id: "beta-nodes", versions: [{ version: "2.0.0", pack: { requirements: ["libx==2.0.0"] } }] },
    ]);
    try {
      await withTempDir(async (root) => {
        const wheels = await buildWheelhouse(join(root, "wheels"), [
          { name: "libx", version: "1.0.0" },
          { name: "libx", version: "2.0.0" },
        ]);
        const paths = await makeNodeEnv(root);
        await Deno.writeTextFile(
          paths.pyproject,
          (await Deno.readTextFile(paths.pyproject)) + wheelhouseUvToml(wheels),
        );
        await init(paths.cec);
        await commit(paths.cec, "init"); // a change commits only its own edits: .cec starts committed
        await Deno.mkdir(paths.workspace.metadata, { recursive: true });
        await Deno.writeTextFile(
          paths.workspace.workspaceJson,
          JSON.stringify({ version: 1, active_environment: "env", settings: {} }),
        );
        const env = {
          COMFYDOCK_HOME: root,
          COMFYDOCK_REGISTRY_URL: server.url,
          COMFYDOCK_HTTP_RETRY_BASE_MS: "5",
          UV_PYTHON_DOWNLOADS: "never",
          HOME: root,
        };
        const node = (...args: string[]) => cli(["node", ...args], { env });
        const pyproject = () => Deno.readTextFile(paths.pyproject);

        // Registry node: pinned with version, sha256 and its requirements group; torch skipped, install.py warned.
        let r = await node("add", "alpha-nodes", "--no-apply");
        assert.equal(r.code, 0, r.stderr);
        let text = await pyproject();
        assert.match(text, /\[tool\.comfydock\.nodes\.alpha-nodes\][^[]*version = "1\.1\.0"/s);
        assert.match(text, /sha256 = "[0-9a-f]{64}"/);
        assert.match(text, /alpha-nodes = \[\s*"libx==1\.0\.0"\s*\]/);
        assert.doesNotMatch(text, /torch/);
        assert.match(r.stderr, /alpha-nodes: requirements\.txt line 2 'torch>=2' not kept: torch is pinned/);
        assert.match(r.stderr, /install\.py, which ComfyDock never runs/);
        const log = await run("git", ["-C", paths.cec, "log", "--format=%s"]);
        assert.match(log.stdout, /node add alpha-nodes/);
        assert.equal(
          (await listFiles(paths.workspace.nodeStore)).length,
          1,
          "the archive is cached for apply",
        );

        // Conflicting requirements: named, and every file left as it was.
        const before = await pyproject();
        r = await node("add", "beta-nodes", "--no-apply");
        assert.equal(r.code, 1);
        assert.match(r.stderr, /libx/);
        assert.equal(await pyproject(), before);

        // Bad input: clear errors, exit 1, nothing changed.
        r = await node("add", "alpha-nodez", "--no-apply");
        assert.equal(r.code, 1);
        assert.match(r.stderr, /no node 'alpha-nodez' in the ComfyUI Registry; did you mean 'alpha-nodes'\?/);
        r = await node("add", "beta-nodes@9.9.9", "--no-apply");
        assert.match(r.stderr, /no version '9\.9\.9'.*\n.*available versions: 2\.0\.0/);
        r = await node("add", `file://${root}/no-such-repo`, "--no-apply");
        assert.equal(r.code, 1);
        assert.match(r.stderr, /could not clone file:\/\/.*no-such-repo/);
        r = await node("add", "alpha-nodes", "--no-apply");
        assert.match(r.stderr, /already in \.cec/);
        assert.equal(await pyproject(), before);

        // A git node pinned to the commit of a tag; a dev node by path.
        const repo = await makeNodeRepo(root, "Gamma-Nodes", [{ tag: "v1" }, { tag: "v2" }]);
        const dev = join(root, "my-dev");
        await Deno.mkdir(dev);
        r = await node("add", `${repo.url}@v1`, "--no-apply");
        assert.equal(r.code, 0, r.stderr);
        r = await node("add", dev, "--dev", "--no-apply");
        assert.equal(r.code, 0, r.stderr);
        text = await pyproject();
        assert.match(text, new RegExp(`commit = "${repo.commits[0].sha}"`));
        assert.match(text, /\[tool\.comfydock\.nodes\.gamma-nodes\][^[]*ref = "v1"/s);
        assert.match(text, /\[tool\.comfydock\.nodes\.my-dev\][^[]*source = "dev"/s);

        // list: everything pinned, nothing installed yet.
        r = await node("list", "--json");
        assert.equal(r.code, 0, r.stderr);
        const rows = jsonData(r).nodes as { id: string; state: string }[];
        assert.deepEqual(rows.map((x) => `${x.id}:${x.state}`), [
          "alpha-nodes:missing",
          "gamma-nodes:missing",
          "my-dev:missing",
        ]);

        // update: the git node moves to the head of its ref? v1 is a tag, so it stays.
        r = await node("update", "gamma-nodes", "--no-apply");
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /already up to date/);

        // find: online from the registry, offline from the node index.
        r = await node("find", "alpha", "--json");
        assert.equal(jsonData(r).results[0].id, "alpha-nodes");
        r = await node("index", "update", "--from", MAP, "--no-registry");
        assert.equal(r.code, 0, r.stderr);
        r = await cli(["node", "find", "Impact Pack"], {
          env: { ...env, COMFYDOCK_REGISTRY_URL: await deadUrl() },
        });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /registry is unreachable; results come from the local node index/);
        assert.match(r.stdout, /ComfyUI-Impact-Pack/i);

        // remove of a git node with uncommitted changes: refused (exit 1, .cec untouched) unless --force.
        const checkout = join(paths.customNodes, "gamma-nodes");
        await gitIn(root, "clone", "--quiet", repo.path, checkout);
        await Deno.writeTextFile(join(checkout, "VERSION"), "edited\n");
        const beforeRemove = await pyproject();
        r = await node("remove", "gamma-nodes", "--no-apply");
        assert.equal(r.code, 1);
        assert.match(r.stderr, /uncommitted changes \(1 file: VERSION\); \.cec was left as it is/);
        assert.match(r.stderr, /node remove gamma-nodes --force/);
        assert.equal(await pyproject(), beforeRemove);
        r = await node("remove", "gamma-nodes", "--no-apply", "--force");
        assert.equal(r.code, 0, r.stderr);
        assert.doesNotMatch(await pyproject(), /gamma-nodes/);
        assert.equal(
          await Deno.readTextFile(join(checkout, "VERSION")),
          "edited\n",
          "--no-apply touches no disk",
        );

        // remove: the node and its group go.
        r = await node("remove", "alpha-nodes", "--no-apply");
        assert.equal(r.code, 0, r.stderr);
        text = await pyproject();
        assert.doesNotMatch(text, /alpha-nodes/);
        assert.ok(
          !server.requests.some((x) => x.includes("/install")),
          "the counting endpoint is never called",
        );
      });
    } finally {
      await server.close();
    }
  },
);
