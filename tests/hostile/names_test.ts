/**
 * Names in `.cec` that try to reach outside the environment: node ids, a node's `directory`, a single-file
 * node's `filename` and `url` (http(s) only), a git node's `ref` (never an option), a model's `category` and
 * `filename`, a workflow's `file` (`..`, absolute paths, `\`, NUL, reserved device names); and URLs that carry
 * someone's credentials (a model source, a single-file node, a git repository).
 * `validate` and `plan` name the key with file and line; `apply` refuses too; a victim folder beside the
 * workspace (what the payloads point at) is never touched; `.cec` is left as it was. A planted link on the
 * way (a models folder linked outside) is not written through either.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli } from "../../fixtures/cli.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { readTree } from "../../fixtures/bundle_archives.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import { run } from "../../lib/proc.ts";

const SHA = "b".repeat(64);
/** From ComfyUI/custom_nodes or ComfyUI/models of `home/environments/e`: up to the test's temp dir. */
const UP = "../../../../../";

interface Case {
  name: string;
  toml: string;
  /** The key path the error must name. */
  key: RegExp;
  /** Also tried with `apply --yes` (the payloads that point at the victim folder). */
  apply?: boolean;
  /** A credential the case carries: never echoed in the error. */
  secret?: string;
}

const node = (id: string, extra = "") =>
  `\n[tool.comfydock.nodes.${id}]\nsource = "registry"\nversion = "1.0.0"\n${extra}`;
const model = (category: string, filename: string, url = "http://127.0.0.1:9/f") =>
  `\n[tool.comfydock.models.m]\nsha256 = "${SHA}"\ncategory = ${JSON.stringify(category)}\nfilename = ${
    JSON.stringify(filename)
  }\nsources = [{ type = "url", url = ${JSON.stringify(url)} }]\n`;
/** Someone else's credential, as it would sit in their `.cec`. */
const TOKEN = "authorTOKEN0123456789";

function cases(victim: string): Case[] {
  return [
    {
      name: "node id ..",
      toml: node(`"${UP}victim"`),
      apply: true,
      key: /tool\.comfydock\.nodes\.\.\.\/.*victim: '\.\.\/.*victim' contains a path separator/,
    },
    {
      name: "node id with NUL",
      toml: node(`"a\\u0000b"`),
      key: new RegExp("tool\\.comfydock\\.nodes\\.a\u0000b: .*control character"),
    },
    {
      name: "node id reserved name",
      toml: node(`aux`),
      key: /tool\.comfydock\.nodes\.aux: .*reserved device name/,
    },
    {
      name: "directory ..",
      toml: node("good", `directory = "${UP}victim"\n`),
      apply: true,
      key: /nodes\.good\.directory: .*path separator/,
    },
    { name: "directory ../x", toml: node("good", `directory = "../x"\n`), key: /nodes\.good\.directory/ },
    {
      name: "directory \\",
      toml: node("good", `directory = "..\\\\..\\\\victim"\n`),
      key: /nodes\.good\.directory/,
    },
    {
      name: "directory con",
      toml: node("good", `directory = "con"\n`),
      key: /nodes\.good\.directory: .*reserved/,
    },
    {
      name: "model category ../../x",
      toml: model(`${UP}victim`, "f.safetensors"),
      apply: true,
      key: /models\.m\.category: .*'\.\.'/,
    },
    {
      name: "model filename ../x",
      toml: model("checkpoints", `${UP}${UP}victim/f.safetensors`),
      key: /models\.m\.filename/,
    },
    {
      name: "model filename absolute",
      toml: model("checkpoints", `${victim}/f.safetensors`),
      apply: true,
      key: /models\.m\.filename: .*absolute/,
    },
    {
      name: "model category \\",
      toml: model("a\\b", "f.safetensors"),
      key: /models\.m\.category: .*contains '\\'/,
    },
    {
      name: "model filename NUL",
      toml: model("checkpoints", "f\u0000.safetensors"),
      key: /models\.m\.filename: .*control/,
    },
    {
      name: "file node filename ..",
      toml: `\n[tool.comfydock.nodes.f]\nsource = "file"\nfilename = "${UP}victim/x.py"\nsha256 = "${SHA}"\n`,
      apply: true,
      key: /nodes\.f\.filename: .*path separator/,
    },
    {
      name: "file node url file://",
      toml: `\n[tool.comfydock.nodes.f]\nsource = "file"\nfilename = "x.py"\nsha256 = "${SHA}"\n` +
        `url = "file://${victim}/precious.txt"\n`,
      key: /nodes\.f\.url: .*http\(s\)/,
    },
    {
      name: "git node ref that is an option",
      toml: `\n[tool.comfydock.nodes.g]\nsource = "git"\nrepository = "https://example.invalid/g"\n` +
        `commit = "${"c".repeat(40)}"\nref = "--upload-pack=touch ${victim}/x"\n`,
      key: /nodes\.g\.ref: .*must not start with '-'/,
    },
    {
      name: "model URL with its author's token",
      toml: model("checkpoints", "f.safetensors", `http://127.0.0.1:9/f?download=1&token=${TOKEN}`),
      apply: true,
      secret: TOKEN,
      key: /models\.m\.sources\.0\.url: carries credentials \(its 'token' parameter\)/,
    },
    {
      name: "model URL with user:password@",
      toml: model("checkpoints", "f.safetensors", `https://me:${TOKEN}@models.example/f`),
      secret: TOKEN,
      key: /models\.m\.sources\.0\.url: carries credentials \(user:password@\)/,
    },
    {
      name: "file node URL with a token",
      toml: `\n[tool.comfydock.nodes.f]\nsource = "file"\nfilename = "x.py"\nsha256 = "${SHA}"\n` +
        `url = "https://example.invalid/x.py?access_token=${TOKEN}"\n`,
      secret: TOKEN,
      key: /nodes\.f\.url: carries credentials \(its 'access_token' parameter\)/,
    },
    {
      name: "git node repository with a token as its user",
      toml:
        `\n[tool.comfydock.nodes.g]\nsource = "git"\nrepository = "https://${TOKEN}@example.invalid/g"\n` +
        `commit = "${"c".repeat(40)}"\n`,
      secret: TOKEN,
      key: /nodes\.g\.repository: carries credentials/,
    },
    {
      name: "workflow file ..",
      toml: `\n[tool.comfydock.workflows.tracked.w]\nfile = "workflows/${UP}victim/w.json"\n`,
      apply: true,
      key: /workflows\.tracked\.w\.file/,
    },
  ];
}

