/**
 * torch backends as `[tool.uv]` settings (seed: an explicit `pytorch` index, torch/torchvision/torchaudio
 * sourced from it). `explicit = true` keeps every other package on the default index. A node cannot
 * replace torch: once a torch version is known (after the first lock), `pinTorchConstraints` writes it to
 * `constraint-dependencies`, so a node group asking for another torch fails the resolution check
 * (PACKAGES_CONFLICT naming that node) instead of silently swapping the CUDA build, which is the known
 * pain with ComfyUI-Manager installs.
 */
import { CdError } from "../../lib/errors.ts";
import type { TomlEdit } from "../../reconcile/pyproject_edit.ts";
import { parse } from "smol-toml";
import { run } from "../../lib/proc.ts";
import { PYTORCH_INDEX_BASE } from "./indexes.ts";
import { type LockPackage, normalizeName, parseLock, requirementName } from "./lockfile.ts";

export const TORCH_PACKAGES = ["torch", "torchvision", "torchaudio"] as const;

/**
 * torch's own runtime wheels (the CUDA libraries, triton): torch's metadata picks them for its build, so a
 * list of them from another machine (a snapshot's pip freeze) would pin the wrong build's runtime.
 */
export function isTorchRuntime(name: string): boolean {
  return /^(nvidia-[a-z0-9-]+|triton|pytorch-triton(-[a-z0-9]+)?)$/.test(
    name.toLowerCase().replace(/[_.]+/g, "-"),
  );
}

/** The local build label of a torch version (`2.5.1+cu124` -> `cu124`), as a backend when it is one. */
export function backendOfVersion(version: string): string | null {
  const local = version.split("+")[1];
  return local && isTorchBackend(local) ? local : null;
}

/**
 * `cpu`, `cu118`, `cu121`, `cu124`, `cu126`, `cu128`, `rocm6.2`, ... (a directory of the PyTorch index), or
 * `pypi` (torch from the default index like any package: no PyTorch index in `.cec`); `auto` is resolved
 * first.
 */
export function isTorchBackend(b: string): boolean {
  return b === "cpu" || b === "pypi" || /^cu\d{3}$/.test(b) || /^rocm\d+\.\d+(\.\d+)?$/.test(b);
}

/** Throws the one error every entry point (create, config, pyproject edits) gives for a bad backend. */
export function assertTorchBackend(resolved: string, asTyped = resolved): void {
  if (!isTorchBackend(resolved)) {
    throw new CdError("TORCH_BACKEND_INVALID", `'${asTyped}' is not a torch backend`, {
      hint: "use auto, cpu, cuXXX (e.g. cu124), rocmX.Y (e.g. rocm6.2), or pypi (torch from the default " +
        "index); or give the index itself with --torch-index URL",
    });
  }
}

/** `auto`: cpu unless `nvidia-smi` runs (then the CUDA build matching the driver, capped to known ones). */
export async function resolveTorchBackend(backend: string): Promise<string> {
  if (backend !== "auto") return backend;
  const r = await run("nvidia-smi", [], { check: false }).catch(() => null);
  if (!r || r.code !== 0) return "cpu";
  const m = /CUDA Version:\s*(\d+)\.(\d+)/.exec(r.stdout);
  if (!m) return "cu124";
  const v = Number(m[1]) * 10 + Number(m[2]);
  const known = [118, 121, 124, 126, 128];
  const best = known.filter((k) => k <= v).pop();
  return best ? `cu${best}` : "cpu";
}

/** `auto` without running anything: cpu unless `nvidia-smi` is on PATH (then a current CUDA build). */
export function autoTorchBackendSync(path: string[]): string {
  const exe = Deno.build.os === "windows" ? "nvidia-smi.exe" : "nvidia-smi";
  for (const dir of path) {
    try {
      if (dir && Deno.statSync(`${dir}/${exe}`).isFile) return "cu124";
    } catch {
      // not in this dir
    }
  }
  return "cpu";
}

