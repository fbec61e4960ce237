/**
 * The one redaction function: credentials never reach a log, a message, `--json` output, a PR comment or
 * `.cec`. Known secrets (the configured tokens) are replaced wherever they appear; credential shapes
 * (URL userinfo, token-like query parameters, Authorization values, well-known token prefixes) are
 * replaced wherever they are recognised.
 */

/** Query parameter names that carry credentials (what signed and tokened download URLs use). */
const CREDENTIAL_NAMES =
  "[a-z_]*token|[a-z_]*key|auth[a-z_]*|password|passwd|secret|signature|sig|x-amz-[a-z-]+";
const CREDENTIAL_PARAM = new RegExp(`^(?:${CREDENTIAL_NAMES})$`, "i");
/** `?name=value` of a credential parameter, in any text (the value up to the next separator). */
const CREDENTIAL_QUERY = new RegExp(`([?&;](?:${CREDENTIAL_NAMES})=)[^&;\\s"']+`, "gi");

/** `text` with every credential replaced by `***`; `secrets` (tokens we know) go first, wherever they are. */
export function redactSecrets(text: string, secrets: readonly (string | null | undefined)[] = []): string {
  let out = text;
  // Very short values would blank unrelated text; real tokens are far longer.
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join("***");
  return out
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi, "$1***@")
    .replace(CREDENTIAL_QUERY, "$1***")
    // A word after "token" counts only when it looks generated (has a digit): "token permission" stays.
    .replace(/\b(Bearer|Basic|token)\s+(?=[A-Za-z0-9._~+/=-]*\d)[A-Za-z0-9._~+/=-]{8,}/g, "$1 ***")
    .replace(/\b(hf_|gh[pousr]_|github_pat_|sk-)[A-Za-z0-9_]{6,}/g, "$1***");
}

export interface UrlCredentials {
  /** The URL without them. */
  clean: string;
  /** Where they were, for messages: `user:password@`, `its 'token' parameter`, ... (never the values). */
  where: string[];
  /** The values (to store in the key store), userinfo password or user first, then query values. */
  values: string[];
}

/** The credentials a URL carries (userinfo, token-like query parameters), or null when it has none. */
export function urlCredentials(raw: string): UrlCredentials | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  const where: string[] = [];
  const values: string[] = [];
  if (url.username || url.password) {
    where.push("user:password@");
    values.push(decodeURIComponent(url.password || url.username));
    url.username = "";
    url.password = "";
  }
  for (const name of [...new Set(url.searchParams.keys())]) {
    if (!CREDENTIAL_PARAM.test(name)) continue;
    // Named without `?name=`: a message quoting that shape would itself look like a credential to redact.
    where.push(`its '${name}' parameter`);
    values.push(...url.searchParams.getAll(name).filter(Boolean));
    url.searchParams.delete(name);
  }
  return where.length ? { clean: url.toString(), where, values } : null;
}

/**
 * Why `raw` may not be kept in a shared file such as `.cec` (the credentials it carries, never their values),
 * or null. For a git remote only a password counts, or any user of an http(s) URL (where tokens go):
 * `ssh://git@host/x` names a login, not a secret.
 */
export function credentialsProblem(raw: string, kind: "download" | "git"): string | null {
  if (kind === "download") {
    const found = urlCredentials(raw);
    return found ? `carries credentials (${found.where.join(", ")})` : null;
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  return url.password || (/^https?:$/.test(url.protocol) && url.username)
    ? "carries credentials (user:password@)"
    : null;
}
