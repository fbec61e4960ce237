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
import { run } from "../../lib/proc.ts";

export const TORCH_PACKAGES = ["torch", "torchvision", "torchaudio"] as const;
export const PYTORCH_INDEX_BASE = "https://download.pytorch.org/whl";

function torchIndexBase(override?: string | null): string {
  return (override ?? PYTORCH_INDEX_BASE).replace(/\/+$/, "");
}

/** `cpu`, `cu118`, `cu121`, `cu124`, `cu126`, `cu128`, `rocm6.2`, ...; `auto` is resolved first. */
export function isTorchBackend(b: string): boolean {
  return b === "cpu" || /^cu\d{3}$/.test(b) || /^rocm\d+\.\d+(\.\d+)?$/.test(b);
}

/** Throws the one error every entry point (create, config, pyproject edits) gives for a bad backend. */
export function assertTorchBackend(resolved: string, asTyped = resolved): void {
  if (!isTorchBackend(resolved)) {
    throw new CdError("TORCH_BACKEND_INVALID", `'${asTyped}' is not a torch backend`, {
      hint: "use auto, cpu, cuXXX (e.g. cu124) or rocmX.Y (e.g. rocm6.2)",
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
 */
export function torchUvConfig(
  backend: string,
  opts: {
    existingIndexes?: unknown[];
    existingConstraints?: string[];
    torchVersions?: Record<string, string>;
    /** Settings.torchIndexUrl, else https://download.pytorch.org/whl (a mirror, or a test server). */
    indexBase?: string | null;
    /** The binary search path, for `auto` (Settings.system.path). */
    searchPath?: string[];
  } = {},
): TomlEdit[] {
  const b = backend === "auto" ? autoTorchBackendSync(opts.searchPath ?? []) : backend;
  assertTorchBackend(b, backend);
  const others = (opts.existingIndexes ?? []).filter((i) =>
    !(i && typeof i === "object" && (i as Record<string, unknown>).name === "pytorch")
  );
  return [
    {
      path: ["tool", "uv", "index"],
      value: [...others, { name: "pytorch", url: `${torchIndexBase(opts.indexBase)}/${b}`, explicit: true }],
    },
    ...TORCH_PACKAGES.map((p) => ({ path: ["tool", "uv", "sources", p], value: { index: "pytorch" } })),
    { path: ["tool", "comfydock", "torch_backend"], value: b },
    ...(opts.torchVersions ? pinTorchConstraints(opts.torchVersions, opts.existingConstraints) : []),
  ];
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
  opts: { torchVersions?: Record<string, string>; indexBase?: string | null } = {},
): string {
  const edits = torchUvConfig(backend, opts);
  const url = (edits[0].value as { url: string }[]).at(-1)!.url;
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
    "[[tool.uv.index]]",
    'name = "pytorch"',
    `url = "${url}"`,
    "explicit = true",
    "",
    "[tool.uv.sources]",
    ...TORCH_PACKAGES.map((p) => `${p} = { index = "pytorch" }`),
    "",
  ].join("\n");
}
