/**
 * Completions that complete (README "Install the CLI"): the README's own install lines run on a fresh home
 * directory, then real bash, zsh and fish complete commands and options after global options and
 * arguments, the workspace's environments, nodes, models, workflows and targets, and file names.
 * zsh and fish are Debian packages (.ci/run installs them); without one, its tests are ignored, saying so.
 */
import assert from "node:assert/strict";
import { testNeeds } from "../../fixtures/tools.ts";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { makeEnvSkeleton } from "../../fixtures/env_skeleton.ts";
import { withTempDir } from "../../fixtures/tmp.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

async function has(cmd: string): Promise<boolean> {
  return await new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" }).output()
    .then((o) => o.success, () => false);
}
const HAS_ZSH = await has("zsh");
const HAS_FISH = await has("fish");
const BASH_COMPLETION = "/usr/share/bash-completion/bash_completion";
const HAS_BASH_COMPLETION = await Deno.stat(BASH_COMPLETION).then(() => true, () => false);

async function sh(shell: string, script: string, env: Record<string, string>, cwd?: string): Promise<string> {
  const out = await new Deno.Command(shell, {
    args: ["-c", script],
    env,
    cwd,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  assert.ok(out.success, `${shell} -c ${script}\n${dec.decode(out.stdout)}${dec.decode(out.stderr)}`);
  return dec.decode(out.stdout);
}

/** The README's install lines (the fenced block after "Install the CLI"), comments dropped. */
async function readmeInstallLines(): Promise<string[]> {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  const block = /Install the CLI as `comfydock`[^\n]*\n\n```sh\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(block, "the README has an install block");
  return block.split("\n").map((l) => l.replace(/\s+#.*$/, "").trim()).filter((l) => l && !l.startsWith("#"));
}

/**
 * A workspace with two environments that differ (so `-e` matters), a fresh HOME where the README's lines
 * install the CLI and the scripts, and the environment variables every shell runs with.
 */
async function setUp(dir: string) {
  const ws = join(dir, "ws");
  await makeEnvSkeleton(
    ws,
    "other",
    '\n[tool.comfydock.nodes.other-node]\nsource = "dev"\npath = "/x"\n',
  );
  const paths = await makeEnvSkeleton(
    ws,
    "studio",
    '\n[tool.comfydock.nodes.impact-pack]\nsource = "dev"\npath = "/x"\n' +
      `\n[tool.comfydock.models.sdxl-base]\nsha256 = "${"a".repeat(64)}"\ncategory = "checkpoints"\n` +
      'filename = "sdxl.safetensors"\n' +
      '\n[tool.comfydock.workflows.tracked."portrait flow"]\nfile = "workflows/portrait flow.json"\n',
  );
  await Deno.mkdir(paths.userWorkflows, { recursive: true });
  await Deno.writeTextFile(join(paths.userWorkflows, "portrait flow.json"), "{}");
  await Deno.writeTextFile(join(paths.userWorkflows, "landscape.json"), "{}");
  const home = join(dir, "home");
  await Deno.mkdir(home);
  await Deno.writeTextFile(join(dir, "file one.safetensors"), "");
  const env: Record<string, string> = {
    HOME: home,
    PATH: `${join(home, ".deno", "bin")}:${Deno.env.get("PATH")}`,
    COMFYDOCK_HOME: ws,
    DENO_DIR: Deno.env.get("DENO_DIR") ?? join(Deno.env.get("HOME") ?? "/root", ".cache", "deno"),
    NO_COLOR: "1",
  };
  for (const line of await readmeInstallLines()) await sh("bash", line, env, ROOT);
  return { env, home };
}

/** Completes `line` (a trailing space starts a new, empty word) with bash's COMP_WORDS/COMP_CWORD. */
async function bashComplete(line: string, env: Record<string, string>, cwd: string): Promise<string[]> {
  const words = line.split(" ");
  const quoted = words.map((w) => `'${w}'`).join(" ");
  const script = `source ${BASH_COMPLETION}; __load_completion comfydock || exit 3; ` +
    `COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _comfydock; printf '%s\\n' "\${COMPREPLY[@]}"`;
  return (await sh("bash", script, env, cwd)).split("\n").filter(Boolean);
}

testNeeds(
  HAS_BASH_COMPLETION ? null : "the bash-completion package",
  "bash: the README's lines install completions that complete after global options and arguments",
  async () => {
    await withTempDir(async (dir) => {
      const { env } = await setUp(dir);
      const c = (line: string) => bashComplete(line, env, dir);
      assert.deepEqual(await c("comfydock -e "), ["other", "studio"]);
      assert.deepEqual(await c("comfydock -e studio node re"), ["remove"]);
      assert.deepEqual(await c("comfydock --lock-timeout 5 node remove "), ["impact-pack"]);
      assert.deepEqual(
        await c("comfydock -e other node remove "),
        ["other-node"],
        "-e chooses the environment",
      );
      assert.deepEqual(await c("comfydock --env=other node update "), ["other-node"]);
      assert.deepEqual(await c("comfydock model remove "), ["sdxl-base"]);
      assert.deepEqual(await c("comfydock workflow untrack "), ["portrait\\ flow"]);
      assert.deepEqual(await c("comfydock workflow track "), ["landscape"], "only untracked workflows");
      assert.deepEqual(await c("comfydock plan --target node."), ["node.impact-pack"]);
      assert.deepEqual(await c("comfydock plan --det"), ["--detailed-exitcode"]);
      assert.deepEqual(await c("comfydock completions "), ["bash", "fish", "zsh"]);
      // File names come from bash itself: names with spaces, directories, anything on disk.
      assert.deepEqual(await c("comfydock model add fi"), ["file one.safetensors"]);
      assert.deepEqual(await c("comfydock --json workflow analyze fil"), ["file one.safetensors"]);
      assert.deepEqual(await c("comfydock run -- --li"), [], "after -- the words are ComfyUI's");
    });
  },
);

testNeeds(
  HAS_ZSH ? null : "zsh (.ci/run installs it)",
  "zsh: installed on fpath as the README says, it is found by compinit and completes",
  async () => {
    await withTempDir(async (dir) => {
      const { env, home } = await setUp(dir);
      const script = join(home, ".zfunc", "_comfydock");
      await sh("zsh", `zsh -n '${script}'`, env);
      const found = await sh(
        "zsh",
        `fpath=(~/.zfunc $fpath); autoload -U compinit; compinit -u -d ${home}/.zcompdump; print -r -- $_comps[comfydock]`,
        env,
      );
      assert.equal(found.trim(), "_comfydock");
      // The function itself, with the completion system's builtins stood in for by plain functions.
      const complete = (words: string[]) =>
        sh(
          "zsh",
          `compdef() {}; source '${script}'; compadd() { print -rl -- "\${@[2,-1]}"; }; ` +
            `_files() { print -r -- ":files $*"; }; words=(${words.map((w) => `'${w}'`).join(" ")}); ` +
            `CURRENT=${words.length}; _comfydock`,
          env,
          dir,
        );
      assert.deepEqual((await complete(["comfydock", "-e", ""])).trim().split("\n"), ["other", "studio"]);
      assert.equal((await complete(["comfydock", "-e", "other", "node", "remove", ""])).trim(), "other-node");
      assert.equal((await complete(["comfydock", "model", "add", ""])).trim(), ":files");
      assert.equal((await complete(["comfydock", "init", ""])).trim(), ":files -/");
    });
  },
);

testNeeds(
  HAS_FISH ? null : "fish (.ci/run installs it)",
  "fish: installed where the README says, fish finds it and completes",
  async () => {
    await withTempDir(async (dir) => {
      const { env, home } = await setUp(dir);
      await sh("fish", `fish --no-execute ${home}/.config/fish/completions/comfydock.fish`, env);
      const c = async (line: string) =>
        (await sh("fish", `complete -C '${line}'`, env, dir)).split("\n").filter(Boolean).map((l) =>
          l.split("\t")[0]
        );
      assert.deepEqual(await c("comfydock -e "), ["other", "studio"]);
      assert.deepEqual(await c("comfydock -e other node remove "), ["other-node"]);
      assert.deepEqual(await c("comfydock workflow untrack "), ["portrait flow"]);
      assert.deepEqual(await c("comfydock model add fi"), ["file one.safetensors"]);
    });
  },
);
