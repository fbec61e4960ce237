/**
 * The one git door: a thin typed wrapper over the `git` CLI (every provider that touches a git repo goes
 * through it). Never prompts (GIT_TERMINAL_PROMPT=0: a private URL fails instead of hanging on a password
 * prompt), never goes through a shell. Commits work on fresh machines: without a configured identity a
 * fallback `ComfyDock <comfydock@localhost>` is passed per command, never written to any config.
 *
 * Trust (DESIGN §6b): a repository's own config is someone else's input (a node folder made by hand or by
 * another tool, a pack that shipped a `.git`). Git runs commands named there: `core.fsmonitor` on every
 * `git status`, hooks on checkout and commit, filter drivers (selected by the work tree's `.gitattributes`)
 * whenever it reads or writes a file. So every call carries `SAFE_CONFIG` (fsmonitor off, hooks pointed at
 * a place where none can exist, `file://` allowed only when the user typed the URL, never `ext::`), and a
 * call marked `untrusted` also blanks every driver command the repository's own config defines.
 */
import { join } from "node:path";
import { CdError } from "../../lib/errors.ts";
import { exists, readTextIfExists } from "../../lib/fsx.ts";
import type { ProgressTask } from "../../lib/progress.ts";
import { run, type RunResult, terminalLines } from "../../lib/proc.ts";

export const FALLBACK_IDENTITY = { name: "ComfyDock", email: "comfydock@localhost" } as const;

export interface GitOptions {
  /** Extra environment for this call (merged over the process environment). */
  env?: Record<string, string>;
  /** When false, a non-zero exit is returned instead of thrown. */
  check?: boolean;
  errorCode?: string;
  hint?: string;
  stdin?: string;
  /** Each line of git's output as it arrives (with `--progress`: its meters, see `progressInto`). */
  onLine?: (line: string) => void;
  /**
   * `dir` was not made by this tool (or may have been changed by someone else since): blank the commands of
   * its own config (filter, diff and merge drivers) before git reads any file there.
   */
  untrusted?: boolean;
}

/** A hooks directory no hook can be in: a path below a device file. */
const NO_HOOKS = Deno.build.os === "windows" ? "NUL" : "/dev/null";

/**
 * Config passed to every call (command-line config wins over every file). `protocol.file.allow=user`: a
 * `file://` or local-path URL works when it is the URL we were given, but not when a repository names it
 * (a submodule pointing at a private repository on this machine); `ext::` URLs run commands: never.
 */
export const SAFE_CONFIG: readonly string[] = [
  "core.fsmonitor=false",
  `core.hooksPath=${NO_HOOKS}`,
  "protocol.file.allow=user",
  "protocol.ext.allow=never",
].flatMap((kv) => ["-c", kv]);

/** Keys of a repository's own config whose values git runs as commands while reading files. */
const DRIVER_KEY = /^(filter\..+\.(clean|smudge|process)|diff\..+\.(textconv|command)|merge\..+\.driver)$/;

/**
 * `-c key=` for every driver command the repository's own (local/worktree) config defines, so git falls
 * back to the plain file. The user's global and system config are theirs and stay in force (git-lfs).
 * Throws when the config cannot be read or names a driver that cannot be blanked: then git is not run.
 */
async function neutralise(dir: string): Promise<string[]> {
  const r = await run("git", [
    ...SAFE_CONFIG,
    "-C",
    dir,
    "config",
    "--list",
    "--show-scope",
    "--name-only",
    "-z",
  ], {
    env: BASE_ENV,
    check: false,
  });
  if (r.code !== 0) {
    throw new CdError(
      "GIT_CONFIG_UNREADABLE",
      `cannot read the git config of ${dir}: ${lastLine(r.stderr)}`,
      {
        hint: "fix or remove that folder's .git; ComfyDock does not run git where it cannot check the config",
      },
    );
  }
  const parts = r.stdout.split("\0");
  const args: string[] = [];
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const [scope, key] = [parts[i], parts[i + 1]];
    if ((scope !== "local" && scope !== "worktree") || !DRIVER_KEY.test(key)) continue;
    // `-c` splits at the first '=': a driver whose name holds one could not be blanked.
    if (key.includes("=")) {
      throw new CdError(
        "GIT_CONFIG_UNSAFE",
        `${dir}: its git config defines a driver git would run (${key})`,
        {
          hint: "ComfyDock does not run git in it; remove that section from its .git/config",
        },
      );
    }
    args.push("-c", `${key}=`);
  }
  return args;
}

