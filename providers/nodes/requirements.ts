/**
 * A node's Python requirements, for `[dependency-groups].<node-id>` (uv resolves them with everything else).
 * requirements.txt is read as pip reads it; whatever cannot be kept in a dependency group is reported by
 * file, line and text, never dropped silently.
 *
 * Decisions:
 * - requirements.txt wins over the node's pyproject `[project].dependencies` when both exist: it is what
 *   ComfyUI-Manager installs, so it is what node authors test.
 * - `-r`/`--requirement` and `-c`/`--constraint` files are read relative to the file that names them, and
 *   only inside the node's folder (a path that leaves it, an absolute path or a URL is reported, never read).
 *   A constraint on a package the node requires itself is kept as one more entry of the group (uv intersects
 *   them, as pip's constraint does); a constraint on anything else is reported: uv's constraints are
 *   environment-wide (`[tool.uv] constraint-dependencies`), and one node must not pin the whole environment.
 * - Index options (`--index-url`, `--extra-index-url`, `--find-links`, `--no-index`, `--trusted-host`) and other
 *   global options (`--pre`, ...) are reported, never written into the shared `.cec`: an index there applies
 *   to every package of every node and to every machine. Packages only that index has then fail the lock,
 *   naming them.
 * - URLs: `name @ url` is kept as it is; a VCS or archive URL is kept as `name @ url` when pip would know the
 *   name too (`#egg=name`, or a wheel's file name); a URL without a name is reported with the line to add.
 *   `-e URL` is kept as a normal install (a dependency group cannot be editable); `-e .` and local paths are
 *   reported (they name code at a path of this machine).
 * - `--hash` and other per-requirement options are dropped from the requirement and reported: uv.lock records
 *   the hash of every file it locks.
 * - torch, torchvision and torchaudio are reported and skipped: the environment pins them to the PyTorch build
 *   chosen for the GPU (`[tool.uv]` index); a node listing `torch` would otherwise pull a CPU build from PyPI.
 *   ComfyUI-Manager skips the same family for the same reason.
 * - install.py is never run (arbitrary code outside the plan and the lock: not reproducible, not undoable);
 *   the warning says how to run it by hand if the node needs more than its requirements.
 */
import { join, posix } from "node:path";
import { isWithin } from "../../lib/safe_path.ts";
import { normalizeName } from "../packages/lockfile.ts";
import { TORCH_PACKAGES } from "../packages/torch.ts";
import { parse } from "smol-toml";

const TORCH_FAMILY = new Set<string>(TORCH_PACKAGES);

/** One line of a requirements file that was not kept as written. */
export interface RequirementNote {
  file: string;
  /** 1-based line where the (logical) line starts. */
  line: number;
  text: string;
  /** "not kept: ..." or "kept ...: ...". */
  note: string;
}

export interface ParsedRequirements {
  requirements: string[];
  notes: RequirementNote[];
}

/** Reads a file of the node by its path relative to the node's folder ('/'-separated); null when absent. */
export type ReadNodeFile = (name: string) => Promise<string | null>;

/**
 * Reads node files from a folder on disk. A file whose real path leaves the folder (a symlink in a git
 * checkout pointing elsewhere) reads as absent: a node's requirements never come from outside it.
 */
export function folderReader(dir: string): ReadNodeFile {
  return async (name) => {
    try {
      const real = await Deno.realPath(join(dir, ...name.split("/")));
      if (!isWithin(await Deno.realPath(dir), real)) return null;
      return await Deno.readTextFile(real);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return null;
      throw e;
    }
  };
}

interface LogicalLine {
  line: number;
  text: string;
}

