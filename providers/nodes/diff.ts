/**
 * Desired nodes vs installed nodes -> `node.<id>` actions and notes. Pure: no I/O.
 *
 * Safety rules:
 * - a git checkout with uncommitted changes (edited or untracked files) is drift like a registry node's hand
 *   edits, but it is never reset, moved or removed without --force: the plan shows the action --force would
 *   take, and apply leaves the checkout as it is, saying how to keep the changes (see `keepHint`);
 * - dev/local nodes' own folders are never touched (only the link in custom_nodes);
 * - disabled copies `.cec` does not know are left alone (a note; `capture` records them);
 * - everything removed or replaced goes to the apply's trash first.
 */
import { relative, resolve } from "node:path";
import { isWithin } from "../../lib/safe_path.ts";
import type { DesiredState } from "../../reconcile/desired.ts";
import { type NodeSpec, specEntryName } from "../../reconcile/schema.ts";
import type { Action, Json } from "../../reconcile/types.ts";
import { groupMismatch } from "./requirements.ts";
import { devPath, disabledPath, type ObservedNode, type ObservedNodes } from "./observe.ts";

export type NodeActionAfter = {
  id: string;
  /** The node's entry name under custom_nodes (folder, or file for single-file nodes). */
  dir: string;
  /** Where it goes, relative to custom_nodes: `dir`, or its disabled place (`.disabled/<dir>`, `<file>.disabled`). */
  path: string;
  spec: Json;
  /** Only moved between its enabled and disabled place: the content already matches the pin. */
  move?: boolean;
};

export interface NodeDiff {
  actions: Action[];
  notes: string[];
}

function summary(o: ObservedNode): Json {
  return {
    path: o.path,
    kind: o.kind,
    disabled: o.disabled,
    id: o.id,
    version: o.version,
    commit: o.commit,
    sha256: o.sha256,
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
    case "file":
      return `single file ${spec.filename} (sha256 ${spec.sha256.slice(0, 12)}) from ${
        spec.url ?? `.cec/nodes/${spec.filename}`
      }`;
    default:
      return `${spec.source} node linked from ${spec.path}`;
  }
}

function installed(o: ObservedNode): string {
  if (o.kind === "archive") return `version ${o.version ?? "unknown"}`;
  if (o.kind === "git") return `git commit ${o.commit?.slice(0, 12) ?? "unknown"}`;
  if (o.kind === "link") return `a link to ${o.linkTarget}`;
  if (o.kind === "file") return "a single file";
  return "a folder without install marker";
}

function files(n: number): string {
  return `${n} file${n === 1 ? "" : "s"}`;
}

const dirty = (o: ObservedNode | null): o is ObservedNode => o?.kind === "git" && o.dirty.length > 0;

/** `git status --porcelain` lines as plan details: what was changed by hand. */
function dirtLines(o: ObservedNode): string[] {
  const lines = o.dirty.slice(0, 5).map((l) =>
    /^\?\? /.test(l) ? `untracked: ${l.slice(3)}` : /^[ MTADRCU!]{2} /.test(l) ? `changed: ${l.slice(3)}` : l
  );
  return o.dirty.length > 5 ? [...lines, `... and ${o.dirty.length - 5} more`] : lines;
}

/**
 * What apply without --force says about a git checkout with uncommitted changes it leaves alone: how to keep
 * the changes for good, and how to drop them. `id` is null for a checkout `.cec` does not know.
 */
export function keepHint(id: string | null, path: string): string {
  const where = `ComfyUI/custom_nodes/${path}`;
  const keep = id === null
    ? `to keep it, commit the changes and run 'comfydock capture' (it pins the commit: push it where ` +
      `others can fetch it), or make it a dev node: 'comfydock node add ${where} --dev'`
    : `to keep the changes, make it a dev node ('comfydock node add ${where} --dev'), or commit them, ` +
      `push them to a fork and pin that ('comfydock node update ${id} --ref REF --repository FORK_URL')`;
  return `${keep}; to drop them, run 'comfydock apply --force' (the edited checkout goes to the trash)`;
}

/** What an action over a dirty checkout adds to its reason and details, with and without --force. */
function dirtNotes(
  o: ObservedNode,
  id: string | null,
  force: boolean,
): { reason: string; details: string[] } {
  return force
    ? {
      reason: " (--force: the edited checkout goes to the trash)",
      details: [
        ...dirtLines(o),
        `move custom_nodes/${o.path} with its uncommitted changes to the trash (restore it from there)`,
      ],
    }
    : {
      reason: "",
      details: [...dirtLines(o), `apply leaves custom_nodes/${o.path} as it is: ${keepHint(id, o.path)}`],
    };
}

