/**
 * The model resource (`model.<key>`): observe checks what each `[tool.comfydock.models.<key>]` looks like
 * at `ComfyUI/models/<category>/<filename>` and where its content is on this machine (via the index, so an
 * unchanged file costs a stat); diff turns that into link / download / replace actions; apply downloads
 * into the workspace store (verified `.part` -> rename), then links the stored copy into the environment
 * (see link.ts for why links). Anything replaced goes to the apply's trash.
 */
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { z } from "zod";
import { CdError } from "../../lib/errors.ts";
import { exists } from "../../lib/fsx.ts";
import { joinSafe, within } from "../../lib/safe_path.ts";
import type { DesiredState } from "../../reconcile/desired.ts";
import { ModelSource, type ModelSpec } from "../../reconcile/schema.ts";
import type { Action, Json, ObserveContext, Provider, Transaction } from "../../reconcile/types.ts";
import type { WorkspacePaths } from "../../reconcile/paths.ts";
import { type FullHashType, hashFiles, quickHash } from "./hash.ts";
import { type ModelFile, type ModelIndex, sameStat } from "./index_db.ts";
import { linkModel, linkTarget } from "./link.ts";
import { downloadModel } from "./download.ts";
import { rememberSource } from "./find_sources.ts";
import { formatSize } from "./format.ts";
import { describeSource, sourceConfig } from "./sources.ts";
import { downloadsDir, openModelIndex, rescanKnownRoots, storePathFor } from "./store.ts";
import { categoryOf, statFile, type WalkedFile } from "./walk.ts";

export type ObservedModel = {
  /** Where the environment expects the file. */
  path: string;
  state: "ok" | "missing" | "wrong";
  /** A symlink is there but its target is gone. */
  broken_link: boolean;
  /** A file on this machine with the wanted content (stored copy or the user's own folder). */
  found: string | null;
  /** `found` was fully hashed at its current stat (else only its quick identity matched). */
  found_verified: boolean;
  /** What is at `path` when it is the wrong content. */
  actual: { size: number; sha256: string | null } | null;
};

export type ModelsObserved = {
  models: { [key: string]: ObservedModel };
  /** Links into the workspace store that no model entry asks for any more (left by `model remove`). */
  stray: string[];
};

/** The hash a spec identifies its content by: sha256 when known (what sources publish), else blake3. */
function wantedHash(spec: ModelSpec): { type: FullHashType; value: string } {
  if (spec.sha256) return { type: "sha256", value: spec.sha256 };
  const [type, value] = spec.hash!.split(":") as [FullHashType, string];
  return { type, value };
}

function modelPath(modelsDir: string, spec: Pick<ModelSpec, "category" | "filename">): string {
  return joinSafe(modelsDir, `${spec.category}/${spec.filename}`, "model path");
}

// The sync calls below are deliberate: plan stats every wanted model and every link (see walk.ts statFile).
function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch {
    return null;
  }
}

