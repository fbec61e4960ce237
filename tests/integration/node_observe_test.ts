/** What observation reads from custom_nodes: our marker, ComfyUI-Manager's markers, git, links, disabled. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { observeNodes, statManifest, writeMarker } from "../../providers/nodes/observe.ts";
import { gitIn, makeNodeRepo } from "../../fixtures/node_git.ts";
import { withTempDir } from "../../fixtures/tmp.ts";

Deno.test("observe: markers of ComfyDock and ComfyUI-Manager, git HEAD and dirt, links, single files, disabled nodes", async () => {
  await withTempDir(async (root) => {
    const cn = join(root, "custom_nodes");
    await Deno.mkdir(cn);
    // ComfyUI's own checkout ships custom_nodes/websocket_image_save.py: ComfyUI's file, not a node.
    await gitIn(root, "init", "--quiet");
    await Deno.writeTextFile(join(cn, "websocket_image_save.py"), "");
    await gitIn(root, "add", "custom_nodes/websocket_image_save.py");
    const repo = await makeNodeRepo(root, "upstream", [{ tag: "v1" }]);
    // ComfyUI-Manager's "nightly" registry install: a git clone with .git/.cnr-id.
    await gitIn(root, "clone", "--quiet", repo.path, join(cn, "ComfyUI-Nightly"));
    await Deno.writeTextFile(join(cn, "ComfyUI-Nightly", ".git", ".cnr-id"), "comfyui-nightly\n");
    await Deno.writeTextFile(join(cn, "ComfyUI-Nightly", "__pycache__.pyc"), "");
    await Deno.mkdir(join(cn, "ComfyUI-Nightly", "__pycache__"));
    await Deno.writeTextFile(join(cn, "ComfyUI-Nightly", "__pycache__", "x.cpython-311.pyc"), "");
    // Ours, with one file edited by hand.
    await Deno.mkdir(join(cn, "ours"));
    await Deno.writeTextFile(join(cn, "ours", "a.py"), "edited\n");
    await Deno.writeTextFile(join(cn, "ours", "b.py"), "b\n");
    await writeMarker(join(cn, "ours"), {
      format: 1,
      id: "ours",
      source: "registry",
      version: "1.0.0",
      files: {
        "a.py": "0".repeat(64),
        "b.py": createHash("sha256").update("b\n").digest("hex"),
      },
    });
    await Deno.mkdir(join(cn, "managed.disabled"));
    await Deno.mkdir(join(cn, ".disabled", "older"), { recursive: true });
    await Deno.mkdir(join(cn, ".disabled", "mgr-pack@1_2_0"), { recursive: true });
    await Deno.symlink(join(root, "upstream"), join(cn, "linked"));
    // Single-file nodes, enabled and disabled the way the Manager does it; other files are not nodes.
    await Deno.writeTextFile(join(cn, "my_node.py"), "NODE_CLASS_MAPPINGS = {}\n");
    await Deno.writeTextFile(join(cn, "old_node.py.disabled"), "NODE_CLASS_MAPPINGS = {}\n");
    await Deno.writeTextFile(join(cn, "notes.txt"), "");

    const o = await observeNodes(cn);
    const by = Object.fromEntries(o.nodes.map((n) => [n.path, n]));
    assert.deepEqual(Object.keys(by).sort(), [
      ".disabled/mgr-pack@1_2_0",
      ".disabled/older",
      "ComfyUI-Nightly",
      "linked",
      "managed.disabled",
      "my_node.py",
      "old_node.py.disabled",
      "ours",
    ]);
    const sha = createHash("sha256").update("NODE_CLASS_MAPPINGS = {}\n").digest("hex");
    assert.deepEqual(
      [by["my_node.py"].kind, by["my_node.py"].dir, by["my_node.py"].disabled, by["my_node.py"].sha256],
      ["file", "my_node.py", false, sha],
    );
    assert.deepEqual(
      [by["old_node.py.disabled"].kind, by["old_node.py.disabled"].dir, by["old_node.py.disabled"].disabled],
      ["file", "old_node.py", true],
    );
    assert.equal(
      by[".disabled/mgr-pack@1_2_0"].dir,
      "mgr-pack",
      "the Manager's version suffix is not the name",
    );
    assert.equal(by["ComfyUI-Nightly"].kind, "git");
    assert.equal(by["ComfyUI-Nightly"].id, "comfyui-nightly");
    assert.equal(by["ComfyUI-Nightly"].installer, "manager");
    assert.equal(by["ComfyUI-Nightly"].commit, repo.commits[0].sha);
    assert.deepEqual(by["ComfyUI-Nightly"].dirty, [], "byte-code caches do not make a checkout dirty");
    assert.deepEqual(by.ours.changedFiles, ["a.py"]);
    assert.equal(by.linked.kind, "link");
    assert.equal(by.linked.linkTarget, join(root, "upstream"));
    assert.equal(by["managed.disabled"].dir, "managed");
    assert.equal(by["managed.disabled"].disabled, true);
    assert.equal(by[".disabled/older"].disabled, true);

    await Deno.writeTextFile(join(cn, "ComfyUI-Nightly", "README.md"), "changed\n");
    const dirty = (await observeNodes(cn)).nodes.find((n) => n.path === "ComfyUI-Nightly")!;
    assert.deepEqual(dirty.dirty, [" M README.md"]);
  });
});

Deno.test("observe: files whose size and mtime match the manifest are not read; any other change is hashed", async () => {
  await withTempDir(async (root) => {
    const cn = join(root, "custom_nodes");
    const dir = join(cn, "pack");
    await Deno.mkdir(dir, { recursive: true });
    const files: Record<string, string> = {};
    for (const name of ["a.py", "b.py", "c.py"]) {
      const text = `# ${name}\nprint('${name}')\n`;
      await Deno.writeTextFile(join(dir, name), text);
      files[name] = createHash("sha256").update(text).digest("hex");
    }
    const stats = statManifest(dir, files);
    assert.deepEqual(Object.keys(stats), ["a.py", "b.py", "c.py"]);
    await writeMarker(dir, { format: 1, id: "pack", source: "registry", version: "1.0.0", files, stats });
    const changed = async () => (await observeNodes(cn)).nodes[0].changedFiles;
    assert.deepEqual(await changed(), []);

    const mtime = (rel: string) => Deno.statSync(join(dir, rel)).mtime!;
    const pin = (rel: string, at: Date) => Deno.utimeSync(join(dir, rel), at, at);
    // Same size, same mtime, other bytes: the documented blind spot (a stat instead of a read)...
    const aTime = mtime("a.py");
    await Deno.writeTextFile(
      join(dir, "a.py"),
      (await Deno.readTextFile(join(dir, "a.py"))).replace("a", "z"),
    );
    pin("a.py", aTime);
    // ...an edit that moves the mtime is hashed and seen even at the same size...
    await Deno.writeTextFile(
      join(dir, "b.py"),
      (await Deno.readTextFile(join(dir, "b.py"))).replace("b", "y"),
    );
    pin("b.py", new Date(mtime("b.py").getTime() + 5000));
    // ...and a touch alone (new mtime, same bytes) is hashed and found unchanged.
    pin("c.py", new Date(mtime("c.py").getTime() + 5000));
    assert.deepEqual(await changed(), ["b.py"]);

    // A marker written before stats existed hashes every file: the same-stat edit shows there.
    await writeMarker(dir, { format: 1, id: "pack", source: "registry", version: "1.0.0", files });
    assert.deepEqual(await changed(), ["a.py", "b.py"]);
    await Deno.remove(join(dir, "c.py"));
    assert.deepEqual(await changed(), ["a.py", "b.py", "c.py"]);
  });
});
