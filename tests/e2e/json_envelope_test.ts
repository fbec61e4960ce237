/**
 * `--json` is a contract for scripts (README "JSON output"): every command prints exactly one document on
 * stdout, `{format_version: 1, command, ok, data}` or `{..., ok: false, error: {code, message, hint}}`,
 * argument errors included. This runs every command of the CLI with --json in a fixture workspace, offline
 * (a registry and the ComfyUI repository on this machine), validates each document with a zod schema, and
 * fails when a command exists that this file does not run (so a new command gets checked too).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Command } from "@commander-js/extra-typings";
import { buildProgram } from "../../cmd/main.ts";
import { cli, type CliResult, envelopeOf, type JsonEnvelope } from "../../fixtures/cli.ts";
import { createRealEnv } from "../../fixtures/real_env.ts";
import { deadUrl, startRegistryServer } from "../../fixtures/registry_server.ts";
import { withTempDir } from "../../fixtures/tmp.ts";

/** Every leaf command path of the CLI (`node add`, `list`, ...). */
function leafCommands(): string[] {
  const walk = (c: Command, path: string[]): string[] => {
    const subs = c.commands as Command[];
    return subs.length ? subs.flatMap((s) => walk(s, [...path, s.name()])) : [path.join(" ")];
  };
  return walk(buildProgram(), []);
}

interface Case {
  args: string[];
  ok: boolean;
  stdin?: string;
  env?: Record<string, string>;
}

/**
 * The `data` of each command, in the README's own notation and copied from its table (the test checks the
 * README still shows each one): `key?` may be absent, `key: { ... }` / `key: [{ ... }]` is checked inside,
 * `...` leaves the rest open, `...change` is the keys every change adds. Every other key of the data is an
 * error too, so a key added to a command fails here until the README documents it.
 */