function isFileSync(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

async function tryStat(path: string): Promise<WalkedFile | null> {
  try {
    return await statFile(path);
  } catch {
    return null;
  }
}

/** Checks a file's content against a spec, hashing it only when the index has no hash for its current stat. */
async function checkContent(
  index: ModelIndex,
  path: string,
  spec: ModelSpec,
): Promise<{ match: boolean; size: number; sha256: string | null }> {
  const want = wantedHash(spec);
  const real = Deno.realPathSync(path);
  const st = await statFile(real);
  const row = index.fileAt(real);
  const known = (row && sameStat(row, st) ? row : null) ?? index.fileByStat(st);
  if (known?.[want.type]) {
    return { match: known[want.type] === want.value, size: st.size, sha256: known.sha256 };
  }
  if (spec.size !== undefined && st.size !== spec.size) return { match: false, size: st.size, sha256: null };
  const hashes = await hashVerify(index, { ...st, path: real }, want.type);
  return { match: hashes[want.type] === want.value, size: st.size, sha256: hashes.sha256 ?? null };
}

/** Full-hashes a file (sha256, plus blake3 if wanted) and records it in the index cache. */
async function hashVerify(index: ModelIndex, st: WalkedFile, type: FullHashType) {
  const types: FullHashType[] = type === "blake3" ? ["sha256", "blake3"] : ["sha256"];
  const [o] = await hashFiles([{ path: st.path, types, size: st.size }]);
  if (!o.ok) throw new CdError("MODEL_UNREADABLE", `cannot read ${st.path}: ${o.error}`);
  const { quick } = await quickHash(st.path);
  index.recordFileHashes(st, o.hashes, quick, categoryOf(dirname(st.path), st.path));
  return o.hashes;
}

/** Files outside environments first: a link into another environment breaks when that one is deleted. */
function preferStable(ws: WorkspacePaths, files: ModelFile[]): ModelFile[] {
  const inEnv = (p: string) => p.startsWith(ws.environments + sep);
  return [...files].sort((a, b) => Number(inEnv(a.path)) - Number(inEnv(b.path)));
}

/** The file's stat when the index row still describes it (and it is not `exclude`), else null. */
async function unchangedStat(f: ModelFile, exclude: string): Promise<WalkedFile | null> {
  if (f.path === exclude) return null;
  const st = await tryStat(f.path);
  return st && sameStat(f, st) ? st : null;
}

/** A file with the wanted content: verified (full hash at its stat) if possible, else a quick-identity match. */
async function findContent(
  index: ModelIndex,
  ws: WorkspacePaths,
  spec: ModelSpec,
  exclude: string,
): Promise<{ path: string; verified: boolean } | null> {
  const want = wantedHash(spec);
  let quickMatch: string | null = null;
  for (const f of preferStable(ws, index.filesWithHash(want.type, want.value))) {
    const st = await unchangedStat(f, exclude);
    if (!st) continue;
    if (f[want.type] === want.value) return { path: f.path, verified: true };
    quickMatch ??= f.path;
  }
  if (quickMatch) return { path: quickMatch, verified: false };
  // Files indexed by quick identity only: hash those that could be it (same size), once; the index keeps it.
  for (const f of preferStable(ws, index.unverifiedCandidates(spec.size, spec.filename, want.type))) {
    const st = await unchangedStat(f, exclude);
    if (!st) continue;
    const hashes = await hashVerify(index, st, want.type).catch(() => null);
    if (hashes?.[want.type] === want.value) return { path: f.path, verified: true };
  }
  return null;
}

async function observeOne(
  index: ModelIndex,
  ws: WorkspacePaths,
  modelsDir: string,
  spec: ModelSpec,
): Promise<ObservedModel> {
  const path = modelPath(modelsDir, spec);
  const out: ObservedModel = {
    path,
    state: "missing",
    broken_link: false,
    found: null,
    found_verified: false,
    actual: null,
  };
  const lst = lstatOrNull(path);
  if (lst) {
    const target = lst.isSymlink ? linkTarget(path) : path;
    if (target === null) out.broken_link = true;
    else if (!isFileSync(target)) {
      out.state = "wrong";
      out.actual = { size: 0, sha256: null };
    } else {
      const c = await checkContent(index, path, spec);
      if (c.match) return { ...out, state: "ok" };
      out.state = "wrong";
      out.actual = { size: c.size, sha256: c.sha256 };
    }
  }
  const found = await findContent(index, ws, spec, lst && !lst.isSymlink ? path : "");
  if (found) {
    out.found = found.path;
    out.found_verified = found.verified;
  }
  return out;
}

/** Links this tool made in an environment (`.comfydock/model_links.json`), so `model remove` can undo them. */
function linksManifest(ctx: ObserveContext): string {
  return join(ctx.paths.state, "model_links.json");
}

async function readLinks(ctx: ObserveContext): Promise<string[]> {
  try {
    const data = JSON.parse(await Deno.readTextFile(linksManifest(ctx)));
    return Array.isArray(data) ? data.filter((x): x is string => typeof x === "string") : [];
  } catch {
    return [];
  }
}

/**
 * Rewrites the manifest through the transaction (old one to the trash, new one placed), so a rolled-back
 * apply puts back the manifest together with the links it lists.
 */
async function updateLinks(
  ctx: ObserveContext,
  tx: Transaction,
  add: string | null,
  remove: string | null,
): Promise<void> {
  const before = await readLinks(ctx);
  const links = new Set(before);
  if (add) links.add(add);
  if (remove) links.delete(remove);
  const next = [...links].sort();
  const old = [...before].sort();
  if (next.length === old.length && next.every((p, i) => p === old[i])) return;
  const staged = join(await tx.stagingDir("model-links"), "model_links.json");
  await Deno.writeTextFile(staged, JSON.stringify(next, null, 2) + "\n");
  await tx.trash(linksManifest(ctx));
  await tx.place(staged, linksManifest(ctx));
}

/**
 * Links in the environment's models folder that no model entry wants any more: those this tool made
 * (manifest) and any pointing into the workspace store. The user's own files and links are never touched.
 */
async function strayLinks(ctx: ObserveContext, storeDir: string, wanted: Set<string>): Promise<string[]> {
  const out = new Set<string>();
  for (const p of await readLinks(ctx)) {
    // Hard links (the Windows fallback) count too: removing one leaves the stored copy.
    const s = lstatOrNull(p);
    const ours = s !== null && (s.isSymlink || (s.isFile && (s.nlink ?? 1) > 1));
    if (!wanted.has(p) && ours) out.add(p);
  }
  const walk = async (dir: string, depth: number) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory && depth < 4) await walk(p, depth + 1);
      else if (e.isSymlink && !wanted.has(p)) {
        let raw = "";
        try {
          raw = Deno.readLinkSync(p);
        } catch { /* vanished while walking: not ours to report */ }
        if (resolve(dirname(p), raw).startsWith(storeDir + sep)) out.add(p);
      }
    }
  };
  await walk(ctx.paths.models, 0);
  return [...out].sort();
}

