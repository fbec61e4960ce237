import assert from "node:assert/strict";
import type { DesiredState } from "../../reconcile/desired.ts";
import {
  type ComfyUIObserved,
  comfyuiProvider,
  diffComfyUI,
  notesComfyUI,
} from "../../providers/comfyui/provider.ts";

const OLD = "1111111111111111111111111111111111111111";
const NEW = "2222222222222222222222222222222222222222";

function desired(commit = NEW, version = "v0.2.0"): DesiredState {
  return { comfyui: { commit, version, url: "https://example.invalid/ComfyUI" } } as unknown as DesiredState;
}

const at = (commit: string, extra: Partial<ComfyUIObserved> = {}): ComfyUIObserved => ({
  present: true,
  git: true,
  commit,
  tag: "v0.1.0",
  edits: [],
  ...extra,
});

Deno.test("missing ComfyUI -> create with the pinned commit", () => {
  const [a, ...rest] = diffComfyUI(desired(), {
    present: false,
    git: false,
    commit: null,
    tag: null,
    edits: [],
  });
  assert.equal(rest.length, 0);
  assert.equal(a.kind, "create");
  assert.equal(a.address, "comfyui");
  assert.deepEqual(a.after, { commit: NEW, version: "v0.2.0", url: "https://example.invalid/ComfyUI" });
});

Deno.test("another commit -> update, with old and new short sha and tag in the reason", () => {
  const [a] = diffComfyUI(desired(), at(OLD));
  assert.equal(a.kind, "update");
  assert.equal(a.reason, "at 1111111 (v0.1.0), want 2222222 (v0.2.0)");
  assert.deepEqual(diffComfyUI(desired(OLD), at(OLD)), []);
});

Deno.test("hand edits: a note, never a silent reset; the update says apply will refuse", () => {
  const dirty = at(OLD, { edits: ["main.py", "nodes.py"] });
  assert.deepEqual(diffComfyUI(desired(OLD), dirty), []);
  assert.match(
    notesComfyUI(desired(OLD), dirty)[0],
    /2 tracked file\(s\) edited by hand \(main\.py, nodes\.py\)/,
  );
  const [a] = diffComfyUI(desired(), dirty);
  assert.equal(a.kind, "update");
  assert.match(a.details!.join("\n"), /refuse/);
  assert.deepEqual(notesComfyUI(desired(), at(OLD)), []);
});

Deno.test("a ComfyUI folder that is not a git checkout is reported, not replaced blindly", () => {
  const [a] = diffComfyUI(desired(), { present: true, git: false, commit: null, tag: null, edits: [] });
  assert.equal(a.kind, "replace");
  assert.match(a.details!.join(" "), /move it aside/);
});

Deno.test("install.py packs health has not seen load: the provider's diff notes them, outside any action", () => {
  const want = { ...desired(), paths: { venv: "/env/.venv" } } as unknown as DesiredState;
  const pending = at(OLD, { installScripts: [{ dir: "Impact-Pack", id: "impact-pack" }] });
  const { actions, notes } = comfyuiProvider.diff(want, pending);
  assert.equal(actions.length, 1);
  assert.equal("installScripts" in (actions[0].before as Record<string, unknown>), false);
  assert.equal(notes.length, 1);
  assert.match(notes[0], /^node\.impact-pack: has an install\.py that ComfyDock never runs/);
  assert.match(notes[0], /'\/env\/\.venv\/bin\/python custom_nodes\/Impact-Pack\/install\.py'/);
  assert.deepEqual(comfyuiProvider.diff(want, at(OLD)).notes, []);
});
