/**
 * The `comfyui` resource: the ComfyUI core checkout of an environment (DESIGN §4). observe reads
 * `ComfyUI/.git` (HEAD, tags at HEAD, hand edits to tracked files); diff is pure; apply clones from the
 * workspace mirror into staging (new checkout) or checks out in place (version change). See checkout.ts
 * for why user folders are never moved.
 */
import { join } from "node:path";
import { z } from "zod";
import { CdError } from "../../lib/errors.ts";
import { exists } from "../../lib/fsx.ts";
import type { DesiredState } from "../../reconcile/desired.ts";
import type { Action, ObserveContext, Provider, Transaction, UndoStep } from "../../reconcile/types.ts";
import * as git from "../git/git.ts";
import { checkoutInPlace, cloneAt, dirtyError, localEdits, makeUserDirs, USER_DIRS } from "./checkout.ts";
import { normaliseUrl } from "../git/mirror.ts";
import { ensureCommitInMirror, ensureMirror } from "./mirror.ts";
import { DEFAULT_COMFYUI_URL } from "../../lib/settings.ts";
import { labelForCommit, shortSha, versionLabel } from "./versions.ts";
import { installScriptNotes, type PendingInstallScript, pendingInstallScripts } from "./health.ts";
import { venvPython } from "../packages/distinfo.ts";

export type ComfyUIObserved = {
  /** ComfyUI/ exists. */
  present: boolean;
  /** ComfyUI/ is a git checkout. */
  git: boolean;
  commit: string | null;
  /** A tag at HEAD (release tags preferred). */
  tag: string | null;
  /** Tracked files edited by hand (capped at 50). */
  edits: string[];
  /** Custom node packs with an install.py that health has not seen load yet (see health.ts). */
  installScripts?: PendingInstallScript[];
};

export type ComfyUITarget = { commit: string; version: string; url: string };

export async function observeComfyUI(dir: string): Promise<ComfyUIObserved> {
  if (!await exists(dir)) return { present: false, git: false, commit: null, tag: null, edits: [] };
  if (!await exists(join(dir, ".git"))) {
    return { present: true, git: false, commit: null, tag: null, edits: [] };
  }
  const commit = await git.revParse(dir, "HEAD");
  if (!commit) return { present: true, git: true, commit: null, tag: null, edits: [] };
  const tags = await git.tagsAt(dir, commit);
  const tag = labelForCommit(commit, Object.fromEntries(tags.map((t) => [t, commit])));
  return { present: true, git: true, commit, tag, edits: (await localEdits(dir)).slice(0, 50) };
}

function target(desired: DesiredState): ComfyUITarget {
  return {
    commit: desired.comfyui.commit,
    version: desired.comfyui.version,
    // The canonical URL of .cec (what it means on every machine); a machine's mirror applies at apply time.
    url: normaliseUrl(desired.comfyui.url || DEFAULT_COMFYUI_URL),
  };
}

function label(commit: string | null, tag: string | null): string {
  return commit ? `${shortSha(commit)} (${tag ?? "no tag"})` : "no commit";
}

/** Pure: desired pin vs observed checkout. */
export function diffComfyUI(desired: DesiredState, observed: ComfyUIObserved): Action[] {
  const want = target(desired);
  const after = { ...want };
  // The install.py findings are notes, not part of the checkout an action changes.
  const { installScripts: _notes, ...checkout } = observed;
  const before = { ...checkout, edits: [...observed.edits] };
  if (!observed.present) {
    return [{
      address: "comfyui",
      type: "comfyui",
      kind: "create",
      reason: "not installed",
      before: null,
      after,
      details: [`clone ${want.url} at ${label(want.commit, want.version)}`],
    }];
  }
  if (!observed.git || !observed.commit) {
    return [{
      address: "comfyui",
      type: "comfyui",
      kind: "replace",
      reason: "ComfyUI/ exists but is not a git checkout",
      before,
      after,
      details: [
        "apply refuses to touch it (your models/, custom_nodes/, user/ may be inside);",
        "move it aside (mv ComfyUI ComfyUI.old), apply, then move your folders back",
      ],
    }];
  }
  if (observed.commit === want.commit) return [];
  return [{
    address: "comfyui",
    type: "comfyui",
    kind: "update",
    reason: `at ${label(observed.commit, observed.tag)}, want ${label(want.commit, want.version)}`,
    before,
    after,
    details: observed.edits.length
      ? [`${observed.edits.length} tracked file(s) edited by hand: apply will refuse until they are stashed`]
      : [`git checkout --detach ${shortSha(want.commit)} (models/, custom_nodes/, user/ untouched)`],
  }];
}

