/**
 * `deno task demo`: the whole loop on a built-in example, offline. Builds a temporary workspace from
 * fixtures — a local ComfyUI git repo, a wheelhouse for uv, a ComfyUI Registry and a Hugging Face-like model
 * host on 127.0.0.1 — then drives the real CLI as a user would: create, node add, model add, workflow track,
 * plan (no changes), drift on disk, plan shows it, apply heals it, plan is empty again.
 *
 * Options: --keep (leave the workspace for a look around), --quiet (only the step lines).
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildComfyUIRepo } from "../fixtures/comfyui_repo.ts";
import { ModelServer } from "../fixtures/model_server.ts";
import { startRegistryServer } from "../fixtures/registry_server.ts";
import { buildWheelhouse, STANDARD_WHEELS } from "../fixtures/wheels.ts";
import { run } from "../lib/proc.ts";

const MAIN = fileURLToPath(new URL("../cmd/main.ts", import.meta.url));
const keep = Deno.args.includes("--keep");
const quiet = Deno.args.includes("--quiet");
const color = Deno.stdout.isTerminal() && !Deno.env.get("NO_COLOR");
const bold = (s: string) => (color ? `\x1b[1m${s}\x1b[22m` : s);
const dim = (s: string) => (color ? `\x1b[90m${s}\x1b[39m` : s);

function banner(s: string): void {
  console.log(`\n${bold(`── ${s} ${"─".repeat(Math.max(0, 72 - s.length))}`)}`);
}

const root = await Deno.makeTempDir({ prefix: "comfydock-demo-" });
const home = join(root, "workspace");
const cleanups: (() => Promise<void>)[] = [];

let env: Record<string, string> = {};

/** Runs the CLI as a user types it; fails the demo when the exit code is not the expected one. */
async function comfydock(args: string[], expect = 0): Promise<void> {
  console.log(`\n${bold("$ comfydock " + args.join(" "))}`);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    env,
    stdout: quiet ? "piped" : "inherit",
    stderr: quiet ? "piped" : "inherit",
  }).output();
  if (out.code !== expect) {
    if (quiet) console.log(new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout));
    throw new Error(`'comfydock ${args.join(" ")}' exited ${out.code}, expected ${expect}`);
  }
  if (expect !== 0) console.log(dim(`(exit code ${out.code})`));
}

function shell(line: string): void {
  console.log(`\n${bold("$ " + line)}`);
}