const DATA_SHAPES: Record<string, string> = {
  "node add": "{ nodes: [{ id, spec, requirements, warnings }], ...change }",
  "node remove": "{ nodes: [{ id, spec, requirements, warnings }], ...change }",
  "node update": "{ nodes: [{ id, spec, requirements, warnings }], ...change }",
  "node enable": "{ nodes: [{ id, spec, requirements, warnings }], ...change }",
  "node disable": "{ nodes: [{ id, spec, requirements, warnings }], ...change }",
  "model add": "{ models: [{ key, spec }], ...change }",
  "model remove": "{ models: [{ key, spec }], ...change }",
  "workflow track": "{ workflows: [name], warnings, ...change }",
  "workflow untrack": "{ workflows: [name], ...change }",
  "workflow import": "{ name, file, format, nodes, models, skipped, ...change }",
  "comfyui update": "{ from: { version, commit }, to, dependencies: { added, removed }, ...change }",
  "rollback": "{ sha, saved, ...change }",
  "pull": "{ environment, before, after, changed, ...change }",
  "plan": "{ format_version, environment, created_at, fingerprints, targets?, actions, notes }",
  "apply": "{ plan, accepted, applied, kept, summary: { add, change, remove }, trash, notes, health? }",
  "sync": "{ plan, accepted, applied, kept, summary: { add, change, remove }, trash, notes, health? }",
  "status": "{ environment, in_sync, resources: [{ address, state, reason }], notes, health }",
  "drift": "{ environment, drifted, groups, notes, plan }",
  "validate": "{ valid, errors, warnings }",
  "capture": "{ workflows, nodes, packages, skipped, commit }",
  "health":
    "{ format_version, environment, checked_at, duration_ms, healthy, started, exit_code, timed_out, " +
    "error, missing_module, method, packs: [{ dir, id, status, classes, ... }], output_tail }",
  "repair": "{ recovered }",
  "commit": "{ commit }",
  "log": "{ entries: [{ sha, date, message }] }",
  "init": "{ root, created }",
  "create":
    "{ name, path, active, comfyui_version, comfyui_commit, comfyui_url, python_version, python_path, " +
    "torch_backend, torch, dependencies, cec_commit, seconds }",
  "list": "{ environments: [{ name, path, active, comfyui_version, comfyui_commit, python_version, " +
    "torch_backend, torch }] }",
  // "the environment, as in list": the inside of list's row.
  "use": "{ name, path, active, comfyui_version, comfyui_commit, python_version, torch_backend, torch }",
  "delete": "{ name, path, deleted, modifiedWorkflows, uncommittedCec, untrackedWorkflows, modelFiles, " +
    "modelBytes }",
  "run": "{ environment, exit_code }",
  "config get": "{ key, value }",
  "config set": "{ key, value }",
  "config list": "{ settings, keys }",
  "config set-key": "{ service, masked }",
  "node list": "{ nodes: [{ id, pin, state, detail }] }",
  "node find": "{ source, results }",
  "node show": "{ node, versions }",
  "node index update": "{ registryNodes, registryClasses, mapClasses, coreTypes, warnings }",
  "model scan":
    "{ results: [{ root, files, unchanged, hashed, bytesHashed, removed, warnings }], index: { models, files } }",
  "model index rebuild":
    "{ results: [{ root, files, unchanged, hashed, bytesHashed, removed, warnings }], index: { models, files } }",
  "model list": "{ environment, models: [{ key, category, filename, state, path, available_at }] }",
  "model find": "{ models }",
  "model show": "{ key, spec, indexed }",
  "model sources": "{ key, configured, found, written, commit, notes, civitai }",
  "workflow status": "{ environment, workflows: [{ name, file, tracked, state, hashes }] }",
  "workflow sync": "{ captured, restored, conflicts, commit }",
  "workflow analyze": "{ file, format, node_index, nodes, models, warnings }",
  "workflow export": "{ file, bytes, nodes, models, unpinned_packs, unknown_node_types, unrecorded_models }",
  "export": "{ file, bytes, manifest, skipped, warnings }",
  "import":
    "{ environment, root, source, built, applied, remaining, devNodes, modelsPlaced, missingModels, " +
    "notes, report }",
  "push": "{ environment, pushed, uncommitted }",
  "completions": "{ shell, script }",
  "action": "{ command, exitcode, changes, plan_json, environments, errors, annotations }",
};
/** Documented shapes this test sees only as failures (their success needs what a test offline lacks). */
const UNCHECKED_SHAPES = ["create", "pull", "push", "action"];
/** The keys `...change` stands for (the README's "change" row). */
const CHANGE_KEYS = ["accepted", "commit", "plan", "applied", "kept", "trash"];
const README = await Deno.readTextFile(new URL("../../README.md", import.meta.url));

interface Shape {
  keys: Map<string, { optional: boolean; inner?: Shape; array: boolean }>;
  open: boolean;
}

/** Parses the README's notation (see DATA_SHAPES); throws on anything else, so a typo is not a pass. */
function parseShape(text: string): Shape {
  const tokens = text.match(/\.\.\.\w*|\w+\??|[{}[\],:]/g) ?? [];
  let i = 0;
  const expect = (t: string) => {
    if (tokens[i++] !== t) throw new Error(`${text}: expected '${t}' at token ${i - 1}`);
  };
  const object = (): Shape => {
    expect("{");
    const shape: Shape = { keys: new Map(), open: false };
    while (true) {
      const t = tokens[i++];
      if (t === "...") shape.open = true;
      else if (t === "...change") {
        for (const k of CHANGE_KEYS) shape.keys.set(k, { optional: false, array: false });
      } else if (/^\w+\??$/.test(t)) {
        const key = { optional: t.endsWith("?"), array: false, inner: undefined as Shape | undefined };
        if (tokens[i] === ":") {
          i++;
          if (tokens[i] === "{") key.inner = object();
          else if (tokens[i] === "[" && tokens[i + 1] === "{") {
            i++;
            key.inner = object();
            key.array = true;
            expect("]");
          } else if (tokens[i] === "[") i += 3; // `[name]`: a list of plain values
          else throw new Error(`${text}: unexpected '${tokens[i]}' after ${t}:`);
        }
        shape.keys.set(t.replace("?", ""), key);
      } else throw new Error(`${text}: unexpected '${t}'`);
      const sep = tokens[i++];
      if (sep === "}") return shape;
      if (sep !== ",") throw new Error(`${text}: expected ',' or '}', got '${sep}'`);
    }
  };
  const shape = object();
  if (i !== tokens.length) throw new Error(`${text}: trailing '${tokens.slice(i).join(" ")}'`);
  return shape;
}

