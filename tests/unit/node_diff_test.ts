import assert from "node:assert/strict";
import { diffNodes } from "../../providers/nodes/diff.ts";
import type { ObservedNode, ObservedNodes } from "../../providers/nodes/observe.ts";
import type { NodeSpec } from "../../reconcile/schema.ts";

const ROOT = "/ws/environments/e";
const CN = `${ROOT}/ComfyUI/custom_nodes`;
const C1 = "1".repeat(40);
const C2 = "2".repeat(40);

function obs(dir: string, o: Partial<ObservedNode> = {}): ObservedNode {
  return {
    path: dir,
    dir,
    disabled: false,
    kind: "archive",
    installer: "comfydock",
    id: dir,
    version: null,
    commit: null,
    sha256: null,
    linkTarget: null,
    dirty: [],
    changedFiles: [],
    requirements: null,
    ...o,
  };
}

function diff(
  desired: Record<string, NodeSpec>,
  nodes: ObservedNode[],
  missingDevPaths: string[] = [],
  force = false,
) {
  const observed: ObservedNodes = { nodes, missingDevPaths, force };
  const d = diffNodes(desired, ROOT, CN, observed);
  return { ...d, lines: d.actions.map((a) => `${a.kind} ${a.address}: ${a.reason}`) };
}

Deno.test("node diff: missing, matching, wrong version, hand edits", () => {
  const reg = (version: string): NodeSpec => ({ source: "registry", version });
  const d = diff(
    { a: reg("1.0.0"), b: reg("2.0.0"), c: reg("1.0.0"), d: reg("1.0.0") },
    [
      obs("b", { version: "2.0.0" }),
      obs("c", { version: "0.9.0" }),
      obs("d", { version: "1.0.0", changedFiles: ["x.py", "y.py"] }),
    ],
  );
  assert.deepEqual(d.lines, [
    "create node.a: not installed",
    "update node.c: installed version 0.9.0, .cec wants 1.0.0",
    "update node.d: 2 files changed by hand",
  ]);
  assert.deepEqual(d.actions[2].details, [
    "restore x.py",
    "restore y.py",
    "the edited copies are moved to the trash first",
  ]);
  assert.deepEqual(d.notes, []);
});

Deno.test("node diff: archive sha256 differs -> replace; git <-> registry -> replace", () => {
  const sha = "a".repeat(64);
  const d = diff(
    {
      a: { source: "registry", version: "1.0.0", sha256: sha },
      g: { source: "registry", version: "1.0.0" },
      p: { source: "git", repository: "https://x/p", commit: C1 },
    },
    [
      obs("a", { version: "1.0.0", sha256: "b".repeat(64) }),
      obs("g", { kind: "git", commit: C1 }),
      obs("p", { kind: "plain", id: null }),
    ],
  );
  assert.deepEqual(d.actions.map((a) => `${a.kind} ${a.address}`), [
    "replace node.a",
    "replace node.g",
    "replace node.p",
  ]);
});

Deno.test("node diff: git commit pin; uncommitted changes are drift, kept by apply without --force", () => {
  const spec: NodeSpec = { source: "git", repository: "https://x/g", commit: C2, ref: "v2" };
  assert.deepEqual(diff({ g: spec }, [obs("g", { kind: "git", commit: C2 })]).lines, []);
  assert.deepEqual(diff({ g: spec }, [obs("g", { kind: "git", commit: C1 })]).lines, [
    `update node.g: at commit ${C1.slice(0, 12)}, .cec wants ${C2.slice(0, 12)}`,
  ]);
  // At the pinned commit, with an edited and an untracked file: "2 files changed by hand", like registry nodes.
  const edited = diff({ g: spec }, [obs("g", { kind: "git", commit: C2, dirty: [" M a.py", "?? b.py"] })]);
  assert.deepEqual(edited.lines, ["update node.g: 2 files changed by hand"]);
  assert.deepEqual(edited.notes, []);
  const details = edited.actions[0].details!;
  assert.deepEqual(details.slice(0, 2), ["changed: a.py", "untracked: b.py"]);
  assert.match(
    details[2],
    /^apply leaves custom_nodes\/g as it is: to keep the changes, make it a dev node /,
  );
  assert.match(details[2], /'comfydock node add ComfyUI\/custom_nodes\/g --dev'/);
  assert.match(details[2], /'comfydock node update g --ref REF --repository FORK_URL'/);
  assert.match(details[2], /'comfydock apply --force'/);

  const movedAndEdited = diff({ g: spec }, [obs("g", { kind: "git", commit: C1, dirty: [" M a.py"] })]);
  assert.deepEqual(movedAndEdited.lines, [
    `update node.g: at commit ${C1.slice(0, 12)}, .cec wants ${C2.slice(0, 12)}; 1 file changed by hand`,
  ]);
  // Not in .cec and dirty: the delete --force would do, with how to keep it.
  const unmanagedDirty = diff({}, [
    obs("x", { kind: "git", installer: null, id: null, commit: C1, dirty: ["?? new.py"] }),
  ]);
  assert.deepEqual(unmanagedDirty.lines, [
    "delete node.x: not in .cec (installed by hand); run 'comfydock capture' to keep it; 1 file with " +
    "uncommitted changes",
  ]);
  assert.match(unmanagedDirty.actions[0].details!.at(-1)!, /commit the changes and run 'comfydock capture'/);
});