/**
 * TomlEdits for `create --torch-backend B` and `config`: the `pytorch` index, sources for the torch
 * family, `tool.comfydock.torch_backend`, and (when `torchVersions` is given, e.g. from the first lock)
 * constraints pinning the torch family. `existingIndexes`/`existingConstraints` are kept (other indexes,
 * non-torch constraints). `auto` is resolved with `autoTorchBackendSync` (use `resolveTorchBackend` first
 * to pick the CUDA build from the driver).
 *
 * The index written is always the canonical one (`https://download.pytorch.org/whl/<backend>`), so `.cec`
 * means the same on every machine; a machine that reaches it through a mirror says so in its workspace
 * config (`torch_index_mirror`, providers/packages/indexes.ts). `indexUrl` (`create --torch-index URL`) is
 * written verbatim instead. Backend `pypi` writes no index and no sources: torch comes from the default
 * index.
 */
export function torchUvConfig(
  backend: string,
  opts: {
    existingIndexes?: unknown[];
    existingConstraints?: string[];
    torchVersions?: Record<string, string>;
    indexUrl?: string;
    /** The binary search path, for `auto` (Settings.system.path). */
    searchPath?: string[];
  } = {},
): TomlEdit[] {
  const b = backend === "auto" ? autoTorchBackendSync(opts.searchPath ?? []) : backend;
  // `custom`: the backend of an index given verbatim that names none (backendOfIndex).
  if (!(opts.indexUrl && b === "custom")) assertTorchBackend(b, backend);
  const others = (opts.existingIndexes ?? []).filter((i) =>
    !(i && typeof i === "object" && (i as Record<string, unknown>).name === "pytorch")
  );
  const pins = opts.torchVersions ? pinTorchConstraints(opts.torchVersions, opts.existingConstraints) : [];
  const backendEdit = { path: ["tool", "comfydock", "torch_backend"], value: b };
  if (b === "pypi" && !opts.indexUrl) {
    return [
      ...(others.length ? [{ path: ["tool", "uv", "index"], value: others }] : []),
      backendEdit,
      ...pins,
    ];
  }
  const url = opts.indexUrl ?? `${PYTORCH_INDEX_BASE}/${b}`;
  return [
    { path: ["tool", "uv", "index"], value: [...others, { name: "pytorch", url, explicit: true }] },
    ...TORCH_PACKAGES.map((p) => ({ path: ["tool", "uv", "sources", p], value: { index: "pytorch" } })),
    backendEdit,
    ...pins,
  ];
}

/**
 * The backend a `--torch-index URL` stands for, for `tool.comfydock.torch_backend` and what `list` shows
 * before a venv exists: the URL's last path segment when it names one (`.../whl/cu124`), else `custom`.
 */
export function backendOfIndex(url: string): string {
  const last = url.replace(/\/+$/, "").split("/").pop() ?? "";
  return isTorchBackend(last) && last !== "pypi" ? last : "custom";
}

/**
 * `constraint-dependencies` that pin the torch family to the versions in `locked` (name -> version from
 * uv.lock), keeping any non-torch constraints already present.
 */
export function pinTorchConstraints(locked: Record<string, string>, existing: string[] = []): TomlEdit[] {
  const torchy = new Set<string>(TORCH_PACKAGES);
  const kept = existing.filter((c) => !torchy.has(/^\s*([A-Za-z0-9_.-]+)/.exec(c)?.[1]?.toLowerCase() ?? ""));
  // `==2.5.0` also matches the index's local builds (`2.5.0+cu124`), so the pin survives a backend switch.
  const pins = TORCH_PACKAGES.filter((p) => locked[p]).map((p) => `${p}==${locked[p].split("+")[0]}`);
  if (pins.length === 0) return [];
  return [{ path: ["tool", "uv", "constraint-dependencies"], value: [...kept, ...pins] }];
}

/**
 * The same settings as TOML text in the seed's layout, for a pyproject being written from scratch
 * (`create`), where readable `[[tool.uv.index]]` / inline sources beat what a generic editor produces.
 * Put it where no other `[tool.uv]` table exists.
 */
