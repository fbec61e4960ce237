/**
 * Machine-local package indexes. `.cec` names the canonical indexes (PyPI, download.pytorch.org/whl/<b>),
 * so it means the same on every machine; a machine behind a firewall reaches them through mirrors set in
 * the workspace config (Settings.indexes). Two things make that work with uv:
 *
 * - uv works on a copy of the project whose URLs name the mirrors (`toMirror`): the pyproject's index URLs
 *   and the lock's. uv.lock records the URLs it resolved from (`registry = "<index>"`, every wheel's `url`),
 *   and `uv sync --frozen` downloads from exactly those (astral-sh/uv#6349, by design); what uv locks is
 *   written back with the canonical URLs (`toCanonical`): `.cec/uv.lock` stays the same on every machine.
 *   (Not `UV_INDEX=pytorch=<mirror>`: an index given that way replaces the project's entry without its
 *   `explicit = true`, so uv asked the PyTorch mirror for every package: measured.)
 * - uv's own variables, per call: `UV_DEFAULT_INDEX` replaces PyPI, `UV_INDEX` adds extra indexes,
 *   `UV_INDEX_<NAME>_USERNAME/PASSWORD` carry credentials.
 *
 * URL mapping is by prefix: `https://download.pytorch.org/whl` <-> torch mirror (index and files share
 * that prefix), `https://pypi.org/simple` <-> default index, and `https://files.pythonhosted.org/packages`
 * <-> `<default index without /simple>/packages`, the layout of bandersnatch mirrors (most public PyPI
 * mirrors). A mirror that serves files elsewhere (devpi, Nexus) works for locking and for indexes, but the
 * file URLs it hands out are not canonical: they end up in `.cec/uv.lock` as they are (README).
 */
import { parse } from "smol-toml";
import { CdError } from "../../lib/errors.ts";
import type { PackageIndexSettings } from "../../lib/settings.ts";

export const PYTORCH_INDEX_BASE = "https://download.pytorch.org/whl";
export const PYPI_SIMPLE = "https://pypi.org/simple";
export const PYPI_FILES = "https://files.pythonhosted.org/packages";

export interface UrlMirror {
  canonical: string;
  mirror: string;
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, "");
}

/** The prefix pairs this machine rewrites (empty: no mirror configured, uv sees `.cec` as it is). */
export function urlMirrors(ix: PackageIndexSettings): UrlMirror[] {
  const out: UrlMirror[] = [];
  if (ix.torchMirror) out.push({ canonical: PYTORCH_INDEX_BASE, mirror: trimSlash(ix.torchMirror) });
  if (ix.defaultIndex) {
    const d = trimSlash(ix.defaultIndex);
    out.push({ canonical: PYPI_SIMPLE, mirror: d });
    if (/\/simple$/.test(d)) out.push({ canonical: PYPI_FILES, mirror: d.replace(/\/simple$/, "/packages") });
  }
  return out;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Every quoted URL (TOML string) that starts with `from` (a whole path prefix) gets `to` instead. */
function rewrite(text: string, pairs: [string, string][]): string {
  let out = text;
  for (const [from, to] of pairs) {
    out = out.replace(new RegExp(`"${escapeRe(from)}(?=["/#?])`, "g"), `"${to}`);
  }
  return out;
}

/** `.cec/pyproject.toml` or `.cec/uv.lock` as uv must see it on this machine. */
export function toMirror(text: string, mirrors: UrlMirror[]): string {
  return rewrite(text, mirrors.map((m) => [m.canonical, m.mirror]));
}

/** What uv locked on this machine, with the canonical URLs `.cec` keeps. */
export function toCanonical(lockText: string, mirrors: UrlMirror[]): string {
  return rewrite(lockText, mirrors.map((m) => [m.mirror, m.canonical]));
}

/** `[[tool.uv.index]]` entries of a pyproject (name may be absent). Best effort: bad TOML gives none. */
export function projectIndexes(pyprojectText: string): { name?: string; url: string; default?: boolean }[] {
  try {
    // deno-lint-ignore no-explicit-any -- one optional table is read; the schema is validated elsewhere
    const idx = (parse(pyprojectText) as any)?.tool?.uv?.index;
    return Array.isArray(idx)
      ? idx.filter((i) => typeof i?.url === "string").map((i) => ({
        name: typeof i.name === "string" ? i.name : undefined,
        url: trimSlash(i.url),
        default: i.default === true,
      }))
      : [];
  } catch {
    return [];
  }
}

/** uv's variable name part for an index name (`my-index` -> `MY_INDEX`). */
function envName(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, "_");
}

