/**
 * A node's Python requirements, for `[dependency-groups].<node-id>` (uv resolves them with everything else).
 *
 * Decisions:
 * - requirements.txt wins over the node's pyproject `[project].dependencies` when both exist: it is what
 *   ComfyUI-Manager installs, so it is what node authors test.
 * - Options (`-r`, `-e`, `--index-url`, ...) and bare URLs are skipped with a warning: a dependency group
 *   holds PEP 508 requirements only, and indexes belong to `[tool.uv]`.
 * - torch, torchvision and torchaudio are skipped: the environment pins them to the PyTorch build chosen
 *   for the GPU (`[tool.uv]` index); a node listing `torch` would otherwise pull a CPU build from PyPI.
 *   ComfyUI-Manager skips the same family for the same reason.
 * - install.py is never run (arbitrary code outside the plan and the lock: not reproducible, not undoable);
 *   the warning says how to run it by hand if the node needs more than its requirements.
 */
import { normalizeName } from "../packages/lockfile.ts";
import { TORCH_PACKAGES } from "../packages/torch.ts";
import { parse } from "smol-toml";

const TORCH_FAMILY = new Set<string>(TORCH_PACKAGES);

export interface ParsedRequirements {
  requirements: string[];
  skipped: { line: string; reason: string }[];
}

/** Parses requirements.txt text into PEP 508 strings. */
export function parseRequirements(text: string): ParsedRequirements {
  const out: ParsedRequirements = { requirements: [], skipped: [] };
  const joined = text.replace(/\\\r?\n/g, " ");
  for (const raw of joined.split(/\r?\n/)) {
    const line = raw.replace(/(^|\s)#.*$/, "").trim();
    if (!line) continue;
    if (line.startsWith("-")) {
      out.skipped.push({ line, reason: "pip option (indexes and includes are not node requirements)" });
      continue;
    }
    const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)/.exec(line);
    if (!m || /^[a-z+]+:\/\//i.test(line)) {
      out.skipped.push({ line, reason: "not a PEP 508 requirement (a bare URL or path)" });
      continue;
    }
    if (TORCH_FAMILY.has(normalizeName(m[1]))) {
      out.skipped.push({ line, reason: "torch is pinned by the environment (its GPU build), not by nodes" });
      continue;
    }
    const req = line.replace(/\s+/g, " ");
    if (!out.requirements.includes(req)) out.requirements.push(req);
  }
  return out;
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
    result = { ...parseRequirements(reqText), source: "requirements.txt", warnings: [] };
  } else {
    const pyText = await read("pyproject.toml");
    const deps = pyText === null ? null : pyprojectDependencies(pyText);
    result = deps === null
      ? { requirements: [], skipped: [], source: null, warnings: [] }
      : { ...parseRequirements(deps.join("\n")), source: "pyproject.toml", warnings: [] };
  }
  for (const s of result.skipped) result.warnings.push(`${id}: skipped requirement '${s.line}': ${s.reason}`);
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