export function torchUvTomlText(
  backend: string,
  opts: { torchVersions?: Record<string, string>; indexUrl?: string } = {},
): string {
  const edits = torchUvConfig(backend, opts);
  const url = (edits.find((e) => e.path.at(-1) === "index")?.value as { url: string }[] | undefined)?.at(-1)
    ?.url;
  const constraints = edits.find((e) => e.path.at(-1) === "constraint-dependencies")?.value as
    | string[]
    | undefined;
  return [
    "",
    "[tool.uv]",
    ...(constraints
      ? [`constraint-dependencies = ${JSON.stringify(constraints).replace(/","/g, '", "')}`]
      : []),
    "",
    ...(url
      ? [
        "[[tool.uv.index]]",
        'name = "pytorch"',
        `url = "${url}"`,
        "explicit = true",
        "",
        "[tool.uv.sources]",
        ...TORCH_PACKAGES.map((p) => `${p} = { index = "pytorch" }`),
        "",
      ]
      : []),
  ].join("\n");
}

/** `2.5.1+cu124` -> `2.5.1`: the pin and the comparison use the public version (the build is the index's). */
function publicVersion(v: string): string {
  return v.split("+")[0];
}

/**
 * Locked versions of the torch family in a uv.lock. A package locked at several versions (per-platform
 * forks) is left out: one pin cannot hold it.
 */
export function lockedTorch(lockText: string): Record<string, string> {
  const versions: Record<string, Set<string>> = {};
  for (const p of parseLock(lockText).package) {
    const n = normalizeName(p.name);
    if ((TORCH_PACKAGES as readonly string[]).includes(n) && p.version) {
      (versions[n] ??= new Set()).add(p.version);
    }
  }
  return Object.fromEntries(
    Object.entries(versions).filter(([, v]) => v.size === 1).map(([n, v]) => [n, [...v][0]]),
  );
}

// deno-lint-ignore no-explicit-any -- arbitrary TOML; only [tool.uv] and [dependency-groups] are read
function tomlData(text: string): any {
  try {
    return parse(text);
  } catch {
    return {};
  }
}

function constraintsOf(pyprojectText: string): string[] {
  const c = tomlData(pyprojectText)?.tool?.uv?.["constraint-dependencies"];
  return Array.isArray(c) ? c.filter((x): x is string => typeof x === "string") : [];
}

/** `torch==2.5.1` constraints of a pyproject (name -> version). */
export function pinnedTorch(pyprojectText: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const c of constraintsOf(pyprojectText)) {
    const m = /^\s*([A-Za-z0-9_.-]+)\s*===?\s*([^\s;,]+)\s*$/.exec(c);
    if (m && (TORCH_PACKAGES as readonly string[]).includes(normalizeName(m[1]))) {
      out[normalizeName(m[1])] = m[2];
    }
  }
  return out;
}

/** The edit that drops the torch pins (to re-lock when torch may move on purpose); null when none. */
export function unpinTorchEdit(pyprojectText: string): TomlEdit | null {
  const all = constraintsOf(pyprojectText);
  const pinned = pinnedTorch(pyprojectText);
  if (Object.keys(pinned).length === 0) return null;
  const kept = all.filter((c) => !(TORCH_PACKAGES as readonly string[]).includes(requirementName(c)));
  return { path: ["tool", "uv", "constraint-dependencies"], value: kept.length ? kept : undefined };
}