export function lastLine(s: string): string {
  return s.trim().split("\n").filter(Boolean).pop() ?? "unknown error";
}

// GIT_OPTIONAL_LOCKS=0: `status` must not rewrite the index (observe is read-only and may run beside an apply).
const BASE_ENV = { GIT_TERMINAL_PROMPT: "0", GIT_ASKPASS: "", GIT_OPTIONAL_LOCKS: "0" };

/** True when `url` names a git remote (`scheme://...` or scp-like `user@host:path`), not a local path. */
export function isRemoteUrl(url: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(url) || /^[^/\s]+@[^/\s]+:/.test(url);
}

/** Runs `git -C dir args...` (dir null: no -C) with SAFE_CONFIG (and `neutralise` when untrusted). */
export async function git(dir: string | null, args: string[], opts: GitOptions = {}): Promise<RunResult> {
  const full = dir === null ? args : ["-C", dir, ...args];
  const blanked = opts.untrusted && dir !== null ? await neutralise(dir) : [];
  const r = await run("git", [...SAFE_CONFIG, ...blanked, ...full], {
    env: { ...BASE_ENV, ...opts.env },
    check: false,
    notFoundHint: "install git (https://git-scm.com) and try again",
    stdin: opts.stdin,
    onLine: opts.onLine,
  });
  if (r.code !== 0 && opts.check !== false) {
    // The message shows the command as the caller wrote it, without the safety config, and what git said
    // as a terminal would show it (no progress meters).
    const detail = terminalLines(r.stderr.trim() ? r.stderr : r.stdout).slice(-15).join("\n");
    throw lockError(detail, dir) ?? new CdError(
      opts.errorCode ?? "GIT_FAILED",
      `git ${full.join(" ")} failed (exit ${r.code}):\n${detail}`,
      { hint: opts.hint ?? "git's message above says what went wrong" },
    );
  }
  return r;
}

/**
 * git's "Unable to create '.../index.lock': File exists" as what it means: another git is working in the
 * repository, or one was killed and left its lock file behind (named, so it can be removed).
 */
function lockError(said: string, dir: string | null): CdError | null {
  const lock = /Unable to create '([^']+\.lock)': File exists/.exec(said)?.[1];
  if (!lock) return null;
  return new CdError("GIT_LOCKED", `git could not lock ${dir ?? "the repository"}: ${lock} exists`, {
    hint: `another git process may be working in ${dir ?? "it"}: let it finish. If none is running, the ` +
      `lock was left by a git that was killed: remove ${lock} and run the command again`,
  });
}

/**
 * Feeds git's `--progress` output into a progress task: a meter ("Receiving objects:  45% (450/1000),
 * 1.2 MiB | 500 KiB/s") becomes the task's amount, its phase and transfer figures the detail; other lines
 * ("Cloning into bare repository ...") become the detail as they are.
 */
export function progressInto(task: ProgressTask): (line: string) => void {
  return (raw) => {
    const line = raw.trim();
    if (!line) return;
    const m = /^(?:remote:\s*)?(.*?):\s+(\d+)% \((\d+)\/(\d+)\)(?:,\s*(.*?))?(?:,\s*done\.?)?$/.exec(line);
    if (!m) return task.advance(0, line);
    task.update(Number(m[3]), { total: Number(m[4]), detail: [m[1], m[5]].filter(Boolean).join(" ") });
  };
}

async function out(dir: string | null, args: string[], opts?: GitOptions): Promise<string> {
  return (await git(dir, args, opts)).stdout.trim();
}

export async function init(dir: string, opts: GitOptions = {}): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await git(dir, ["init", "--quiet", "--initial-branch=main"], opts);
}

export async function isRepo(dir: string): Promise<boolean> {
  const r = await git(dir, ["rev-parse", "--git-dir"], { check: false });
  return r.code === 0;
}

/** `-c user.name/-c user.email` when the repo (or the user's config) has no identity. */
async function identityArgs(dir: string, opts: GitOptions): Promise<string[]> {
  const name = await git(dir, ["config", "user.name"], { ...opts, check: false });
  const email = await git(dir, ["config", "user.email"], { ...opts, check: false });
  const args: string[] = [];
  if (name.code !== 0 || !name.stdout.trim()) args.push("-c", `user.name=${FALLBACK_IDENTITY.name}`);
  if (email.code !== 0 || !email.stdout.trim()) args.push("-c", `user.email=${FALLBACK_IDENTITY.email}`);
  return args;
}

/**
 * Stages `paths` (default: everything, including deletions) and commits. Returns the new commit's sha, or
 * null when there was nothing to commit (not an error: re-running a command must be harmless).
 */
