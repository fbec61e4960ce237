/**
 * uv.lock, read as data: its `[[package]]` entries and the set of packages a venv must hold for it (the
 * root project's dependencies plus every dependency group, followed through the graph with markers
 * evaluated for the venv's interpreter). Pure.
 */
import { parse } from "smol-toml";
import { z } from "zod";
import { CdError } from "../../lib/errors.ts";
import { evaluateMarker, type MarkerEnv } from "./markers.ts";

const Dep = z.object({
  name: z.string(),
  version: z.string().optional(),
  source: z.record(z.string(), z.unknown()).optional(),
  marker: z.string().optional(),
  extra: z.array(z.string()).optional(),
});
type Dep = z.infer<typeof Dep>;

const LockPackage = z.object({
  name: z.string(),
  version: z.string().optional(),
  source: z.record(z.string(), z.unknown()).default({}),
  dependencies: z.array(Dep).default([]),
  "optional-dependencies": z.record(z.string(), z.array(Dep)).default({}),
  "dev-dependencies": z.record(z.string(), z.array(Dep)).default({}),
});
export type LockPackage = z.infer<typeof LockPackage>;

const Lock = z.object({
  version: z.number(),
  "requires-python": z.string().optional(),
  package: z.array(LockPackage).default([]),
});
export type UvLock = z.infer<typeof Lock>;

/** PEP 503 normalised name. */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, "-");
}

/** `torch[cuda]>=2; sys_platform=='linux'` -> `torch`. */
export function requirementName(req: string): string {
  return normalizeName(/^\s*([A-Za-z0-9][A-Za-z0-9_.-]*)/.exec(req)?.[1] ?? req);
}

export function parseLock(text: string, file = "uv.lock"): UvLock {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (e) {
    throw new CdError("LOCK_INVALID", `${file} is not valid TOML: ${String(e).split("\n")[0]}`, {
      hint: "restore it from git ('git -C .cec checkout uv.lock') or delete it and run 'comfydock apply'",
    });
  }
  const r = Lock.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new CdError("LOCK_INVALID", `${file}: ${i.path.join(".")}: ${i.message}`, {
      hint: "restore it from git or delete it and run 'comfydock apply' to re-lock",
    });
  }
  return r.data;
}

function isProjectRoot(p: LockPackage): boolean {
  return p.source.virtual === "." || p.source.editable === "." || p.source.directory === ".";
}

export interface LockedPackage {
  version: string;
  /** `registry`, `git`, `url`, `path`, `directory`, `editable` (the key of uv's source table). */
  source: string;
}

/**
 * Packages the venv must hold (normalised name -> version/source) for `lock` on an interpreter described
 * by `env`: every group of the root project, the project itself excluded (`--no-install-project`).
 */
export function requiredPackages(lock: UvLock, env: MarkerEnv): Record<string, LockedPackage> {
  const byName = new Map<string, LockPackage[]>();
  for (const p of lock.package) {
    const n = normalizeName(p.name);
    byName.set(n, [...(byName.get(n) ?? []), p]);
  }
  const roots = lock.package.filter(isProjectRoot);
  const out: Record<string, LockedPackage> = {};
  const visited = new Set<string>();
  const pick = (d: Dep): LockPackage | undefined => {
    const cands = byName.get(normalizeName(d.name)) ?? [];
    const exact = cands.filter((c) =>
      (d.version === undefined || c.version === d.version) &&
      (d.source === undefined || JSON.stringify(c.source) === JSON.stringify(d.source))
    );
    return exact[0] ?? cands[0];
  };
  const visit = (deps: Dep[], activeExtras: ReadonlySet<string>) => {
    for (const d of deps) {
      if (d.marker && !evaluateMarker(d.marker, env, activeExtras)) continue;
      const p = pick(d);
      if (!p) continue;
      const extras = (d.extra ?? []).map(normalizeName);
      const key = `${normalizeName(p.name)}@${p.version}#${JSON.stringify(p.source)}[${
        extras.sort().join(",")
      }]`;
      if (visited.has(key)) continue;
      visited.add(key);
      if (!isProjectRoot(p)) {
        out[normalizeName(p.name)] = { version: p.version ?? "", source: Object.keys(p.source)[0] ?? "" };
      }
      visit(p.dependencies, new Set(extras));
      for (const x of extras) {
        const opt = Object.entries(p["optional-dependencies"]).find(([k]) => normalizeName(k) === x)?.[1];
        if (opt) visit(opt, new Set(extras));
      }
    }
  };
  for (const root of roots) {
    visit(root.dependencies, new Set());
    for (const group of Object.values(root["dev-dependencies"])) visit(group, new Set());
  }
  return out;
}