try {
  banner("Fixtures: everything on this machine, nothing from the network");
  const comfy = await buildComfyUIRepo(join(root, "fixtures", "ComfyUI"));
  console.log(`ComfyUI git repo   ${comfy.url} (tags ${Object.keys(comfy.tags).join(", ")})`);
  const wheels = await buildWheelhouse(join(root, "fixtures", "wheels"), STANDARD_WHEELS);
  console.log(`Python wheelhouse  ${wheels} (${STANDARD_WHEELS.length} wheels, used by uv)`);
  const registry = await startRegistryServer([
    {
      id: "comfyui-demo-upscaler",
      name: "Demo Upscaler",
      repository: "https://github.com/demo/comfyui-demo-upscaler",
      downloads: 1200,
      versions: [
        { version: "1.2.0", pack: { classes: ["DemoUpscale"], requirements: ["gamma>=1"] } },
        { version: "1.1.0", pack: { classes: ["DemoUpscale"] } },
      ],
    },
  ]);
  cleanups.push(() => registry.close());
  console.log(`ComfyUI Registry   ${registry.url} (node pack comfyui-demo-upscaler 1.1.0, 1.2.0)`);
  const models = ModelServer.start();
  cleanups.push(() => models.close());
  const modelBytes = new Uint8Array(256 * 1024).map((_, i) => (i * 31 + 7) % 251);
  models.hf("demo/tiny-sd", "tiny-sd.safetensors", modelBytes);
  console.log(`Hugging Face host  ${models.url} (demo/tiny-sd/tiny-sd.safetensors, 256 KiB)`);

  const uv = Deno.env.get("COMFYDOCK_UV") ?? "uv";
  env = {
    PATH: Deno.env.get("PATH") ?? "",
    HOME: root,
    COMFYDOCK_HOME: home,
    COMFYDOCK_COMFYUI_URL: comfy.url,
    COMFYDOCK_REGISTRY_URL: registry.url,
    COMFYDOCK_UV: uv,
    HF_ENDPOINT: models.url,
    // uv reads packages from the wheelhouse only, and never downloads a Python build.
    UV_FIND_LINKS: wheels,
    UV_NO_INDEX: "1",
    UV_PYTHON_DOWNLOADS: "never",
    ...(color ? {} : { NO_COLOR: "1" }),
  };

  banner("1. A workspace and an environment");
  await comfydock(["init"]);
  await comfydock(["create", "demo", "--comfyui", "latest", "--use"]);
  await comfydock(["list"]);

  banner("2. Desired state: a node pack, a model, a workflow (each one edit of .cec, then plan+apply)");
  await comfydock(["node", "add", "comfyui-demo-upscaler", "--yes"]);
  await comfydock([
    "model",
    "add",
    "hf:demo/tiny-sd/tiny-sd.safetensors",
    "--category",
    "checkpoints",
    "--yes",
  ]);
  const envRoot = join(home, "environments", "demo");
  const uiWorkflows = join(envRoot, "ComfyUI", "user", "default", "workflows");
  await Deno.mkdir(uiWorkflows, { recursive: true });
  const workflow = {
    last_node_id: 2,
    nodes: [
      {
        id: 1,
        type: "CheckpointLoaderSimple",
        mode: 0,
        widgets_values: ["tiny-sd.safetensors"],
        properties: { "Node name for S&R": "CheckpointLoaderSimple" },
      },
      { id: 2, type: "DemoUpscale", mode: 0, properties: { cnr_id: "comfyui-demo-upscaler", ver: "1.2.0" } },
    ],
    links: [],
    version: 0.4,
  };
  shell("# save a workflow in ComfyUI (user/default/workflows/portrait.json)");
  await Deno.writeTextFile(join(uiWorkflows, "portrait.json"), JSON.stringify(workflow, null, 2));
  await comfydock(["workflow", "track", "portrait", "--yes"]);
  shell("cat .cec/pyproject.toml");
  console.log(await Deno.readTextFile(join(envRoot, ".cec", "pyproject.toml")));
  await comfydock(["log"]);

  banner("3. Converged: plan has nothing to do, and ComfyUI really starts with every pack loaded");
  await comfydock(["plan", "--detailed-exitcode"]);
  await comfydock(["health"]);
  await comfydock(["status"]);

  banner("4. Drift: someone changes the machine by hand");
  const nodeDir = join(envRoot, "ComfyUI", "custom_nodes", "comfyui-demo-upscaler");
  shell(`rm -rf ComfyUI/custom_nodes/comfyui-demo-upscaler`);
  await Deno.remove(nodeDir, { recursive: true });
  shell("mkdir ComfyUI/custom_nodes/hand-installed   # a node pack installed outside ComfyDock");
  await Deno.mkdir(join(envRoot, "ComfyUI", "custom_nodes", "hand-installed"));
  await Deno.writeTextFile(
    join(envRoot, "ComfyUI", "custom_nodes", "hand-installed", "__init__.py"),
    "# by hand\n",
  );
  shell("uv pip uninstall gamma   # a package removed from the venv");
  await run(uv, ["pip", "uninstall", "--python", join(envRoot, ".venv"), "gamma"], {
    env: { UV_PYTHON_DOWNLOADS: "never" },
  });
  shell("rm ComfyUI/models/checkpoints/tiny-sd.safetensors");
  await Deno.remove(join(envRoot, "ComfyUI", "models", "checkpoints", "tiny-sd.safetensors"));
  shell("rm ComfyUI/user/default/workflows/portrait.json");
  await Deno.remove(join(uiWorkflows, "portrait.json"));

  banner("5. The nightly drift report (what the GitHub Action files as an issue), then the plan");
  await comfydock(["drift"], 2);
  await comfydock(["plan", "--detailed-exitcode"], 2);

  banner("6. apply heals it (then checks that ComfyUI starts); what it removed is kept in the trash");
  await comfydock(["apply", "--yes", "--verify"]);
  await comfydock(["plan", "--detailed-exitcode"]);

  banner("7. The other direction: a workflow edited in the UI is captured into .cec, never overwritten");
  shell("# change the checkpoint strength in ComfyUI and save (user/default/workflows/portrait.json)");
  const edited = { ...workflow, extra: { ds: { scale: 1.2 } } };
  await Deno.writeTextFile(join(uiWorkflows, "portrait.json"), JSON.stringify(edited, null, 2));
  await comfydock(["status"]);
  await comfydock(["capture"]);
  await comfydock(["plan", "--detailed-exitcode"]);

  banner("8. GitOps: review a change as a saved plan, apply exactly that plan, roll it back");
  const beforeUpdate = (await run("git", ["-C", join(envRoot, ".cec"), "rev-parse", "--short=12", "HEAD"]))
    .stdout
    .trim();
  await comfydock(["node", "update", "comfyui-demo-upscaler", "--version", "1.1.0", "--no-apply"]);
  const planFile = join(root, "reviewed.plan.json");
  await comfydock(["plan", "--out", planFile]);
  await comfydock(["apply", planFile]);
  shell("# the same saved plan again: the disk moved on, so it is refused");
  await comfydock(["apply", planFile], 1);
  await comfydock(["rollback", beforeUpdate, "--yes"]);
  await comfydock(["log", "-n", "3"]);
  await comfydock(["plan", "--detailed-exitcode"]);
  await comfydock(["run", "--", "--exit-code", "0"]);

  banner("Done: the environment matches .cec again");
  console.log(
    keep ? `Workspace kept at ${home} (COMFYDOCK_HOME=${home})` : "Run with --keep to look around.",
  );
} finally {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  if (!keep) await Deno.remove(root, { recursive: true }).catch(() => {});
}