/** The folder (or file) a desired node lives in: `filename`/`directory`, else a copy named by id or markers. */
export function folderFor(id: string, spec: NodeSpec, observed: ObservedNodes): string {
  if (spec.source === "file" || spec.directory) return specEntryName(id, spec);
  if (observed.nodes.some((o) => o.dir === id)) return id;
  const byId = observed.nodes.filter((o) => o.id === id && o.kind !== "link" && o.kind !== "file");
  return (byId.find((o) => !o.disabled) ?? byId[0])?.dir ?? id;
}

interface Change {
  kind: Action["kind"];
  reason: string;
  details: string[];
}

/** How an installed copy differs from its pin (null: it matches). Placement (enabled or not) is apart. */
function contentChange(spec: NodeSpec, id: string, target: string | null, o: ObservedNode): Change | null {
  const replace = (): Change => ({
    kind: "replace",
    reason: `installed as ${installed(o)}; .cec wants ${describe(spec)}`,
    details: [],
  });
  switch (spec.source) {
    case "registry": {
      if (o.kind !== "archive") return replace();
      if (o.id !== null && o.id !== id && o.id !== spec.registry_id) {
        return {
          kind: "replace",
          reason: `custom_nodes/${o.path} holds node '${o.id}', not '${id}'`,
          details: [],
        };
      }
      if (o.version !== spec.version) {
        return {
          kind: "update",
          reason: `installed version ${o.version ?? "unknown"}, .cec wants ${spec.version}`,
          details: [`${o.version ?? "?"} -> ${spec.version}`],
        };
      }
      if (spec.sha256 && o.sha256 && o.sha256 !== spec.sha256) {
        return {
          kind: "replace",
          reason: "installed from a different archive than the one pinned (sha256 differs)",
          details: [],
        };
      }
      const n = o.changedFiles.length;
      if (!n) return null;
      return {
        kind: "update",
        reason: `${files(n)} changed by hand`,
        details: [
          ...o.changedFiles.slice(0, 5).map((f) => `restore ${f}`),
          ...(n > 5 ? [`... and ${n - 5} more`] : []),
          "the edited copies are moved to the trash first",
        ],
      };
    }
    case "git": {
      if (o.kind !== "git") return replace();
      const moved = o.commit !== spec.commit;
      if (!moved && !o.dirty.length) return null;
      const from = o.commit?.slice(0, 12) ?? "unknown";
      const to = spec.commit.slice(0, 12);
      return {
        kind: "update",
        reason: [
          moved ? `at commit ${from}, .cec wants ${to}` : null,
          o.dirty.length ? `${files(o.dirty.length)} changed by hand` : null,
        ].filter(Boolean).join("; "),
        details: moved ? [`${from} -> ${to}${spec.ref ? ` (${spec.ref})` : ""}`] : [],
      };
    }
    case "file": {
      if (o.kind !== "file") return replace();
      if (o.sha256 === spec.sha256) return null;
      return {
        kind: "update",
        reason: `content differs from the pin (sha256 ${o.sha256?.slice(0, 12)} on disk, .cec pins ${
          spec.sha256.slice(0, 12)
        }): changed by hand`,
        details: [`restore ${spec.filename}; the file on disk goes to the trash first`],
      };
    }
    default: {
      if (o.kind === "link" && o.linkTarget && resolve(o.linkTarget) === resolve(target!)) return null;
      if (o.kind === "link") {
        return { kind: "update", reason: `links to ${o.linkTarget} instead of ${target}`, details: [] };
      }
      return {
        kind: "replace",
        reason: `installed as ${installed(o)}; .cec wants a link to ${target}`,
        details: [],
      };
    }
  }
}

/** The node diff of a whole desired state (the provider's diff, `node list`). */
export function diffDesiredNodes(desired: DesiredState, observed: ObservedNodes): NodeDiff {
  const { nodes, paths, pyproject } = desired;
  return diffNodes(nodes, paths.root, paths.customNodes, observed, pyproject["dependency-groups"]);
}

/** Why a node is on disk but not in `.cec`, as far as its markers tell (the diff cannot know intent). */
function unmanagedReason(o: ObservedNode): string {
  const capture = "run 'comfydock capture' to keep it";
  if (o.installer === "comfydock") return "removed from .cec";
  if (o.installer === "manager") return `not in .cec (installed by ComfyUI-Manager); ${capture}`;
  if (o.kind === "link") return `not in .cec; ${capture}`;
  return `not in .cec (installed by hand); ${capture}`;
}