function withUserinfo(url: string, cred?: { username: string; password: string }): string {
  if (!cred) return url;
  const u = new URL(url);
  u.username = encodeURIComponent(cred.username);
  u.password = encodeURIComponent(cred.password);
  return u.toString().replace(/\/$/, url.endsWith("/") ? "/" : "");
}

/** The project's index URL as this machine reaches it (the mirror when one covers it). */
function mirroredUrl(url: string, mirrors: UrlMirror[]): string {
  const m = mirrors.find((m) => url === m.canonical || url.startsWith(`${m.canonical}/`));
  return m ? m.mirror + url.slice(m.canonical.length) : url;
}

/**
 * The uv variables that apply this machine's index settings to a project (`pyprojectText`); its mirrored
 * index URLs are rewritten in uv's copy of the project instead (`toMirror`).
 */
export function uvIndexEnv(ix: PackageIndexSettings, pyprojectText: string): Record<string, string> {
  const env: Record<string, string> = {};
  const entries: string[] = [];
  const named = new Set<string>();
  for (const idx of projectIndexes(pyprojectText)) if (idx.name) named.add(idx.name);
  for (const e of ix.extraIndexes) {
    entries.push(`${e.name}=${e.url}`);
    named.add(e.name);
  }
  if (entries.length) env.UV_INDEX = entries.join(" ");
  if (ix.defaultIndex) env.UV_DEFAULT_INDEX = withUserinfo(ix.defaultIndex, ix.credentials.default);
  for (const name of named) {
    const cred = ix.credentials[name];
    if (!cred) continue;
    env[`UV_INDEX_${envName(name)}_USERNAME`] = cred.username;
    env[`UV_INDEX_${envName(name)}_PASSWORD`] = cred.password;
  }
  return env;
}

const UNREACHABLE =
  /dns error|error resolving DNS|tcp connect error|Connection refused|client error \(Connect\)|timed out|operation timed out|No route to host|Network is unreachable|certificate/i;

/**
 * uv failed because an index could not be reached (DNS, connect, timeout, TLS): INDEX_UNREACHABLE naming
 * the index and the settings that route around it. Any other failure is returned as it was.
 */
export function unreachableIndexError(
  e: unknown,
  ix: PackageIndexSettings,
  pyprojectText: string,
): unknown {
  if (!(e instanceof CdError) || e.code !== "UV_FAILED" || !UNREACHABLE.test(e.message)) return e;
  const url = /Failed to (?:fetch|download)[^:]*:\s*`?(\S+?)`?\s*$/m.exec(e.message)?.[1] ??
    /for url \((\S+?)\)/.exec(e.message)?.[1];
  if (!url) return e;
  const mirrors = urlMirrors(ix);
  const known: { url: string; what: string }[] = [];
  for (const i of projectIndexes(pyprojectText)) {
    const via = mirroredUrl(i.url, mirrors);
    const what = `the '${i.name ?? "unnamed"}' index of .cec (${i.url})`;
    known.push({ url: via, what: via === i.url ? what : `${what} through the mirror ${via}` });
  }
  for (const x of ix.extraIndexes) known.push({ url: x.url, what: `the extra index '${x.name}' (${x.url})` });
  for (const m of mirrors) known.push({ url: m.mirror, what: `the mirror ${m.mirror} (for ${m.canonical})` });
  known.push({ url: PYPI_SIMPLE, what: `PyPI (${PYPI_SIMPLE}), the default index` });
  known.push({ url: PYPI_FILES, what: `PyPI's file host (${PYPI_FILES})` });
  known.push({ url: PYTORCH_INDEX_BASE, what: `the PyTorch index (${PYTORCH_INDEX_BASE})` });
  const hit = known.filter((k) => url.startsWith(k.url)).sort((a, b) => b.url.length - a.url.length)[0];
  const cause = UNREACHABLE.exec(e.message)![0];
  return new CdError(
    "INDEX_UNREACHABLE",
    `could not reach ${hit ? hit.what : url} (${cause}; uv asked for ${url.replace(/\/\/[^@/]*@/, "//")})`,
    {
      hint:
        "if this machine sits behind a firewall or uses a mirror, set it for this workspace only (never " +
        "written into .cec): 'comfydock config set torch_index_mirror URL' (a mirror of " +
        `${PYTORCH_INDEX_BASE}), 'comfydock config set default_index URL' (instead of PyPI), ` +
        "'comfydock config set extra_indexes NAME=URL', credentials with 'comfydock config set-key " +
        "index:NAME'; or take torch from PyPI ('comfydock create --torch-backend pypi'). README: " +
        "'Behind a mirror or firewall'",
      cause: e,
    },
  );
}
