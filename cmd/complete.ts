/**
 * `comfydock __complete INDEX WORDS...`: what the shell scripts of `comfydock completions` ask on TAB.
 * WORDS are the words after `comfydock`, INDEX the one being completed. Prints one candidate per line, or a
 * single `:files` / `:dirs` line when the shell should complete file names itself (so its own quoting,
 * `~` and directory handling apply). Walks the command tree, so every command and option, also ones added
 * later, completes; values come from the workspace, read directly (workspace.json, the environment
 * directories, `.cec/pyproject.toml`) without loading the rest of the tool, so TAB stays fast.
 */
import type { Command, Option } from "@commander-js/extra-typings";
import { join } from "node:path";
import { workspacePaths, workspaceRoot } from "../reconcile/paths.ts";

// deno-lint-ignore no-explicit-any -- commands of any generic shape
type AnyCommand = Command<any, any, any>;

/** What a value is: the shell's file names, a list from the workspace, or fixed choices. */
type Kind =
  | ":files"
  | ":dirs"
  | "env"
  | "node"
  | "model"
  | "workflow"
  | "tracked-workflow"
  | "untracked-workflow"
  | "target"
  | "setting"
  | "none"
  | { choices: string[] };

/** Values that name something in the workspace, by `<command path> <argument or option>`. */
const KINDS: Record<string, Kind> = {
  "use name": "env",
  "delete name": "env",
  "export name": "env",
  "node remove id": "node",
  "node update id": "node",
  "model remove key": "model",
  "model sources key": "model",
  "model show keyOrHash": "model",
  "workflow track name": "untracked-workflow",
  "workflow untrack name": "tracked-workflow",
  "workflow export name": "workflow",
  "config get key": "setting",
  "config set key": "setting",
  "config set-key service": { choices: ["civitai", "huggingface", "github"] },
  "completions shell": { choices: ["bash", "zsh", "fish"] },
  "--env": "env",
  "--target": "target",
};

/** Value names that are files or folders wherever they appear (`--out <file>`, `<fileOrUrl>`, `[paths...]`). */
function kindByName(name: string): Kind {
  if (/^(file|planfile|fileOrUrl|source|out)$/i.test(name)) return ":files";
  if (/^(path|paths|dir)$/i.test(name)) return ":dirs";
  return "none";
}

function optionValueName(o: Option): string {
  return /[<[]([^>\]]+)[>\]]/.exec(o.flags)?.[1]?.replace(/\.\.\.$/, "") ?? "";
}

function optionKind(path: string, o: Option): Kind {
  if (o.argChoices?.length) return { choices: o.argChoices };
  return KINDS[`${path} ${o.long}`.trim()] ?? KINDS[o.long ?? ""] ?? kindByName(optionValueName(o));
}

function findOption(chain: AnyCommand[], word: string): Option | undefined {
  const flag = word.split("=")[0];
  for (const c of [...chain].reverse()) {
    const o = (c.options as Option[]).find((x) => x.long === flag || x.short === flag);
    if (o) return o;
  }
  return undefined;
}

/** Where a command line stands after `words`: the command they name, its options so far, the arguments. */
export interface WordsState {
  cmd: AnyCommand;
  /** The program and the commands down to `cmd` (their options all apply). */
  chain: AnyCommand[];
  /** Arguments of `cmd` given so far. */
  positional: number;
  /** An option still waiting for its value. */
  pending: Option | null;
  /** The value of -e/--env, if given. */
  env?: string;
  /** A `--` was given: the rest belongs to another program (`run -- ARGS`). */
  passthrough: boolean;
}

/** Reads `words` (after the program name) against the command tree, as commander will. */
export function walkWords(program: AnyCommand, words: string[]): WordsState {
  const st: WordsState = { cmd: program, chain: [program], positional: 0, pending: null, passthrough: false };
  for (const w of words) {
    if (st.pending) {
      if (w === "=") continue; // bash splits `--out=file` at '='
      if (st.pending.long === "--env") st.env = w;
      st.pending = null;
      continue;
    }
    if (w === "--") {
      st.passthrough = true;
      break;
    }
    if (w.startsWith("-") && w.length > 1) {
      const o = findOption(st.chain, w);
      if (o?.long === "--env" && w.includes("=")) st.env = w.slice(w.indexOf("=") + 1);
      if (o && (o.required || o.optional) && !w.includes("=")) st.pending = o;
      continue;
    }
    const sub = (st.cmd.commands as AnyCommand[]).find((c) => c.name() === w || c.aliases().includes(w));
    if (sub && st.positional === 0) {
      st.cmd = sub;
      st.chain.push(sub);
      continue;
    }
    st.positional++;
  }
  return st;
}