export function diffNodes(
  desired: Record<string, NodeSpec>,
  envRoot: string,
  customNodes: string,
  observed: ObservedNodes,
  groups: Record<string, readonly unknown[]> = {},
): NodeDiff {
  const actions: Action[] = [];
  const notes: string[] = [];
  const claimed = new Set<string>();
  const force = observed.force;

  for (const [id, spec] of Object.entries(desired).sort(([a], [b]) => a.localeCompare(b))) {
    const dir = folderFor(id, spec, observed);
    claimed.add(dir);
    const wantEnabled = spec.enabled !== false;
    const target = spec.source === "local" || spec.source === "dev" ? devPath(envRoot, spec.path) : null;

    if (target !== null) {
      if (observed.missingDevPaths.includes(id)) {
        notes.push(`node.${id}: the ${spec.source} node's path ${target} does not exist; nothing is linked`);
        continue;
      }
      // Code that already lives in custom_nodes is used in place: never linked, moved or replaced.
      if (isWithin(customNodes, target)) {
        const rel = relative(customNodes, target).split("\\").join("/");
        const skipped = rel.startsWith(".disabled/") || rel.endsWith(".disabled");
        if (skipped === wantEnabled) {
          notes.push(
            `node.${id}: its code is used in place at custom_nodes/${rel}, which ComfyUI ${
              skipped ? "skips" : "loads"
            }, but .cec says enabled = ${wantEnabled}; ComfyDock does not move code it does not own: move ` +
              `the folder yourself and set its path`,
          );
        }
        continue;
      }
    }

    const copies = observed.nodes.filter((n) => n.dir === dir);
    const enabledCopy = copies.find((n) => !n.disabled) ?? null;
    const disabledCopies = copies.filter((n) => n.disabled);
    const matching = disabledCopies.find((n) => contentChange(spec, id, target, n) === null) ?? null;
    // Enabled: the enabled copy, else a disabled one that matches the pin (an out-of-date disabled copy is
    // left alone and a fresh one installed). Disabled: an enabled copy must go (ComfyUI would load it).
    const o = wantEnabled
      ? enabledCopy ?? matching
      : enabledCopy ?? matching ?? disabledCopies.find((n) => n.path === disabledPath(dir, false)) ??
        disabledCopies[0] ?? null;
    const path = wantEnabled ? dir : o?.disabled ? o.path : disabledPath(dir, spec.source === "file");
    const change: Change | null = o
      ? contentChange(spec, id, target, o)
      : { kind: "create", reason: "not installed", details: [describe(spec)] };
    const misplaced = o !== null && o.path !== path;
    if (spec.source === "git" && o?.kind === "git" && o.commit === spec.commit && !o.dirty.length) {
      const mismatch = o.requirements && groupMismatch(id, spec.commit, groups[id], o.requirements);
      if (mismatch) notes.push(`node.${id}: ${mismatch}`);
    }
    if (!o && wantEnabled && disabledCopies.length) {
      notes.push(
        `node.${id}: a disabled copy exists (custom_nodes/${disabledCopies[0].path}) that does not match ` +
          `the pin; it is left alone and a fresh copy is installed`,
      );
    }
    if (!change && !misplaced) continue;

    const toggle = wantEnabled ? "enable" : "disable";
    const move = `move custom_nodes/${o?.path} to custom_nodes/${path}`;
    const base: Change = change ?? { kind: "update", reason: toggle, details: [move] };
    const dirt = dirty(o) ? dirtNotes(o, id, force) : null;
    const after: NodeActionAfter = {
      id,
      dir,
      path,
      spec: spec as unknown as Json,
      ...(change ? {} : { move: true }),
    };
    actions.push({
      address: `node.${id}`,
      type: "node",
      kind: base.kind,
      reason: [
        base.reason,
        change && (misplaced || (!o && !wantEnabled)) ? toggle : null,
        dirt && base.kind === "replace" ? `${files(o!.dirty.length)} with uncommitted changes` : null,
      ].filter(Boolean).join("; ") + (dirt?.reason ?? ""),
      before: o ? summary(o) : null,
      after,
      ...(base.details.length || dirt
        ? {
          details: [
            ...base.details,
            ...(change && path !== dir ? [`installed disabled at custom_nodes/${path}`] : []),
            ...(dirt?.details ?? []),
          ],
        }
        : {}),
    });
  }

  for (const o of observed.nodes) {
    if (claimed.has(o.dir)) continue;
    if (o.disabled) {
      notes.push(
        `custom_nodes/${o.path} is disabled and not in .cec; it is left alone ('comfydock capture' records ` +
          `it as disabled)`,
      );
      continue;
    }
    // A stray second copy of a desired node is addressed by its folder, not by the id the node owns.
    const name = o.id && !(o.id in desired) ? o.id : o.dir;
    const dirt = dirty(o) ? dirtNotes(o, null, force) : null;
    actions.push({
      address: `node.${name}`,
      type: "node",
      kind: "delete",
      reason: unmanagedReason(o) +
        (dirt ? `; ${files(o.dirty.length)} with uncommitted changes${dirt.reason}` : ""),
      before: summary(o),
      after: null,
      details: dirt ? dirt.details : [`move custom_nodes/${o.path} to the trash`],
    });
  }
  return { actions, notes };
}