export async function commit(
  dir: string,
  message: string,
  opts: GitOptions & { paths?: string[]; allowEmpty?: boolean } = {},
): Promise<string | null> {
  await git(dir, ["add", "--all", "--", ...(opts.paths ?? ["."])], opts);
  // With `paths`, only those are committed: whatever else the user staged stays theirs to commit.
  const only = opts.paths
    ? (await out(dir, ["diff", "--cached", "--name-only", "--no-renames", "-z", "--", ...opts.paths], opts))
      .split("\0").filter(Boolean)
    : null;
  if (!opts.allowEmpty) {
    const head = await revParse(dir, "HEAD", opts);
    // A repo without any commit has no HEAD to diff against: then "nothing to commit" = an empty index.
    const unchanged = only
      ? only.length === 0
      : head === null
      ? (await out(dir, ["ls-files"], opts)) === ""
      : (await git(dir, ["diff", "--cached", "--quiet"], { ...opts, check: false })).code === 0;
    if (unchanged) return null;
  }
  const id = await identityArgs(dir, opts);
  await git(null, [
    "-C",
    dir,
    ...id,
    "commit",
    "--quiet",
    "--no-verify",
    ...(opts.allowEmpty ? ["--allow-empty"] : []),
    "-m",
    message,
    ...(only && only.length ? ["--", ...only] : []),
  ], opts);
  return await revParse(dir, "HEAD", opts);
}

/** Full sha of `rev` as a commit, or null when it does not name one. */
export async function revParse(dir: string, rev: string, opts: GitOptions = {}): Promise<string | null> {
  const r = await git(dir, ["rev-parse", "--verify", "--quiet", `${rev}^{commit}`], {
    ...opts,
    check: false,
  });
  return r.code === 0 ? r.stdout.trim() : null;
}

export interface LogEntry {
  sha: string;
  /** ISO 8601 committer date. */
  date: string;
  message: string;
}

export async function log(
  dir: string,
  opts: GitOptions & { maxCount?: number; rev?: string; path?: string } = {},
): Promise<LogEntry[]> {
  if (await revParse(dir, opts.rev ?? "HEAD", opts) === null) return [];
  const args = ["log", "-z", "--format=%H%x1f%cI%x1f%B"];
  if (opts.maxCount) args.push(`--max-count=${opts.maxCount}`);
  args.push(opts.rev ?? "HEAD");
  if (opts.path) args.push("--", opts.path);
  const text = (await git(dir, args, opts)).stdout;
  return text.split("\0").filter((r) => r.trim()).map((rec) => {
    const [sha, date, message] = rec.split("\x1f");
    return { sha: sha.trim(), date, message: message.trim() };
  });
}

/** Content of `path` at `rev`, or null when the file does not exist there. */
export async function showFile(
  dir: string,
  rev: string,
  path: string,
  opts: GitOptions = {},
): Promise<string | null> {
  const r = await git(dir, ["show", `${rev}:${path}`], { ...opts, check: false });
  return r.code === 0 ? r.stdout : null;
}

/** The files of `rev` (paths relative to the repository, '/'-separated). */
export async function lsFiles(dir: string, rev: string, opts: GitOptions = {}): Promise<string[]> {
  const r = await git(dir, ["ls-tree", "-r", "--name-only", "-z", rev], opts);
  return r.stdout.split("\0").filter(Boolean);
}

/**
 * Makes the work tree's tracked files (and the index) those of `rev`: files added since are removed,
 * files changed are restored. HEAD does not move (so the next commit records the restore as a new commit).
 */
export async function checkoutFiles(dir: string, rev: string, opts: GitOptions = {}): Promise<void> {
  if (await revParse(dir, rev, opts) === null) {
    throw new CdError("GIT_UNKNOWN_REV", `'${rev}' is not a commit in ${dir}`, {
      hint: `'git -C ${dir} log --oneline' lists the revisions`,
    });
  }
  await git(dir, ["read-tree", "--reset", "-u", rev], opts);
}

/** Checks out `commit` detached (refuses, like git, to overwrite local edits or untracked files). */
export async function checkoutDetached(
  dir: string,
  commit: string,
  opts: GitOptions & { source?: string } = {},
): Promise<void> {
  await git(dir, ["checkout", "--quiet", "--detach", commit], opts);
  await assertCheckoutComplete(dir, commit, opts);
}

/**
 * Every file of the commit is in the work tree. For an object its repository lacks (a damaged or cut-short
 * download), `git checkout` prints "unable to read sha1 file", leaves that file out and still exits 0:
 * without this the checkout would pass for the commit. `source`: where the objects came from, for the hint.
 */