/** `node add` for the `node add` command (the program itself: ""). */
export function pathOf(cmd: AnyCommand): string {
  const names: string[] = [];
  for (let c: AnyCommand | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

/** Candidates for `words[index]` (already filtered by what was typed), or one `:files`/`:dirs` line. */
export async function complete(program: AnyCommand, index: number, words: string[]): Promise<string[]> {
  const { cmd, chain, positional, pending, env, passthrough } = walkWords(program, words.slice(0, index));
  if (passthrough) return []; // arguments for another program
  const typed = (words[index] ?? "").replace(/\\(.)/g, "$1");
  const path = pathOf(cmd);
  const ctx = { env, typed };
  if (pending) return await values(optionKind(path, pending), ctx);
  if (typed.startsWith("-")) {
    const flags = chain.flatMap((c) => (c.options as Option[]).flatMap((o) => o.long ? [o.long] : []));
    return [...new Set([...flags, "--help"])].filter((f) => f.startsWith(typed)).sort();
  }
  const subs = (cmd.commands as AnyCommand[]).filter((c) => !(c as unknown as { _hidden: boolean })._hidden);
  if (subs.length && positional === 0) return subs.map((c) => c.name()).filter((n) => n.startsWith(typed));
  const args = cmd.registeredArguments;
  const arg = args[Math.min(positional, args.length - 1)];
  if (!arg || (positional >= args.length && !arg.variadic)) return [];
  const kind: Kind = arg.argChoices?.length
    ? { choices: arg.argChoices }
    : KINDS[`${path} ${arg.name()}`] ?? kindByName(arg.name());
  return await values(kind, ctx);
}

async function values(kind: Kind, ctx: { env?: string; typed: string }): Promise<string[]> {
  if (kind === ":files" || kind === ":dirs") return [kind];
  const all = typeof kind === "object" ? kind.choices : await workspaceValues(kind, ctx.env);
  return [...new Set(all)].filter((v) => v.startsWith(ctx.typed)).sort();
}

async function workspaceValues(kind: Kind, envName?: string): Promise<string[]> {
  const ws = workspacePaths(workspaceRoot(Deno.env.toObject()));
  if (kind === "env") return await environments(ws.environments);
  if (kind === "setting") return Object.keys((await import("../workspace/config.ts")).SETTINGS);
  if (kind === "none") return [];
  const name = envName ?? await activeEnvironment(ws.workspaceJson);
  if (!name) return [];
  const root = join(ws.environments, name);
  const cec = await pyprojectTables(join(root, ".cec", "pyproject.toml"));
  const tracked = Object.keys(cec.workflows);
  switch (kind) {
    case "node":
      return Object.keys(cec.nodes);
    case "model":
      return Object.keys(cec.models);
    case "tracked-workflow":
      return tracked;
    case "untracked-workflow": {
      const saved = await workflowFiles(join(root, "ComfyUI", "user", "default", "workflows"));
      return saved.filter((w) => !tracked.includes(w));
    }
    case "workflow":
      return [...tracked, ...await workflowFiles(join(root, "ComfyUI", "user", "default", "workflows"))];
    case "target": {
      const onDisk = await dirNames(join(root, "ComfyUI", "custom_nodes"));
      return [
        "comfyui",
        "packages",
        "node",
        "model",
        "workflow",
        ...[...Object.keys(cec.nodes), ...onDisk].map((n) => `node.${n}`),
        ...Object.keys(cec.models).map((k) => `model.${k}`),
        ...tracked.map((w) => `workflow.${w}`),
      ];
    }
  }
  return [];
}

async function dirNames(dir: string): Promise<string[]> {
  try {
    const out: string[] = [];
    for await (const e of Deno.readDir(dir)) if (e.isDirectory && !e.name.startsWith(".")) out.push(e.name);
    return out;
  } catch {
    return [];
  }
}

async function environments(dir: string): Promise<string[]> {
  const names = await dirNames(dir);
  const ok = await Promise.all(
    names.map((n) => Deno.stat(join(dir, n, ".cec")).then(() => true, () => false)),
  );
  return names.filter((_, i) => ok[i]);
}

async function activeEnvironment(workspaceJson: string): Promise<string | undefined> {
  try {
    const active = JSON.parse(await Deno.readTextFile(workspaceJson))?.active_environment;
    return typeof active === "string" ? active : undefined;
  } catch {
    return undefined;
  }
}

/** The node, model and tracked-workflow tables of a pyproject (empty when unreadable: TAB never fails). */
async function pyprojectTables(
  file: string,
): Promise<{ nodes: object; models: object; workflows: object }> {
  const empty = { nodes: {}, models: {}, workflows: {} };
  try {
    const { parse } = await import("smol-toml");
    // deno-lint-ignore no-explicit-any -- only three optional tables are read, each checked to be a table
    const tool = (parse(await Deno.readTextFile(file)) as any)?.tool?.comfydock ?? {};
    const table = (v: unknown) => (v && typeof v === "object" && !Array.isArray(v) ? v : {});
    return {
      nodes: table(tool.nodes),
      models: table(tool.models),
      workflows: table(tool.workflows?.tracked),
    };
  } catch {
    return empty;
  }
}

/** Workflow names (`sub/name`, no `.json`) under ComfyUI's workflow folder, at most a few levels deep. */
async function workflowFiles(dir: string, prefix = "", depth = 0): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.name.startsWith(".")) continue;
      if (e.isDirectory && depth < 4) {
        out.push(...await workflowFiles(join(dir, e.name), `${prefix}${e.name}/`, depth + 1));
      } else if (e.isFile && e.name.endsWith(".json")) out.push(prefix + e.name.slice(0, -5));
    }
  } catch {
    // no folder: no names
  }
  return out;
}