Deno.test("hostile names: validate, plan and apply refuse, naming file, line and key; nothing outside moves", async () => {
  await withTempDir(async (dir) => {
    const { paths, env } = await createRealEnv(join(dir, "home"), "e");
    const victim = join(dir, "victim");
    await Deno.mkdir(join(victim, "sub"), { recursive: true });
    await Deno.writeTextFile(join(victim, "precious.txt"), "the user's\n");
    await Deno.writeTextFile(join(victim, "f.safetensors"), "the user's model\n");
    const victimBefore = await readTree(victim);
    const original = await Deno.readTextFile(paths.pyproject);
    const cecStatus = async () => (await run("git", ["-C", paths.cec, "status", "--porcelain"])).stdout;
    const cecLog = async () => (await run("git", ["-C", paths.cec, "log", "--format=%H"])).stdout;
    const logBefore = await cecLog();
    for (const c of cases(victim)) {
      const text = original + c.toml;
      await Deno.writeTextFile(paths.pyproject, text);
      const statusBefore = await cecStatus();
      for (const args of [["validate"], ["plan"], ...(c.apply ? [["apply", "--yes"]] : [])]) {
        const r = await cli(args, { env });
        const what = `${c.name}: ${args.join(" ")}`;
        assert.equal(r.code, 1, `${what}\n${r.stdout}${r.stderr}`);
        const out = r.stdout + r.stderr;
        assert.match(out, c.key, what);
        if (c.secret) assert.ok(!out.includes(c.secret), `${what}: the credential is echoed:\n${out}`);
        // file:line, where the line holds the offending key or value
        const m = /pyproject\.toml:(\d+):/.exec(out);
        assert.ok(m, `${what}: no line number in\n${out}`);
        const line = text.split("\n")[Number(m[1]) - 1];
        assert.ok(
          /tool\.comfydock|directory|category|filename|file =|url =|ref =|repository =/.test(line),
          `${what}: line ${m[1]} is '${line}'`,
        );
      }
      assert.deepEqual(await readTree(victim), victimBefore, `${c.name}: the victim folder changed`);
      assert.equal(await Deno.readTextFile(paths.pyproject), text, `${c.name}: .cec/pyproject.toml changed`);
      assert.equal(await cecStatus(), statusBefore, `${c.name}: .cec changed`);
    }
    assert.equal(await cecLog(), logBefore, "no commit was made");
  });
});

Deno.test("hostile names: a models folder linked outside the environment is not written through", async () => {
  await withTempDir(async (dir) => {
    const { paths, env } = await createRealEnv(join(dir, "home"), "e");
    const victim = join(dir, "victim");
    await Deno.mkdir(victim);
    await Deno.writeTextFile(join(victim, "f.safetensors"), "the user's, wrong content\n");
    const before = await readTree(victim);
    // What a ComfyUI checkout from a hostile URL could contain: models/evil -> outside.
    await Deno.symlink(victim, join(paths.models, "evil"));
    const store = join(dir, "src.safetensors");
    await Deno.writeTextFile(store, "model bytes\n");
    const r = await cli(["model", "add", store, "--category", "evil", "--yes"], { env });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /refusing .*models\/evil\/src\.safetensors.*once links are resolved.*is outside/);
    assert.deepEqual(await readTree(victim), before);
  });
});

Deno.test("hostile names: a dev node's own folder outside the environment is only linked, never written or removed", async () => {
  await withTempDir(async (dir) => {
    const { paths, env } = await createRealEnv(join(dir, "home"), "e");
    const mine = join(dir, "my-node");
    await Deno.mkdir(mine);
    await Deno.writeTextFile(join(mine, "__init__.py"), "NODE_CLASS_MAPPINGS = {}\n");
    const before = await readTree(mine);
    for (const args of [["node", "add", mine, "--dev", "--yes"], ["node", "remove", "my-node", "--yes"]]) {
      const r = await cli(args, { env });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.deepEqual(await readTree(mine), before, args.join(" "));
    }
    assert.equal((await Deno.lstat(mine)).isDirectory, true);
    const left = (await Array.fromAsync(Deno.readDir(paths.customNodes))).filter((e) => e.isSymlink);
    assert.deepEqual(left, [], "the link was removed");
  });
});