Deno.test("node diff: with --force a dirty checkout is acted on, the reason naming its files and the trash", () => {
  const spec: NodeSpec = { source: "git", repository: "https://x/g", commit: C2, ref: "v2" };
  const dirt = [" M a.py", "?? b.py"];
  const moved = diff({ g: spec }, [obs("g", { kind: "git", commit: C1, dirty: dirt })], [], true);
  assert.deepEqual(moved.notes, []);
  assert.deepEqual(moved.lines, [
    `update node.g: at commit ${C1.slice(0, 12)}, .cec wants ${C2.slice(0, 12)}; 2 files changed by hand ` +
    "(--force: the edited checkout goes to the trash)",
  ]);
  assert.match(
    moved.actions[0].details!.at(-1)!,
    /^move custom_nodes\/g with its uncommitted changes to the trash/,
  );

  const toRegistry = diff(
    { g: { source: "registry", version: "1.0.0" } },
    [obs("g", { kind: "git", commit: C1, dirty: dirt })],
    [],
    true,
  );
  assert.equal(toRegistry.actions[0].kind, "replace");
  assert.match(toRegistry.actions[0].reason, /2 files with uncommitted changes \(--force/);

  const removed = diff(
    {},
    [obs("x", { kind: "git", installer: null, id: null, commit: C1, dirty: ["?? new.py"] })],
    [],
    true,
  );
  assert.deepEqual(removed.lines, [
    "delete node.x: not in .cec (installed by hand); run 'comfydock capture' to keep it; 1 file with uncommitted " +
    "changes (--force: the edited checkout goes to the trash)",
  ]);
  // A clean checkout's reason does not change with --force.
  assert.deepEqual(diff({ g: spec }, [obs("g", { kind: "git", commit: C1 })], [], true).lines, [
    `update node.g: at commit ${C1.slice(0, 12)}, .cec wants ${C2.slice(0, 12)}`,
  ]);
});

Deno.test("node diff: a node on disk but not in .cec: 'removed from .cec' when ours, the capture hint when not", () => {
  const d = diff({}, [
    obs("stray", { kind: "plain", installer: null, id: null }),
    obs("ours", { kind: "archive", installer: "comfydock", id: "ours", version: "1.0.0" }),
    obs("mgr", { kind: "archive", installer: "manager", id: "mgr", version: "1.0.0" }),
    obs("old", { path: "old.disabled", disabled: true }),
    obs("mgr2", { path: ".disabled/mgr2", disabled: true }),
  ]);
  assert.deepEqual(d.lines, [
    "delete node.stray: not in .cec (installed by hand); run 'comfydock capture' to keep it",
    "delete node.ours: removed from .cec",
    "delete node.mgr: not in .cec (installed by ComfyUI-Manager); run 'comfydock capture' to keep it",
  ]);
  assert.deepEqual(d.actions[0].before && (d.actions[0].before as { path: string }).path, "stray");
  assert.deepEqual(d.notes, [
    "custom_nodes/old.disabled is disabled and not in .cec; it is left alone ('comfydock capture' records it as disabled)",
    "custom_nodes/.disabled/mgr2 is disabled and not in .cec; it is left alone ('comfydock capture' records it as disabled)",
  ]);
});

Deno.test("node diff: nodes installed by ComfyUI-Manager under another folder name are matched by id", () => {
  const d = diff(
    { "comfyui-impact-pack": { source: "registry", version: "8.1.0" } },
    [obs("ComfyUI-Impact-Pack", { id: "comfyui-impact-pack", installer: "manager", version: "8.1.0" })],
  );
  assert.deepEqual(d.lines, []);
});

Deno.test("node diff: dev nodes are linked; in-place dev code is never touched; missing path is a note", () => {
  const spec: NodeSpec = { source: "dev", path: "/src/mine" };
  assert.deepEqual(diff({ mine: spec }, []).lines, ["create node.mine: not installed"]);
  assert.deepEqual(diff({ mine: spec }, [obs("mine", { kind: "link", linkTarget: "/src/mine" })]).lines, []);
  assert.deepEqual(diff({ mine: spec }, [obs("mine", { kind: "link", linkTarget: "/elsewhere" })]).lines, [
    "update node.mine: links to /elsewhere instead of /src/mine",
  ]);
  const inPlace: NodeSpec = { source: "local", path: "ComfyUI/custom_nodes/here" };
  assert.deepEqual(diff({ here: inPlace }, [obs("here", { kind: "plain", id: null })]).lines, []);
  const missing = diff({ mine: spec }, [], ["mine"]);
  assert.deepEqual(missing.lines, []);
  assert.match(missing.notes[0], /path \/src\/mine does not exist/);
});

Deno.test("node diff: a folder holding another node's files is replaced once", () => {
  const d = diff({ a: { source: "registry", version: "1.0.0" } }, [obs("a", { id: "b", version: "1.0.0" })]);
  assert.deepEqual(d.lines, ["replace node.a: custom_nodes/a holds node 'b', not 'a'"]);
});

Deno.test("node diff: enable/disable is a move when the content matches, else an install into the right place", () => {
  const reg = (version: string, enabled?: boolean): NodeSpec => ({
    source: "registry",
    version,
    ...(enabled === false ? { enabled: false } : {}),
  });
  const place = (d: ReturnType<typeof diff>) =>
    d.actions.map((a) => {
      const after = a.after as { path: string; move?: boolean };
      return `${a.kind} ${a.address}: ${a.reason} -> ${after.path}${after.move ? " (move)" : ""}`;
    });
  // Disabled in .cec, enabled on disk: moved where ComfyUI does not load it.
  assert.deepEqual(place(diff({ x: reg("1.0.0", false) }, [obs("x", { version: "1.0.0" })])), [
    "update node.x: disable -> .disabled/x (move)",
  ]);
  // Disabled wherever ComfyUI-Manager put it (old or new place, version suffix): in sync, left there.
  for (const path of ["x.disabled", ".disabled/x", ".disabled/x@1_0_0"]) {
    assert.deepEqual(
      diff({ x: reg("1.0.0", false) }, [obs("x", { path, disabled: true, version: "1.0.0" })]).lines,
      [],
    );
  }
  // Enabled in .cec, a matching disabled copy: moved back.
  assert.deepEqual(
    place(
      diff({ x: reg("1.0.0") }, [obs("x", { path: ".disabled/x@1_0_0", disabled: true, version: "1.0.0" })]),
    ),
    ["update node.x: enable -> x (move)"],
  );
  // An out-of-date disabled copy is not enabled: a fresh copy is installed, the old one left (with a note).
  const stale = diff({ x: reg("2.0.0") }, [
    obs("x", { path: ".disabled/x@1_0_0", disabled: true, version: "1.0.0" }),
  ]);
  assert.deepEqual(place(stale), ["create node.x: not installed -> x"]);
  assert.match(
    stale.notes[0],
    /a disabled copy exists \(custom_nodes\/\.disabled\/x@1_0_0\) that does not match/,
  );
  // Disabled in .cec, another version enabled on disk: the pinned version installed disabled.
  assert.deepEqual(place(diff({ x: reg("2.0.0", false) }, [obs("x", { version: "1.0.0" })])), [
    "update node.x: installed version 1.0.0, .cec wants 2.0.0; disable -> .disabled/x",
  ]);
  // Single files: x.py <-> x.py.disabled.
  const file: NodeSpec = { source: "file", filename: "x.py", sha256: "a".repeat(64), enabled: false };
  assert.deepEqual(place(diff({ x: file }, [obs("x.py", { kind: "file", sha256: "a".repeat(64) })])), [
    "update node.x: disable -> x.py.disabled (move)",
  ]);
  assert.deepEqual(place(diff({ x: file }, [])), ["create node.x: not installed; disable -> x.py.disabled"]);
});