async function observe(desired: DesiredState, ctx: ObserveContext): Promise<ModelsObserved> {
  const ws = ctx.paths.workspace;
  const entries = Object.entries(desired.models).sort(([a], [b]) => a.localeCompare(b));
  const wanted = new Set(entries.map(([, s]) => modelPath(ctx.paths.models, s)));
  const stray = await strayLinks(ctx, resolve(ws.modelStore), wanted);
  if (!entries.length) return { models: {}, stray };
  using index = openModelIndex(ws);
  let rescanned = false;
  if (index.recovered) {
    ctx.log?.(
      `model index was unreadable (${index.recovered}); rebuilding it by rescanning the model folders`,
    );
    await rescanKnownRoots(index, ws);
    rescanned = true;
  }
  const models: ModelsObserved["models"] = {};
  for (const [key, spec] of entries) {
    let o = await observeOne(index, ws, ctx.paths.models, spec);
    if (o.state !== "ok" && !o.found && !rescanned) {
      // The index is a cache: a model copied into a scanned folder since the last scan must still be found.
      await rescanKnownRoots(index, ws);
      rescanned = true;
      o = await observeOne(index, ws, ctx.paths.models, spec);
    }
    models[key] = o;
  }
  return { models, stray };
}

function storeRel(ws: WorkspacePaths, p: string): string {
  const r = relative(ws.root, p);
  return r.startsWith("..") ? p : r;
}

/** Pure: observed state -> actions. */
export function diffModels(
  desired: Pick<DesiredState, "models" | "paths">,
  observed: ModelsObserved,
): Action[] {
  const actions: Action[] = [];
  const ws = desired.paths.workspace;
  for (const [key, spec] of Object.entries(desired.models).sort(([a], [b]) => a.localeCompare(b))) {
    const o = observed.models[key];
    if (!o || o.state === "ok") continue;
    const want = wantedHash(spec);
    const rel = `models/${spec.category}/${spec.filename}`;
    const after: { [k: string]: Json } = {
      key,
      path: o.path,
      category: spec.category,
      filename: spec.filename,
      hash_type: want.type,
      hash: want.value,
      size: spec.size ?? null,
      link_to: o.found,
      verify_link: !o.found_verified,
      sources: spec.sources as Json,
    };
    const details: string[] = [];
    let how: string;
    if (o.found) {
      how = `in the model index at ${storeRel(ws, o.found)}`;
      details.push(`link ${rel} -> ${o.found}${o.found_verified ? "" : " (hash checked before linking)"}`);
    } else if (spec.sources.length) {
      how = "not on this machine";
      details.push(`download from ${describeSource(spec.sources[0])} (${formatSize(spec.size)})`);
      if (spec.sources.length > 1) details.push(`then ${spec.sources.length - 1} more source(s) if it fails`);
      details.push(`store in the workspace model store, link ${rel}`);
    } else {
      how = "not on this machine and no source to download from";
      details.push(
        "apply will fail: add a source or scan a folder that holds it ('comfydock model scan PATH')",
      );
    }
    if (o.state === "wrong") {
      const got = o.actual?.sha256
        ? `sha256 ${o.actual.sha256.slice(0, 12)}…`
        : `${o.actual?.size ?? 0} bytes`;
      actions.push({
        address: `model.${key}`,
        type: "model",
        kind: "replace",
        reason: `wrong content at ${rel} (${got}, expected ${want.type} ${
          want.value.slice(0, 12)
        }…); wanted one is ${how}`,
        before: { path: o.path, size: o.actual?.size ?? null, sha256: o.actual?.sha256 ?? null },
        after,
        details: [`move the current ${rel} to the trash`, ...details],
      });
    } else {
      actions.push({
        address: `model.${key}`,
        type: "model",
        kind: "create",
        reason: o.broken_link
          ? `${rel} is a broken link; the model is ${how}`
          : o.found
          ? `${how}, not visible in the environment`
          : how,
        before: o.broken_link ? { path: o.path, broken_link: true } : null,
        after,
        details,
      });
    }
  }
  for (const p of observed.stray) {
    const rel = relative(desired.paths.models, p).split(sep).join("/");
    actions.push({
      address: `model.${rel}`,
      type: "model",
      kind: "delete",
      reason: "link to the model store that no model entry in pyproject.toml asks for",
      before: { path: p },
      after: null,
      details: [`remove the link models/${rel} (the stored model is kept)`],
    });
  }
  return actions;
}