/** Who in `lockText` pulls `target` in: a dependency group (node) or the project (ComfyUI's requirements). */
function whoNeeds(
  lockText: string,
  oldLockText: string | null,
  target: string,
): { group: string | null; path: string[] } | null {
  const lock = parseLock(lockText);
  const byName = new Map<string, LockPackage[]>();
  for (const p of lock.package) {
    byName.set(normalizeName(p.name), [...(byName.get(normalizeName(p.name)) ?? []), p]);
  }
  const root = lock.package.find((p) => p.source.virtual === "." || p.source.editable === ".");
  if (!root) return null;
  const pathTo = (start: string[]): string[] | null => {
    const seen = new Set<string>();
    const queue: string[][] = start.map((n) => [n]);
    while (queue.length) {
      const path = queue.shift()!;
      const n = path[path.length - 1];
      if (n === target) return path;
      if (seen.has(n)) continue;
      seen.add(n);
      for (const p of byName.get(n) ?? []) {
        for (const d of p.dependencies) queue.push([...path, normalizeName(d.name)]);
      }
    }
    return null;
  };
  const oldRoot = oldLockText === null
    ? null
    : parseLock(oldLockText).package.find((p) => p.source.virtual === "." || p.source.editable === ".");
  const groups = Object.entries(root["dev-dependencies"]);
  const changed = (g: string, deps: { name: string }[]) =>
    JSON.stringify(deps.map((d) => d.name).sort()) !==
      JSON.stringify((oldRoot?.["dev-dependencies"][g] ?? []).map((d) => d.name).sort());
  // A group this change added or edited is the likely cause; then any group; then the project itself.
  for (const pass of [true, false]) {
    for (const [g, deps] of groups) {
      if (pass && !changed(g, deps)) continue;
      const path = pathTo(deps.map((d) => normalizeName(d.name)));
      if (path) return { group: g, path };
    }
  }
  const path = pathTo(root.dependencies.map((d) => normalizeName(d.name)));
  return path ? { group: null, path } : null;
}

/**
 * Torch is pinned (DESIGN §6c): after each lock the locked torch/torchvision/torchaudio versions go to
 * `[tool.uv] constraint-dependencies`. Given the lock before a change, the lock after it and the changed
 * pyproject, returns the edit that writes those pins (null when they are already there), or a
 * TORCH_CHANGE CdError when the new lock moves torch away from the environment's (the pin, else the old
 * lock) without `allowChange`: naming the node that pulls the new torch in and both versions. Pure.
 */
export function torchPinEdit(
  oldLockText: string | null,
  newLockText: string,
  pyprojectText: string,
  opts: { allowChange?: boolean } = {},
): TomlEdit | null | CdError {
  const before = { ...(oldLockText === null ? {} : lockedTorch(oldLockText)), ...pinnedTorch(pyprojectText) };
  const after = lockedTorch(newLockText);
  if (!opts.allowChange) {
    for (const p of TORCH_PACKAGES) {
      if (!before[p] || !after[p] || publicVersion(before[p]) === publicVersion(after[p])) continue;
      const who = whoNeeds(newLockText, oldLockText, p);
      const groups = tomlData(pyprojectText)?.["dependency-groups"] ?? {};
      let needs = `${p} ${publicVersion(after[p])}`;
      if (who && who.path.length > 1) {
        const first = who.path[0];
        const spec = who.group === null
          ? undefined
          : (groups[who.group] as unknown[] | undefined)?.find((r): r is string =>
            typeof r === "string" && requirementName(r) === first
          );
        needs = `${spec ?? first}, which needs ${needs}`;
      }
      const subject = who === null
        ? "the new lock"
        : who.group === null
        ? "ComfyUI's requirements"
        : who.group === "user"
        ? "the 'user' group (your own packages)"
        : `node '${who.group}'`;
      return new CdError(
        "TORCH_CHANGE",
        `${subject} ${who?.group === null ? "need" : "needs"} ${needs}; the environment pins ${p} ${
          publicVersion(before[p])
        }`,
        {
          hint: (who?.group
            ? `keep ${p} ${publicVersion(before[p])}: pick a version of '${who.group}' that ` +
              `works with it (or leave it out); `
            : "") +
            "move torch on purpose with --allow-torch-change or 'comfydock comfyui update' (the whole " +
            "CUDA stack changes with it); .cec was not changed",
        },
      );
    }
  }
  const existing = constraintsOf(pyprojectText);
  const pins = pinTorchConstraints(after, existing);
  if (pins.length === 0) return null;
  return JSON.stringify(pins[0].value) === JSON.stringify(existing) ? null : pins[0];
}