export async function assertCheckoutComplete(
  dir: string,
  commit: string,
  opts: GitOptions & { source?: string } = {},
): Promise<void> {
  const { stdout } = await git(dir, ["ls-files", "--deleted", "-z"], { ...opts, errorCode: undefined });
  const missing = stdout.split("\0").filter(Boolean);
  if (missing.length === 0) return;
  const shown = missing.slice(0, 3).join(", ") + (missing.length > 3 ? ` (+${missing.length - 3} more)` : "");
  throw new CdError(
    "GIT_CHECKOUT_INCOMPLETE",
    `checking out ${
      commit.slice(0, 12)
    } in ${dir} left ${missing.length} file(s) out, their content missing ` +
      `from the repository: ${shown}`,
    {
      hint: opts.source
        ? `${opts.source} is incomplete (a damaged or interrupted download): delete that folder so it is ` +
          "fetched again, then run the command again"
        : "the repository is incomplete (a damaged or interrupted download): fetch it again",
    },
  );
}

export interface StatusEntry {
  /** Two-letter porcelain code, e.g. " M", "??", "A ". */
  code: string;
  path: string;
}

export async function status(
  dir: string,
  opts: GitOptions & { untracked?: boolean } = {},
): Promise<StatusEntry[]> {
  const args = [
    "status",
    "--porcelain=v1",
    "-z",
    `--untracked-files=${opts.untracked === false ? "no" : "all"}`,
    // A submodule's work tree is checked by a child git reading the submodule's own config, which
    // `neutralise` has not seen: in a foreign checkout only moved submodule commits count.
    ...(opts.untrusted ? ["--ignore-submodules=dirty"] : []),
  ];
  const text = (await git(dir, args, opts)).stdout;
  const parts = text.split("\0");
  const entries: StatusEntry[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (p.length < 4) continue;
    const code = p.slice(0, 2);
    entries.push({ code, path: p.slice(3) });
    // Renames/copies carry the source path as the next NUL-separated field.
    if (code[0] === "R" || code[0] === "C") i++;
  }
  return entries;
}

export async function isDirty(
  dir: string,
  opts: GitOptions & { untracked?: boolean } = {},
): Promise<boolean> {
  return (await status(dir, opts)).length > 0;
}

/** `git clone --mirror url dest`; with `opts.onLine` git's progress is streamed to it (see progressInto). */
export async function cloneMirror(url: string, dest: string, opts: GitOptions = {}): Promise<void> {
  const verbosity = opts.onLine ? "--progress" : "--quiet";
  await git(null, ["clone", verbosity, "--mirror", "--", url, dest], {
    errorCode: "GIT_CLONE_FAILED",
    hint: `check that ${url} is reachable and is a git repository`,
    ...opts,
  });
}

/** Updates a mirror made by cloneMirror (all refs, pruned). */
export async function fetchMirror(mirrorDir: string, opts: GitOptions = {}): Promise<void> {
  await git(mirrorDir, ["fetch", "--quiet", "--prune", "--tags", "origin"], {
    errorCode: "GIT_FETCH_FAILED",
    ...opts,
  });
}

/** Clones `src` (a local mirror) without checking out; objects are hard-linked when on the same disk. */
export async function cloneNoCheckout(src: string, dest: string, opts: GitOptions = {}): Promise<void> {
  await git(null, ["clone", "--quiet", "--no-checkout", "--", src, dest], {
    errorCode: "GIT_CLONE_FAILED",
    ...opts,
  });
}

export async function hasCommit(dir: string, sha: string): Promise<boolean> {
  const r = await git(dir, ["cat-file", "-e", `${sha}^{commit}`], { check: false });
  return r.code === 0;
}

/** Tags of a repo (local dir) -> commit sha (annotated tags peeled). */
export async function tags(dir: string, opts: GitOptions = {}): Promise<Record<string, string>> {
  const text = await out(dir, [
    "for-each-ref",
    "--format=%(refname:strip=2) %(objectname) %(*objectname)",
    "refs/tags",
  ], opts);
  const result: Record<string, string> = {};
  for (const line of text.split("\n").filter(Boolean)) {
    const [name, obj, peeled] = line.split(" ");
    result[name] = peeled || obj;
  }
  return result;
}