type LinkAfter = {
  key: string;
  path: string;
  category: string;
  filename: string;
  hash_type: FullHashType;
  hash: string;
  size: number | null;
  link_to: string | null;
  verify_link: boolean;
  sources: ModelSource[];
};

async function contentFor(
  index: ModelIndex,
  ctx: ObserveContext,
  a: LinkAfter,
  tx: Transaction,
): Promise<string> {
  const ws = ctx.paths.workspace;
  const spec = {
    category: a.category,
    filename: a.filename,
    size: a.size ?? undefined,
    sources: a.sources,
    ...(a.hash_type === "sha256" ? { sha256: a.hash } : { hash: `blake3:${a.hash}` }),
  } as ModelSpec;
  const candidates = [a.link_to, (await findContent(index, ws, spec, a.path))?.path].filter((
    p,
  ): p is string => !!p);
  for (const c of candidates) {
    const st = await tryStat(c);
    if (!st) continue;
    const check = await checkContent(index, c, spec).catch(() => null);
    if (check?.match) return c;
    tx.log(`${c} no longer has the wanted content; looking elsewhere`);
  }
  const cfg = sourceConfig(ctx.settings, ctx.signal);
  const dest = await storePathFor(ws, a.category, a.filename, a.hash);
  tx.log(`downloading ${a.filename} (${formatSize(a.size ?? undefined)})`);
  const r = await downloadModel(
    cfg,
    a.sources,
    { [a.hash_type]: a.hash, size: a.size ?? undefined },
    dest,
    downloadsDir(ws),
    {
      retryBaseMs: ctx.settings.downloadRetryMs,
      log: (l) => tx.log(l),
      progress: ctx.progress,
      name: a.filename,
    },
  );
  const m = await index.registerModel(r.path, {
    category: a.category,
    hashTypes: r.blake3 ? ["sha256", "blake3"] : ["sha256"],
    known: { sha256: r.sha256, blake3: r.blake3 },
  });
  rememberSource(index, m.id, r.source);
  return r.path;
}

async function apply(action: Action, tx: Transaction, ctx: ObserveContext): Promise<void> {
  const ws = ctx.paths.workspace;
  // What a model action moves or links stays inside the environment once the links of its parents are
  // resolved (a models folder linked elsewhere is refused, not written through): a category or filename
  // from .cec or a plan file never reaches outside.
  const inModels = (path: string) => within([ctx.paths.root], path, `${action.address} path`);
  if (action.kind === "delete") {
    const before = action.before as { path: string };
    await tx.trash(await inModels(before.path));
    await updateLinks(ctx, tx, null, before.path);
    return;
  }
  const a = action.after as unknown as LinkAfter;
  if (a.path !== modelPath(ctx.paths.models, a)) {
    throw new CdError(
      "PLAN_INVALID",
      `${action.address}: path ${a.path} is not models/${a.category}/${a.filename}`,
    );
  }
  await inModels(a.path);
  using index = openModelIndex(ws);
  const source = await contentFor(index, ctx, a, tx);
  if (await exists(a.path)) await tx.trash(a.path);
  const staging = await tx.stagingDir(`model-${a.key}`);
  const staged = join(staging, basename(a.path));
  const how = await linkModel(source, staged);
  if (how === "copy") tx.log(`could not link ${source} (other volume?); copied it instead`);
  await Deno.mkdir(dirname(a.path), { recursive: true });
  await tx.place(staged, a.path);
  if (how !== "copy") await updateLinks(ctx, tx, a.path, null);
}

const LinkAfterSchema = z.object({
  key: z.string(),
  path: z.string(),
  category: z.string(),
  filename: z.string(),
  hash_type: z.enum(["sha256", "blake3"]),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().nullable(),
  link_to: z.string().nullable(),
  verify_link: z.boolean(),
  sources: z.array(ModelSource),
});

export const modelProvider: Provider<ModelsObserved> = {
  type: "model",
  payload: z.union([
    z.object({ kind: z.enum(["create", "replace"]), before: z.unknown(), after: LinkAfterSchema }),
    z.object({ kind: z.literal("delete"), before: z.object({ path: z.string() }), after: z.null() }),
  ]),
  observe,
  diff: (desired, observed) => ({ actions: diffModels(desired, observed), notes: [] }),
  apply,
};
