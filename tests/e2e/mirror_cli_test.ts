/**
 * Behind a firewall (README "Behind a mirror or firewall"): git's own `url.<mirror>.insteadOf` carries the
 * ComfyUI repository (and git nodes) to a mirror while `.cec` keeps the original URL.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, jsonData } from "../../fixtures/cli.ts";
import { buildComfyUIRepo } from "../../fixtures/comfyui_repo.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { buildWheelhouse, STANDARD_WHEELS } from "../../fixtures/wheels.ts";
import * as git from "../../providers/git/git.ts";
import { testPython, useLocalUv } from "../../fixtures/tools.ts";

await useLocalUv();
const PY = await testPython();

Deno.test("create with the default ComfyUI URL goes through git's insteadOf; .cec keeps github.com", async () => {
  await withTempDir(async (dir) => {
    const mirror = await buildComfyUIRepo(join(dir, "git-mirror", "ComfyUI"));
    const wheels = await buildWheelhouse(join(dir, "wheels"), STANDARD_WHEELS);
    const gitconfig = join(dir, "gitconfig");
    await Deno.writeTextFile(
      gitconfig,
      `[url "${mirror.url}"]\n\tinsteadOf = https://github.com/comfyanonymous/ComfyUI\n`,
    );
    const env: Record<string, string> = {
      COMFYDOCK_HOME: join(dir, "home"),
      GIT_CONFIG_GLOBAL: gitconfig,
      // uv's own variables: the wheelhouse stands in for PyPI.
      UV_FIND_LINKS: wheels,
      UV_NO_INDEX: "1",
      UV_PYTHON_DOWNLOADS: "never",
      ...(Deno.env.get("COMFYDOCK_UV") ? { COMFYDOCK_UV: Deno.env.get("COMFYDOCK_UV")! } : {}),
    };
    assert.equal((await cli(["init"], { env })).code, 0);
    const created = await cli(["create", "e", "--python", PY.minor, "--torch-backend", "cpu", "--json"], {
      env,
    });
    assert.equal(created.code, 0, created.stderr);
    const r = jsonData(created);
    assert.equal(r.comfyui_url, "https://github.com/comfyanonymous/ComfyUI");
    assert.equal(r.comfyui_commit, mirror.tags["v0.10.0"]);
    const cec = join(dir, "home", "environments", "e", ".cec");
    assert.match(
      await Deno.readTextFile(join(cec, "pyproject.toml")),
      /comfyui_url = "https:\/\/github\.com\/comfyanonymous\/ComfyUI"/,
    );
    assert.equal(
      await git.revParse(join(dir, "home", "environments", "e", "ComfyUI"), "HEAD"),
      mirror.tags["v0.10.0"],
    );
  });
});