/** What in `value` differs from `shape`: documented keys missing, undocumented keys present. */
function shapeErrors(value: unknown, shape: Shape, at: string): string[] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return [`${at} is not an object`];
  const obj = value as Record<string, unknown>;
  const errors: string[] = [];
  for (const [k, spec] of shape.keys) {
    if (!(k in obj)) {
      if (!spec.optional) errors.push(`${at}.${k} is missing`);
      continue;
    }
    if (!spec.inner) continue;
    if (!spec.array) errors.push(...shapeErrors(obj[k], spec.inner, `${at}.${k}`));
    else if (!Array.isArray(obj[k])) errors.push(`${at}.${k} is not a list`);
    else {(obj[k] as unknown[]).forEach((x, n) =>
        errors.push(...shapeErrors(x, spec.inner!, `${at}.${k}[${n}]`))
      );}
  }
  if (!shape.open) {
    for (const k of Object.keys(obj)) if (!shape.keys.has(k)) errors.push(`${at}.${k} is not in the README`);
  }
  return errors;
}

const WORKFLOW = { nodes: [{ id: 1, type: "KSampler", mode: 0, widgets_values: [] }], links: [] };

Deno.test("every command prints exactly one JSON envelope with --json, success and failure alike", async () => {
  const registry = await startRegistryServer([
    { id: "alpha-nodes", versions: [{ version: "1.1.0" }, { version: "1.0.0" }] },
  ]);
  try {
    await withTempDir(async (root) => {
      const { paths, env: base } = await createRealEnv(join(root, "home"), "e");
      const env = {
        ...base,
        COMFYDOCK_REGISTRY_URL: registry.url,
        CIVITAI_API_URL: await deadUrl(),
        HF_ENDPOINT: await deadUrl(),
        COMFYDOCK_HTTP_RETRY_BASE_MS: "5",
        HOME: root,
      };
      const models = join(root, "my-models");
      await Deno.mkdir(models);
      await Deno.writeTextFile(join(models, "mine.safetensors"), "weights ".repeat(100));
      await Deno.mkdir(paths.userWorkflows, { recursive: true });
      await Deno.writeTextFile(join(paths.userWorkflows, "flow.json"), JSON.stringify(WORKFLOW));
      const map = join(root, "extension-node-map.json");
      await Deno.writeTextFile(
        map,
        JSON.stringify({ "https://github.com/x/alpha-nodes": [["AlphaNode"], { title_aux: "alpha" }] }),
      );

      const seen = new Map<string, JsonEnvelope>();
      const check = async (name: string, c: Case): Promise<JsonEnvelope> => {
        const r: CliResult = await cli(["--json", ...c.args], { env: { ...env, ...c.env }, stdin: c.stdin });
        const doc = envelopeOf(r);
        const detail = `${c.args.join(" ")}: ${r.stdout}\n${r.stderr}`;
        assert.equal(doc.ok, c.ok, detail);
        assert.equal(r.code === 1, !doc.ok, `exit code ${r.code} and ok: ${doc.ok} agree: ${detail}`);
        assert.equal(doc.command, name, detail);
        seen.set(name, doc);
        return doc;
      };
      const data = (doc: JsonEnvelope) => doc.data as Record<string, unknown>;

      // Read-only commands, side by side.
      const reads: [string, Case][] = [
        ["list", { args: ["list"], ok: true }],
        ["status", { args: ["status"], ok: true }],
        ["plan", { args: ["plan"], ok: true }],
        ["drift", { args: ["drift"], ok: true }],
        ["log", { args: ["log"], ok: true }],
        ["validate", { args: ["validate", "--offline"], ok: true }],
        ["node list", { args: ["node", "list"], ok: true }],
        ["node find", { args: ["node", "find", "alpha"], ok: true }],
        ["node show", { args: ["node", "show", "alpha-nodes"], ok: true }],
        ["model list", { args: ["model", "list"], ok: true }],
        ["model find", { args: ["model", "find", "nothing-like-this"], ok: true }],
        ["workflow status", { args: ["workflow", "status"], ok: true }],
        ["workflow analyze", {
          args: ["workflow", "analyze", join(paths.userWorkflows, "flow.json")],
          ok: true,
        }],
        ["config list", { args: ["config", "list"], ok: true }],
        ["config get", { args: ["config", "get", "model_paths"], ok: true }],
        ["completions", { args: ["completions", "fish"], ok: true }],
        ["init", { args: ["init"], ok: true }],
        ["create", { args: ["create", "e"], ok: false }],
        ["run", { args: ["run", "--no-check", "--", "--quick-test-for-ci"], ok: true }],
        ["health", { args: ["health", "--timeout", "120"], ok: true }],
        ["pull", { args: ["pull"], ok: false }],
        ["push", { args: ["push"], ok: false }],
        ["action", { args: ["action"], ok: false, env: { INPUT_COMMAND: "bogus" } }],
      ];
      await Promise.all(reads.map(([n, c]) => check(n, c)));
      assert.deepEqual(Object.keys(data(seen.get("list")!)), ["environments"]);
      assert.deepEqual(Object.keys(data(seen.get("log")!)), ["entries"]);
      assert.equal(data(seen.get("plan")!).format_version, 1, "the plan keeps its own version inside data");

      // Changes, one after the other (each takes the environment's lock).
      const changes: [string, Case][] = [
        ["config set", { args: ["config", "set", "model_paths", models], ok: true }],
        ["config set-key", { args: ["config", "set-key", "civitai"], ok: true, stdin: "tok-123456789" }],
        ["model scan", { args: ["model", "scan", models], ok: true }],
        ["model index rebuild", { args: ["model", "index", "rebuild"], ok: true }],
        ["node index update", {
          args: ["node", "index", "update", "--from", map, "--no-registry"],
          ok: true,
        }],
        ["node add", { args: ["node", "add", "alpha-nodes", "--yes"], ok: true }],
        ["node update", { args: ["node", "update", "alpha-nodes", "--version", "1.0.0", "--yes"], ok: true }],
        ["node disable", { args: ["node", "disable", "alpha-nodes", "--yes"], ok: true }],
        ["node enable", { args: ["node", "enable", "alpha-nodes", "--yes"], ok: true }],
        ["node remove", { args: ["node", "remove", "alpha-nodes", "--yes"], ok: true }],
        ["model add", {
          args: ["model", "add", join(models, "mine.safetensors"), "--category", "checkpoints", "--yes"],
          ok: true,
        }],
        ["model show", { args: ["model", "show", "mine"], ok: true }],
        ["model sources", { args: ["model", "sources", "mine"], ok: true }],
        ["model remove", { args: ["model", "remove", "mine", "--yes"], ok: true }],
        ["workflow track", { args: ["workflow", "track", "flow", "--yes"], ok: true }],
        ["workflow sync", { args: ["workflow", "sync"], ok: true }],
        ["workflow export", {
          args: ["workflow", "export", "flow", "--out", join(root, "flow.tar.gz")],
          ok: true,
        }],
        ["workflow untrack", { args: ["workflow", "untrack", "flow", "--yes"], ok: true }],
        ["workflow import", {
          args: ["workflow", "import", join(root, "flow.tar.gz"), "--name", "flow2", "--non-interactive"],
          ok: true,
        }],
        ["capture", { args: ["capture"], ok: true }],
        ["commit", { args: ["commit", "-m", "nothing new"], ok: true }],
        ["rollback", { args: ["rollback", "--no-apply"], ok: true }],
        ["comfyui update", { args: ["comfyui", "update", "--no-apply"], ok: true }],
        ["apply", { args: ["apply", "--yes"], ok: true }],
        ["sync", { args: ["sync", "--yes"], ok: true }],
        ["repair", { args: ["repair"], ok: true }],
        ["export", { args: ["export", "--out", join(root, "e.tar.gz")], ok: true }],
        ["import", { args: ["import", join(root, "e.tar.gz"), "--name", "e2", "--no-apply"], ok: true }],
        ["use", { args: ["use", "e2"], ok: true }],
        ["use", { args: ["use", "e"], ok: true }],
        ["delete", { args: ["delete", "e2", "--yes"], ok: true }],
        // A folder that is not ComfyUI: the failure is a document (tests/e2e/adopt_cli_test.ts adopts one).
        ["adopt", { args: ["adopt", models], ok: false }],
      ];
      for (const [n, c] of changes) await check(n, c);

      // node add/remove/update share one shape: the nodes, then the change.
      const change = ["accepted", "commit", "plan", "applied", "kept", "trash"];
      for (const n of ["node add", "node update", "node disable", "node enable", "node remove"]) {
        const d = data(seen.get(n)!);
        assert.deepEqual(Object.keys(d), ["nodes", ...change], n);
        const nodes = d.nodes as { id: string }[];
        assert.deepEqual(nodes.map((x) => x.id), ["alpha-nodes"], n);
        assert.equal(d.accepted, true, n);
        assert.equal(d.applied, true, `${n} applied its plan`);
        assert.match(String(d.commit), /^[0-9a-f]{40}$/, n);
      }
      for (const n of ["model add", "model remove"]) {
        const d = data(seen.get(n)!);
        assert.deepEqual(Object.keys(d), ["models", ...change], n);
        assert.deepEqual((d.models as { key: string }[]).map((m) => m.key), ["mine"], n);
      }
      for (const n of ["workflow track", "workflow untrack"]) {
        assert.deepEqual(data(seen.get(n)!).workflows as string[], ["flow"], n);
      }

      // Argument errors are documents too.
      const usage: [string, string[], string][] = [
        ["", ["nod"], "USAGE_UNKNOWN_COMMAND"],
        ["node", ["node"], "USAGE_MISSING_COMMAND"],
        ["node add", ["node", "add"], "USAGE_MISSING_ARGUMENT"],
        ["list", ["list", "--jsn"], "USAGE_UNKNOWN_OPTION"],
        ["plan", ["plan", "--target", "node.typo"], "UNKNOWN_TARGET"],
      ];
      for (const [name, args, code] of usage) {
        const r = await cli(["--json", ...args], { env });
        const doc = envelopeOf(r);
        assert.equal(r.code, 1);
        assert.equal(doc.command, name);
        assert.equal(!doc.ok && doc.error.code, code, r.stdout);
      }
      const suggested = envelopeOf(await cli(["--json", "nod"], { env }));
      assert.match(!suggested.ok ? suggested.error.hint ?? "" : "", /Did you mean node\?/);
      const help = envelopeOf(await cli(["--json", "--help"], { env }));
      assert.ok(help.ok && typeof (help.data as { help: string }).help === "string");

      // All commands' differences at once: a README update then covers them in one go.
      const differences: string[] = [];
      for (const [name, doc] of seen) {
        const shape = DATA_SHAPES[name];
        if (!doc.ok || !shape) continue;
        if (!README.includes(shape)) {
          differences.push(`${name}: the README's data table no longer shows ${shape}`);
        }
        differences.push(...shapeErrors(doc.data, parseShape(shape), "data").map((e) => `${name}: ${e}`));
      }
      assert.deepEqual(differences, [], "the data of each command is what the README documents");
      const unchecked = Object.keys(DATA_SHAPES).filter((c) => !seen.get(c)?.ok);
      assert.deepEqual(
        unchecked.sort(),
        UNCHECKED_SHAPES.toSorted(),
        "commands whose documented data this test does not see",
      );

      const missing = leafCommands().filter((c) => !seen.has(c));
      assert.deepEqual(missing, [], "commands this test does not run with --json");
    });
  } finally {
    await registry.close();
  }
});