/** Pure: findings that are not actions. */
export function notesComfyUI(desired: DesiredState, observed: ComfyUIObserved): string[] {
  const pending = observed.installScripts ?? [];
  const notes = pending.length ? installScriptNotes(venvPython(desired.paths.venv), pending) : [];
  if (!observed.edits.length) return notes;
  const shown = observed.edits.slice(0, 5).join(", ") + (observed.edits.length > 5 ? ", ..." : "");
  return [
    `comfyui: ${observed.edits.length} tracked file(s) edited by hand (${shown}); never reset by ComfyDock`,
    ...notes,
  ];
}

async function applyComfyUI(action: Action, tx: Transaction, ctx: ObserveContext): Promise<void> {
  const want = action.after as ComfyUITarget;
  const dir = ctx.paths.comfyui;
  const observed = await observeComfyUI(dir);
  if (observed.present && (!observed.git || !observed.commit)) {
    throw new CdError("COMFYUI_NOT_GIT", `${dir} exists but is not a git checkout of ComfyUI`, {
      hint: `move it aside (mv '${dir}' '${dir}.old'), run apply, then move your ${
        USER_DIRS.join("/, ")
      }/ back`,
    });
  }
  if (observed.commit === want.commit) return; // already there: idempotent
  if (observed.edits.length) throw dirtyError(dir, observed.edits);
  if (!observed.present) {
    const mirror = await ensureMirror(ctx.paths.workspace, want.url, { progress: ctx.progress });
    await ensureCommitInMirror(mirror, want.commit);
    tx.log(`cloning ComfyUI ${versionLabel(want.version, want.commit)} from the mirror`);
    const staging = await tx.stagingDir("comfyui");
    const staged = join(staging, "ComfyUI");
    await cloneAt(mirror, want.commit, staged);
    await makeUserDirs(staged);
    await tx.place(staged, dir);
    return;
  }
  tx.log(`checking out ComfyUI ${versionLabel(want.version, want.commit)}`);
  // A commit the checkout already has (e.g. a rollback) needs no mirror, so no network.
  let mirror = null;
  if (!await git.hasCommit(dir, want.commit)) {
    mirror = await ensureMirror(ctx.paths.workspace, want.url, { progress: ctx.progress });
    await ensureCommitInMirror(mirror, want.commit);
  }
  await tx.recordUndo({ op: "custom", type: "comfyui", data: { commit: observed.commit } });
  await checkoutInPlace(dir, mirror, want.commit);
}

async function undoComfyUI(step: Extract<UndoStep, { op: "custom" }>, ctx: ObserveContext): Promise<void> {
  const { commit } = step.data as { commit: string };
  // The checkout being undone was made on a clean tree, so going back is a plain checkout too.
  await git.checkoutDetached(ctx.paths.comfyui, commit);
}

const Target = z.object({
  commit: z.string().regex(/^[0-9a-f]{40}$/),
  version: z.string(),
  url: z.string().min(1),
});

export const comfyuiProvider: Provider<ComfyUIObserved> = {
  type: "comfyui",
  payload: z.object({ kind: z.enum(["create", "update", "replace"]), before: z.unknown(), after: Target }),
  observe: async (desired, ctx) => {
    const observed = await observeComfyUI(ctx.paths.comfyui);
    const installScripts = await pendingInstallScripts(ctx.paths, desired.nodes);
    return installScripts.length ? { ...observed, installScripts } : observed;
  },
  diff: (desired, observed) => ({
    actions: diffComfyUI(desired, observed),
    notes: notesComfyUI(desired, observed),
  }),
  apply: applyComfyUI,
  undo: undoComfyUI,
};
