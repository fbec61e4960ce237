/**
 * PEP 508 environment markers (`sys_platform == 'win32' and python_full_version < '3.12'`), evaluated
 * against a venv's interpreter without running it: uv.lock keeps markers on dependency edges, and the set
 * of packages a venv must hold depends on them. Pure.
 */
import { CdError } from "../../lib/errors.ts";

export type MarkerEnv = Record<string, string>;

/** Marker values for a CPython `pythonVersion` (`3.11.7`) on this OS/architecture. */
export function markerEnv(pythonVersion: string, os = Deno.build.os, arch = Deno.build.arch): MarkerEnv {
  const [maj, min] = pythonVersion.split(".");
  const sys = os === "windows" ? "win32" : os === "darwin" ? "darwin" : os;
  const machine = os === "windows" ? (arch === "x86_64" ? "AMD64" : "ARM64") : os === "darwin" && arch ===
      "aarch64"
    ? "arm64"
    : arch;
  return {
    python_version: `${maj}.${min}`,
    python_full_version: pythonVersion,
    implementation_version: pythonVersion,
    implementation_name: "cpython",
    platform_python_implementation: "CPython",
    sys_platform: sys,
    platform_system: os === "windows" ? "Windows" : os === "darwin" ? "Darwin" : "Linux",
    os_name: os === "windows" ? "nt" : "posix",
    platform_machine: machine,
    platform_release: "",
    platform_version: "",
  };
}

type Tok = { t: "str" | "var" | "op" | "(" | ")" | "and" | "or"; v: string };

function tokenize(src: string): Tok[] {
  const toks: Tok[] = [];
  const re =
    /\s*(?:(\()|(\))|'([^']*)'|"([^"]*)"|(===|==|!=|<=|>=|~=|<|>)|(not\s+in\b)|([A-Za-z_][A-Za-z0-9_.]*))/y;
  let i = 0;
  while (i < src.length) {
    if (/^\s*$/.test(src.slice(i))) break;
    re.lastIndex = i;
    const m = re.exec(src);
    if (!m) throw new Error(`cannot read marker at '${src.slice(i)}'`);
    i = re.lastIndex;
    if (m[1]) toks.push({ t: "(", v: "(" });
    else if (m[2]) toks.push({ t: ")", v: ")" });
    else if (m[3] !== undefined || m[4] !== undefined) toks.push({ t: "str", v: m[3] ?? m[4] });
    else if (m[5]) toks.push({ t: "op", v: m[5] });
    else if (m[6]) toks.push({ t: "op", v: "not in" });
    else if (m[7] === "and" || m[7] === "or") toks.push({ t: m[7], v: m[7] });
    else if (m[7] === "in") toks.push({ t: "op", v: "in" });
    else toks.push({ t: "var", v: m[7] });
  }
  return toks;
}

const VERSION_VARS = new Set(["python_version", "python_full_version", "implementation_version"]);

/** Evaluates `marker` in `env`; `extras` are the active extras (`extra == 'x'`). Unknown names are "". */
export function evaluateMarker(
  marker: string,
  env: MarkerEnv,
  extras: ReadonlySet<string> = new Set(),
): boolean {
  let toks: Tok[];
  try {
    toks = tokenize(marker);
  } catch (e) {
    throw new CdError("LOCK_INVALID", `uv.lock has a marker ComfyDock cannot read: ${marker} (${e})`, {
      hint: "re-create the lock with 'uv lock' and report this marker",
    });
  }
  let pos = 0;
  const peek = () => toks[pos];
  const fail = (): never => {
    throw new CdError("LOCK_INVALID", `uv.lock has a marker ComfyDock cannot read: ${marker}`, {
      hint: "re-create the lock with 'uv lock' and report this marker",
    });
  };
  const orExpr = (): boolean => {
    let v = andExpr();
    while (peek()?.t === "or") {
      pos++;
      const r = andExpr();
      v = v || r;
    }
    return v;
  };
  const andExpr = (): boolean => {
    let v = atom();
    while (peek()?.t === "and") {
      pos++;
      const r = atom();
      v = v && r;
    }
    return v;
  };
  const value = (): { v: string; name?: string } => {
    const t = toks[pos++] ?? fail();
    if (t.t === "str") return { v: t.v };
    if (t.t === "var") return { v: t.v === "extra" ? "" : env[t.v] ?? "", name: t.v };
    return fail();
  };
  const atom = (): boolean => {
    if (peek()?.t === "(") {
      pos++;
      const v = orExpr();
      if (toks[pos++]?.t !== ")") fail();
      return v;
    }
    const l = value();
    const op = toks[pos++];
    if (op?.t !== "op") return fail();
    const r = value();
    if (l.name === "extra" || r.name === "extra") {
      const lit = normalizeExtra(l.name === "extra" ? r.v : l.v);
      const has = extras.has(lit);
      return op.v === "==" ? has : op.v === "!=" ? !has : false;
    }
    return compare(l, op.v, r);
  };
  const result = orExpr();
  if (pos !== toks.length) fail();
  return result;
}

function normalizeExtra(s: string): string {
  return s.toLowerCase().replace(/[-_.]+/g, "-");
}

function compare(l: { v: string; name?: string }, op: string, r: { v: string; name?: string }): boolean {
  if (op === "in") return r.v.includes(l.v);
  if (op === "not in") return !r.v.includes(l.v);
  const versionish = VERSION_VARS.has(l.name ?? "") || VERSION_VARS.has(r.name ?? "");
  if (versionish && op !== "===") {
    const c = compareVersions(l.v, r.v);
    switch (op) {
      case "==":
        return r.v.endsWith(".*") ? l.v.startsWith(r.v.slice(0, -1)) || l.v === r.v.slice(0, -2) : c === 0;
      case "!=":
        return c !== 0;
      case "<":
        return c < 0;
      case "<=":
        return c <= 0;
      case ">":
        return c > 0;
      case ">=":
        return c >= 0;
      case "~=": {
        const parts = r.v.split(".");
        const prefix = parts.slice(0, Math.max(1, parts.length - 1)).join(".");
        return c >= 0 && (l.v === prefix || l.v.startsWith(prefix + "."));
      }
    }
  }
  switch (op) {
    case "==":
    case "===":
      return l.v === r.v;
    case "!=":
      return l.v !== r.v;
    case "<":
      return l.v < r.v;
    case "<=":
      return l.v <= r.v;
    case ">":
      return l.v > r.v;
    case ">=":
      return l.v >= r.v;
  }
  return false;
}

/** Compares PEP 440 release numbers (`3.11.7` vs `3.12`); trailing zeros do not count. */
export function compareVersions(a: string, b: string): number {
  const pa = release(a), pb = release(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function release(v: string): number[] {
  const m = /^\s*v?(\d+(?:\.\d+)*)/i.exec(v);
  return m ? m[1].split(".").map(Number) : [];
}
