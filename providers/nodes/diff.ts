/**
 * Desired nodes vs installed node folders -> `node.<id>` actions and notes. Pure: no I/O.
 *
 * Safety rules: a git checkout with uncommitted changes is never removed or reset (a note says why);
 * dev/local nodes' own folders are never touched (only the link in custom_nodes); disabled folders are
 * left alone; everything removed or replaced goes to the apply's trash first.
 */
import { join, resolve } from "node:path";
import type { NodeSpec } from "../../reconcile/schema.ts";
import type { Action, Json } from "../../reconcile/types.ts";
import { devPath, type ObservedNode, type ObservedNodes } from "./observe.ts";

export type NodeActionAfter = { id: string; dir: string; spec: Json };

export interface NodeDiff {
  actions: Action[];
  notes: string[];
}

function summary(o: ObservedNode): Json {
  return {
    path: o.path,
    kind: o.kind,
    id: o.id,
    version: o.version,
    commit: o.commit,
    linkTarget: o.linkTarget,
    changedFiles: o.changedFiles,
    dirty: o.dirty.length,
  };
}

function describe(spec: NodeSpec): string {
  switch (spec.source) {
    case "registry":
      return `registry version ${spec.version}`;
    case "git":
      return `git ${spec.repository} @ ${spec.commit.slice(0, 12)}${spec.ref ? ` (${spec.ref})` : ""}`;
    default:
      return `${spec.source} node linked from ${spec.path}`;
  }
}

function installed(o: ObservedNode): string {
  if (o.kind === "archive") return `version ${o.version ?? "unknown"}`;
  if (o.kind === "git") return `git commit ${o.commit?.slice(0, 12) ?? "unknown"}`;
  if (o.kind === "link") return `a link to ${o.linkTarget}`;
  return "a folder without install marker";
}

function files(n: number): string {
  return `${n} file${n === 1 ? "" : "s"}`;
}

/** Without --force a dirty checkout is never acted on: this note says why and what the user can do. */
export function dirtyNote(id: string, o: ObservedNode, what: string): string {
  return `node.${id}: custom_nodes/${o.path} has uncommitted changes (${
    files(o.dirty.length)
  }); not ${what}. ` +
    `Commit and push them (or move the folder away yourself) and plan again, or re-run with --force to move ` +
    `the edited checkout to the trash`;
}

/** With --force: what the reason of an action over a dirty checkout adds, and the detail line. */
function forcedReason(o: ObservedNode): string {
  return `${files(o.dirty.length)} with uncommitted changes (--force: the edited checkout goes to the trash)`;
}

function forcedDetail(o: ObservedNode): string {
  return `move custom_nodes/${o.path} with its uncommitted changes to the trash (restore it from there)`;
}

/** The folder a desired node lives in: its `directory`, else a folder whose markers name the id, else the id. */
export function folderFor(id: string, spec: NodeSpec, observed: ObservedNodes): string {
  if (spec.directory) return spec.directory;
  if (observed.nodes.some((o) => !o.disabled && o.dir === id)) return id;
  const byId = observed.nodes.find((o) => !o.disabled && o.id === id && o.kind !== "link");
  return byId?.dir ?? id;
}