/** Tags of a remote (`git ls-remote --tags`), annotated tags peeled to their commit. */
export async function lsRemoteTags(url: string, opts: GitOptions = {}): Promise<Record<string, string>> {
  const text = await out(null, ["ls-remote", "--tags", "--", url], {
    errorCode: "GIT_REMOTE_FAILED",
    hint: `check that ${url} is reachable`,
    ...opts,
  });
  const result: Record<string, string> = {};
  for (const line of text.split("\n").filter(Boolean)) {
    const [sha, ref] = line.split("\t");
    const name = ref.replace(/^refs\/tags\//, "");
    if (name.endsWith("^{}")) result[name.slice(0, -3)] = sha;
    else if (!(name in result)) result[name] = sha;
  }
  return result;
}

/** The exact tag names pointing at `commit` (sorted), in a repo with those tags. */
export async function tagsAt(dir: string, commit: string, opts: GitOptions = {}): Promise<string[]> {
  const text = await out(dir, ["tag", "--points-at", commit], opts);
  return text.split("\n").filter(Boolean).sort();
}

export async function setRemoteUrl(
  dir: string,
  remote: string,
  url: string,
  opts: GitOptions = {},
): Promise<void> {
  await git(dir, ["remote", "set-url", remote, url], opts);
}

/**
 * HEAD commit of a checkout. Reads .git directly (a plan over many nodes must not spawn git twice per node),
 * falling back to git for anything unusual (worktrees, packed refs).
 */
export async function headCommit(dir: string): Promise<string | null> {
  // `.git` may be a file (`gitdir: ...`: a worktree, a submodule's checkout): then git reads it.
  const head = (await readTextIfExists(join(dir, ".git", "HEAD")).catch((e) => {
    if (e instanceof Deno.errors.NotADirectory) return undefined;
    throw e;
  }))?.trim();
  if (head === undefined) {
    if (!(await exists(join(dir, ".git")))) return null;
  } else if (/^[0-9a-f]{40}$/.test(head)) {
    return head;
  } else if (head.startsWith("ref: ")) {
    const ref = (await readTextIfExists(join(dir, ".git", head.slice(5))))?.trim();
    if (ref && /^[0-9a-f]{40}$/.test(ref)) return ref;
  }
  return await revParse(dir, "HEAD");
}

/**
 * Paths under `sub` that the repository at `dir` tracks (ComfyUI ships `custom_nodes/websocket_image_save.py`:
 * it is ComfyUI's file, not a node). Empty when `dir` is not a git checkout. Reads the index only.
 */
export async function trackedFiles(dir: string, sub: string): Promise<Set<string>> {
  const r = await git(dir, ["ls-files", "-z", "--", sub], { check: false });
  return new Set(r.code === 0 ? r.stdout.split("\0").filter(Boolean) : []);
}

/** `remote.origin.url` of a checkout, or null. */
export async function originUrl(dir: string): Promise<string | null> {
  const r = await git(dir, ["config", "--get", "remote.origin.url"], { check: false });
  return r.code === 0 ? r.stdout.trim() || null : null;
}

/**
 * Uncommitted changes of a checkout that may not be ours (a node folder): `XY path` lines for modified
 * tracked and untracked files, except the byte-code caches Python writes when ComfyUI loads the node (they
 * would make every used node "dirty"). A status that cannot run is reported as one line, never as clean.
 */
export async function dirtyFiles(dir: string): Promise<string[]> {
  try {
    return (await status(dir, { untrusted: true })).map((e) => `${e.code} ${e.path}`)
      .filter((l) => !/__pycache__\/|\.py[co]$/.test(l));
  } catch (e) {
    return [`(git status failed: ${lastLine(e instanceof Error ? e.message : String(e))})`];
  }
}

/** `dirtyFiles` lines for a message: "2 files: a.py, b.py" (porcelain status columns dropped). */
export function describeDirty(dirty: string[]): string {
  const n = dirty.length;
  const names = dirty.slice(0, 3).map((l) => /^[ MTADRCU?!]{2} /.test(l) ? l.slice(3) : l);
  return `${n} file${n === 1 ? "" : "s"}: ${names.join(", ")}${n > 3 ? ", ..." : ""}`;
}

/** Keeps a file out of `git status` of a checkout (our marker must not make a node look dirty). */
export async function excludeFromGit(dir: string, name: string): Promise<void> {
  const path = join(dir, ".git", "info", "exclude");
  const text = (await readTextIfExists(path)) ?? "";
  if (text.split("\n").includes(`/${name}`)) return;
  await Deno.mkdir(join(dir, ".git", "info"), { recursive: true });
  await Deno.writeTextFile(path, `${text}${text && !text.endsWith("\n") ? "\n" : ""}/${name}\n`);
}