/** Joins `\` continuations and drops comments (`#` at the start or after whitespace), as pip does. */
function logicalLines(text: string): LogicalLine[] {
  const out: LogicalLine[] = [];
  let pending: LogicalLine | null = null;
  const physical = text.split(/\r?\n/);
  for (const [i, raw] of physical.entries()) {
    const continued = /(^|[^\\])\\$/.test(raw);
    const body = continued ? raw.slice(0, -1) : raw;
    pending = pending ? { line: pending.line, text: `${pending.text} ${body}` } : { line: i + 1, text: body };
    if (continued && i < physical.length - 1) continue;
    const clean = pending.text.replace(/(^|\s)#.*$/, "").replace(/\s+/g, " ").trim();
    if (clean) out.push({ line: pending.line, text: clean });
    pending = null;
  }
  return out;
}

const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?/;
const URL_START = /^(?:[a-z][a-z0-9+.-]*:\/\/|(?:git|hg|svn|bzr)\+)/i;
const INDEX_OPTIONS = new Set([
  "-i",
  "--index-url",
  "--extra-index-url",
  "--no-index",
  "-f",
  "--find-links",
  "--trusted-host",
]);
type Parsed =
  | { kind: "requirement"; requirement: string; name: string; note?: string }
  | { kind: "include"; constraint: boolean; target: string }
  | { kind: "skip"; note: string };

const notKept = (why: string): Parsed => ({ kind: "skip", note: `not kept: ${why}` });

/** A requirement without a name: reported with the line the user can add to `user` instead. */
function unnamedUrl(url: string): Parsed {
  return notKept(
    `a URL without a package name (pip learns it by building the package); add 'NAME @ ${url}' to ` +
      `[dependency-groups].user yourself`,
  );
}

/**
 * A URL requirement (VCS or archive) as `name @ url` when its name is known: `#egg=name[extras]`, or the
 * distribution name of a wheel's file name. The egg fragment goes (uv does not need it); others stay.
 */
function urlRequirement(text: string): Parsed {
  const [url, marker] = text.split(/\s+;\s*/, 2);
  const hash = url.indexOf("#");
  const base = hash < 0 ? url : url.slice(0, hash);
  const fragment = hash < 0 ? [] : url.slice(hash + 1).split("&");
  const egg = fragment.find((f) => f.startsWith("egg="))?.slice(4);
  const rest = fragment.filter((f) => !f.startsWith("egg="));
  const wheel = /\/([^/?#]+)\.whl$/i.exec(base)?.[1].split("-")[0];
  const name = egg ?? wheel;
  if (!name || !NAME.test(name)) return unnamedUrl(url);
  const kept = `${base}${rest.length ? `#${rest.join("&")}` : ""}`;
  const bare = NAME.exec(name)![0];
  return {
    kind: "requirement",
    name: bare,
    requirement: `${name} @ ${kept}${marker ? ` ; ${marker}` : ""}`,
  };
}

/** The requirement part of a line and its per-requirement options (`--hash=...`). */
function splitOptions(text: string): { requirement: string; options: string[] } {
  const m = /\s(--?[A-Za-z][\w-]*)/.exec(text);
  if (!m) return { requirement: text, options: [] };
  const options = [...text.slice(m.index).matchAll(/(?:^|\s)(--?[A-Za-z][\w-]*)/g)].map((o) => o[1]);
  return { requirement: text.slice(0, m.index).trim(), options: [...new Set(options)] };
}

/** One logical line of a requirements file. */
function parseLine(text: string): Parsed {
  if (text.includes("${")) {
    return notKept("it uses an environment variable, which pip expands at install time");
  }
  if (text.startsWith("-")) {
    const m = /^(--?[A-Za-z][\w-]*)(?:=|\s+)?(.*)$/.exec(text)!;
    const [opt, value] = [m[1], m[2].trim()];
    if (["-r", "--requirement", "-c", "--constraint"].includes(opt) && value) {
      return { kind: "include", constraint: opt === "-c" || opt === "--constraint", target: value };
    }
    if ((opt === "-e" || opt === "--editable") && value) {
      if (!URL_START.test(value)) {
        return notKept(
          value === "." || value === "./"
            ? "the node's own folder is not a requirement (ComfyUI loads it as a node)"
            : "an editable local path: it names code at a path of this machine",
        );
      }
      const r = urlRequirement(value);
      return r.kind === "requirement"
        ? { ...r, note: `kept as '${r.requirement}' (not editable: a dependency group installs it normally)` }
        : r;
    }
    if (INDEX_OPTIONS.has(opt)) {
      return notKept(
        "package indexes are environment-wide ([tool.uv] index, or your machine's uv configuration for a " +
          "mirror) and are never added to the shared .cec by a node; if the node's packages come from that " +
          "index, add it there yourself (the lock fails naming the packages it cannot find)",
      );
    }
    return notKept(`'${opt}' is a pip option for the whole install, not a requirement of the node`);
  }
  const { requirement, options } = splitOptions(text);
  if (URL_START.test(requirement)) return withOptions(urlRequirement(requirement), options);
  const name = NAME.exec(requirement)?.[0];
  if (!name || /^[.~/\\]/.test(requirement) || /^[A-Za-z]:[\\/]/.test(requirement)) {
    return notKept(
      /^[.~/\\]|^[A-Za-z]:/.test(requirement) || /\.(whl|zip|tar\.gz)$/.test(requirement)
        ? "a local path: it names code at a path of this machine"
        : "not a requirement pip understands",
    );
  }
  const after = requirement.slice(name.length).trim();
  // What may follow a name: extras, a version specifier, a direct reference or markers.
  if (after && !/^(\[[^\]]*\]\s*)?(\(?\s*(===?|~=|!=|<=?|>=?)|@\s|;|$)/.test(after)) {
    return notKept("not a requirement pip understands");
  }
  return withOptions({ kind: "requirement", name, requirement }, options);
}

function withOptions(p: Parsed, options: string[]): Parsed {
  if (p.kind !== "requirement" || !options.length) return p;
  const what = options.length === 1 && options[0] === "--hash"
    ? "its --hash options: uv.lock records the hash of every file it locks"
    : `its ${options.join(", ")} option${options.length === 1 ? "" : "s"}: a dependency group holds ` +
      `requirements only (uv.lock records hashes; build settings belong to [tool.uv])`;
  return { ...p, note: `kept without ${what}` };
}

/** Where `target` of an include in `file` is, relative to the node's folder; null when it leaves it. */
function includePath(file: string, target: string): string | null {
  if (posix.isAbsolute(target) || /^[A-Za-z]:|^\\/.test(target) || target.includes("\0")) return null;
  const joined = posix.normalize(posix.join(posix.dirname(file), target.replaceAll("\\", "/")));
  return joined === ".." || joined.startsWith("../") ? null : joined;
}

interface Collected {
  requirements: { requirement: string; name: string }[];
  constraints: { requirement: string; name: string; file: string; line: LogicalLine }[];
  notes: RequirementNote[];
}

async function readFile(
  file: string,
  text: string,
  read: ReadNodeFile,
  out: Collected,
  stack: string[],
  constraint: boolean,
): Promise<void> {
  for (const l of logicalLines(text)) {
    const note = (n: string, shown = l.text) => out.notes.push({ file, line: l.line, text: shown, note: n });
    const p = parseLine(l.text);
    if (p.kind === "skip") {
      note(p.note);
      continue;
    }
    if (p.kind === "include") {
      if (URL_START.test(p.target)) {
        note("not kept: a remote file is not fetched (add its requirements to the node's group yourself)");
        continue;
      }
      const path = includePath(file, p.target);
      if (path === null) {
        note("not kept: the file is outside the node's folder");
        continue;
      }
      if (stack.includes(path)) {
        note(`not kept: ${path} includes itself (a cycle)`);
        continue;
      }
      const included = await read(path);
      if (included === null) {
        note(`not kept: ${path} does not exist in the node`);
        continue;
      }
      await readFile(path, included, read, out, [...stack, path], constraint || p.constraint);
      continue;
    }
    const shown = splitOptions(l.text).requirement;
    if (TORCH_FAMILY.has(normalizeName(p.name))) {
      note("not kept: torch is pinned by the environment (its GPU build), not by nodes", shown);
      continue;
    }
    if (p.note) note(p.note, shown);
    if (constraint) out.constraints.push({ requirement: p.requirement, name: p.name, file, line: l });
    else out.requirements.push({ requirement: p.requirement, name: p.name });
  }
}

/** Parses a requirements file (and the files it includes, through `read`) into PEP 508 strings. */
export async function readRequirements(
  file: string,
  text: string,
  read: ReadNodeFile,
): Promise<ParsedRequirements> {
  const out: Collected = { requirements: [], constraints: [], notes: [] };
  await readFile(file, text, read, out, [file], false);
  const required = new Set(out.requirements.map((r) => normalizeName(r.name)));
  const requirements = out.requirements.map((r) => r.requirement);
  for (const c of out.constraints) {
    if (required.has(normalizeName(c.name))) requirements.push(c.requirement);
    else {
      out.notes.push({
        file: c.file,
        line: c.line.line,
        text: c.line.text,
        note: "not kept: a constraint on a package the node does not require itself (uv's constraints are " +
          "environment-wide: add it to [tool.uv] constraint-dependencies if the node needs it)",
      });
    }
  }
  return { requirements: [...new Set(requirements)], notes: out.notes };
}

/** `[project].dependencies` of a node's pyproject.toml (null when there is none or it is unreadable). */
export function pyprojectDependencies(text: string): string[] | null {
  try {
    const data = parse(text) as { project?: { dependencies?: unknown } };
    const deps = data.project?.dependencies;
    return Array.isArray(deps) ? deps.filter((d): d is string => typeof d === "string") : null;
  } catch {
    return null;
  }
}

/** `[project].name` (lower-cased: the registry id) and `[project].version` of a node's pyproject. */
export function pyprojectVersionAndName(
  text: string | null,
): { name: string | null; version: string | null } {
  if (text === null) return { name: null, version: null };
  try {
    const project = (parse(text) as { project?: { name?: unknown; version?: unknown } }).project;
    return {
      name: typeof project?.name === "string" ? project.name.toLowerCase() : null,
      version: typeof project?.version === "string" ? project.version : null,
    };
  } catch {
    return { name: null, version: null };
  }
}

export interface NodeRequirements extends ParsedRequirements {
  source: "requirements.txt" | "pyproject.toml" | null;
  warnings: string[];
}

/**
 * Requirements of a node whose files are read through `read` (a zip, a git commit, or a directory), and
 * warnings to show the user.
 */
export async function nodeRequirements(
  id: string,
  read: (name: string) => Promise<string | null>,
  installDir: string,
): Promise<NodeRequirements> {
  const reqText = await read("requirements.txt");
  let result: NodeRequirements;
  if (reqText !== null) {
    result = {
      ...await readRequirements("requirements.txt", reqText, read),
      source: "requirements.txt",
      warnings: [],
    };
  } else {
    const pyText = await read("pyproject.toml");
    const deps = pyText === null ? null : pyprojectDependencies(pyText);
    // Dependencies of a pyproject are PEP 508 strings: one per line, nothing to include.
    const none: ReadNodeFile = () => Promise.resolve(null);
    result = deps === null ? { requirements: [], notes: [], source: null, warnings: [] } : {
      ...await readRequirements("pyproject.toml", deps.map((d) => d.replace(/\r?\n/g, " ")).join("\n"), none),
      source: "pyproject.toml",
      warnings: [],
    };
  }
  for (const n of result.notes) {
    const where = result.source === "pyproject.toml"
      ? "pyproject.toml [project].dependencies"
      : `${n.file} line ${n.line}`;
    result.warnings.push(`${id}: ${where} '${n.text}' ${n.note}`);
  }
  if ((await read("install.py")) !== null) {
    result.warnings.push(
      `${id}: has an install.py, which ComfyDock never runs (it is arbitrary code outside the plan and the ` +
        `lock, so the environment would not be reproducible). Its requirements come from ` +
        `${result.source ?? "nowhere (none declared)"}; if the node needs more, read the script and run it ` +
        `yourself: .venv/bin/python ${installDir}/install.py`,
    );
  }
  return result;
}

/**
 * How a node's dependency group differs from the requirements read from its code at the pinned commit
 * (`[dependency-groups].<id>` must follow the commit: `node add`/`node update` write it from there); null when
 * it follows them.
 */
export function groupMismatch(
  id: string,
  commit: string,
  group: readonly unknown[] | undefined,
  required: readonly string[],
): string | null {
  const have = new Set((group ?? []).filter((r): r is string => typeof r === "string"));
  const want = new Set(required);
  const missing = [...want].filter((r) => !have.has(r));
  const extra = [...have].filter((r) => !want.has(r));
  if (!missing.length && !extra.length) return null;
  const what = [
    missing.length ? `missing: ${missing.join(", ")}` : null,
    extra.length ? `not required: ${extra.join(", ")}` : null,
  ].filter(Boolean).join("; ");
  return `[dependency-groups].${id} does not match the requirements of commit ${
    commit.slice(0, 12)
  } (${what}); ` +
    `re-read them with 'comfydock node update ${id} --ref ${commit}'`;
}