export function diffNodes(
  desired: Record<string, NodeSpec>,
  envRoot: string,
  customNodes: string,
  observed: ObservedNodes,
): NodeDiff {
  const actions: Action[] = [];
  const notes: string[] = [];
  const claimed = new Set<string>();

  for (const [id, spec] of Object.entries(desired).sort(([a], [b]) => a.localeCompare(b))) {
    const dir = folderFor(id, spec, observed);
    claimed.add(dir);
    const o = observed.nodes.find((n) => !n.disabled && n.dir === dir);
    const after: NodeActionAfter = { id, dir, spec: spec as unknown as Json };
    const forced = o?.kind === "git" && o.dirty.length > 0 && observed.force;
    const act = (kind: Action["kind"], reason: string, details: string[] = []) =>
      actions.push({
        address: `node.${id}`,
        type: "node",
        kind,
        reason: forced ? `${reason}; ${forcedReason(o!)}` : reason,
        before: o ? summary(o) : null,
        after,
        ...(forced ? { details: [...details, forcedDetail(o!)] } : details.length ? { details } : {}),
      });
    /** A dirty checkout blocks the action unless --force (then `act` names the files and the trash). */
    const blockedByDirt = (what: string): boolean => {
      if (!o || o.kind !== "git" || !o.dirty.length || observed.force) return false;
      notes.push(dirtyNote(id, o, what));
      return true;
    };
    const disabledCopy = observed.nodes.find((n) => n.disabled && n.dir === dir);
    if (!o && disabledCopy) {
      notes.push(
        `node.${id}: a disabled copy exists (custom_nodes/${disabledCopy.path}); it is left alone and ` +
          `a fresh copy is installed`,
      );
    }

    if (spec.source !== "registry" && spec.source !== "git") {
      const target = devPath(envRoot, spec.path);
      if (observed.missingDevPaths.includes(id)) {
        notes.push(`node.${id}: the ${spec.source} node's path ${target} does not exist; nothing is linked`);
        continue;
      }
      // Code that already lives in custom_nodes is used in place: never linked, moved or replaced.
      if (resolve(target) === resolve(join(customNodes, dir))) continue;
      if (!o) act("create", "not installed", [`link custom_nodes/${dir} -> ${target}`]);
      else if (o.kind === "link" && o.linkTarget && resolve(o.linkTarget) === resolve(target)) continue;
      else if (o.kind === "link") act("update", `links to ${o.linkTarget} instead of ${target}`);
      else if (blockedByDirt("replaced by a link")) continue;
      else act("replace", `installed as ${installed(o)}; .cec wants a link to ${target}`);
      continue;
    }

    if (!o) {
      act("create", "not installed", [describe(spec)]);
      continue;
    }

    if (spec.source === "registry") {
      if (o.kind === "archive" && o.id !== null && o.id !== id && o.id !== spec.registry_id) {
        act("replace", `custom_nodes/${o.path} holds node '${o.id}', not '${id}'`);
        continue;
      }
      if (o.kind === "archive") {
        if (o.version !== spec.version) {
          act("update", `installed version ${o.version ?? "unknown"}, .cec wants ${spec.version}`, [
            `${o.version ?? "?"} -> ${spec.version}`,
          ]);
        } else if (spec.sha256 && o.sha256 && o.sha256 !== spec.sha256) {
          act("replace", "installed from a different archive than the one pinned (sha256 differs)");
        } else if (o.changedFiles.length) {
          const n = o.changedFiles.length;
          act("update", `${files(n)} changed by hand`, [
            ...o.changedFiles.slice(0, 5).map((f) => `restore ${f}`),
            ...(n > 5 ? [`... and ${n - 5} more`] : []),
            "the edited copies are moved to the trash first",
          ]);
        }
        continue;
      }
      if (blockedByDirt(`replaced by registry version ${spec.version}`)) continue;
      act("replace", `installed as ${installed(o)}; .cec wants ${describe(spec)}`);
      continue;
    }

    // git
    if (o.kind === "git") {
      if (o.commit === spec.commit) continue;
      if (blockedByDirt(`moved to commit ${spec.commit.slice(0, 12)}`)) continue;
      act(
        "update",
        `at commit ${o.commit?.slice(0, 12) ?? "unknown"}, .cec wants ${spec.commit.slice(0, 12)}`,
        [
          `${o.commit?.slice(0, 12) ?? "?"} -> ${spec.commit.slice(0, 12)}${
            spec.ref ? ` (${spec.ref})` : ""
          }`,
        ],
      );
      continue;
    }
    act("replace", `installed as ${installed(o)}; .cec wants ${describe(spec)}`);
  }

  for (const o of observed.nodes) {
    if (o.disabled) {
      notes.push(`custom_nodes/${o.path} is disabled; ComfyDock leaves disabled nodes alone`);
      continue;
    }
    if (claimed.has(o.dir)) continue;
    const dirty = o.kind === "git" && o.dirty.length > 0;
    if (dirty && !observed.force) {
      notes.push(dirtyNote(o.dir, o, "removed (it is not in .cec; run comfydock capture to keep it)"));
      continue;
    }
    // A stray second copy of a desired node is addressed by its folder, not by the id the node owns.
    const name = o.id && !(o.id in desired) ? o.id : o.dir;
    const reason = "not in .cec; run comfydock capture to keep it";
    actions.push({
      address: `node.${name}`,
      type: "node",
      kind: "delete",
      reason: dirty ? `${reason}; ${forcedReason(o)}` : reason,
      before: summary(o),
      after: null,
      details: [dirty ? forcedDetail(o) : `move custom_nodes/${o.path} to the trash`],
    });
  }
  return { actions, notes };
}
