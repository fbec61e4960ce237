/**
 * Adopt speed: `comfydock adopt` of the fixture ComfyUI folder (fixtures/comfyui_folder.ts: 7 custom nodes, a
 * uv venv with 5 packages + torch, 3 models, 2 workflows) as the CLI, with warm caches (median of 3, each
 * into a new environment); and what dominates on a real venv: the hard-linked copy of its files (a torch
 * venv holds ~20,000).
 */
import { join } from "node:path";
import { cli } from "../fixtures/cli.ts";
import { adoptFixture } from "../fixtures/comfyui_folder.ts";
import { copyTree } from "../lib/fsx.ts";
import { median, record } from "./stats.ts";
import { useLocalUv } from "../fixtures/tools.ts";

export async function benchAdopt(): Promise<string[]> {
  const root = await Deno.makeTempDir({ prefix: "comfydock-bench-adopt-" });
  await useLocalUv();
  const fx = await adoptFixture(root);
  try {
    const user = await fx.folder("me");
    await fx.init();
    const runs: number[] = [];
    for (let i = 0; i < 4; i++) {
      const t = performance.now();
      const r = await cli(["adopt", user.dir, "--name", `a${i}`, "--yes"], { env: fx.env });
      if (r.code !== 0) throw new Error(r.stderr);
      if (i > 0) runs.push((performance.now() - t) / 1000); // the first one warms the mirror and uv cache
    }

    const venv = join(root, "big-venv");
    for (let d = 0; d < 200; d++) {
      const dir = join(venv, "lib", "python3", "site-packages", `pkg${d}`);
      await Deno.mkdir(dir, { recursive: true });
      for (let f = 0; f < 100; f++) await Deno.writeTextFile(join(dir, `m${f}.py`), `x = ${f}\n`.repeat(20));
    }
    let t = performance.now();
    const copied = await copyTree(venv, join(root, "big-venv-copy"), { hardlink: true });
    const linkMs = performance.now() - t;
    t = performance.now();
    await new Deno.Command("cp", { args: ["-al", venv, join(root, "big-venv-cp")] }).output();
    const cpMs = performance.now() - t;
    record("adopt.cli_s", median(runs));
    record("adopt.venv_files", copied.files);
    record("adopt.venv_link_s", linkMs / 1000);
    record("adopt.venv_link_vs_cp", linkMs / cpMs);
    return [
      `adopt of the fixture folder (CLI, warm caches): ${median(runs).toFixed(2)} s`,
      `hard-linked copy of a venv of ${copied.files} files: ${(linkMs / 1000).toFixed(2)} s ` +
      `(${copied.linked === copied.files ? "all linked" : `${copied.linked} linked`}; ` +
      `\`cp -al\` of the same tree: ${(cpMs / 1000).toFixed(2)} s, ratio ${(linkMs / cpMs).toFixed(2)})`,
    ];
  } finally {
    await fx.close();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}
