/**
 * `capture`: the backward direction (like Terraform's refresh-only/import). What the user changed on disk
 * outside ComfyDock — workflows saved in the UI, node packs installed by hand — is written into `.cec` in one
 * validated commit, so it can be reviewed and shared instead of being "healed" away by the next apply.
 */
import type { DesiredState } from "../reconcile/desired.ts";
import type { TomlEdit } from "../reconcile/pyproject_edit.ts";
import type { Session } from "./session.ts";
import { withTask } from "../lib/progress.ts";

export interface CaptureSummary {
  workflows: string[];
  nodes: string[];
  packages: string[];
  skipped: string[];
  commit: string | null;
}

/**
 * Packages installed into the venv by hand become pins in the `user` dependency group, except those that a
 * node captured in the same run asks for (they belong to that node's group).
 */
async function capturePackages(
  session: Session,
  desired: DesiredState,
  nodeEdits: TomlEdit[],
): Promise<{ edit: TomlEdit; added: string[] } | null> {
  const { packageProvider } = await import("../providers/packages/provider.ts");
  const { captureUserPackages, USER_GROUP } = await import("../providers/packages/diff.ts");
  const { requirementName } = await import("../providers/packages/resolve.ts");
  const observed = await packageProvider.observe(desired, {
    paths: session.paths,
    settings: session.app.settings,
    readOnly: true,
  });
  const existing = (desired.pyproject["dependency-groups"][USER_GROUP] ?? []).filter((r) =>
    typeof r === "string"
  );
  const edit = captureUserPackages(existing as string[], observed);
  if (!edit) return null;
  const fromNodes = new Set(
    nodeEdits.filter((e) => e.path[0] === "dependency-groups").flatMap((e) =>
      (e.value as string[]).map(requirementName)
    ),
  );
  const kept = edit.value.filter((r) => existing.includes(r) || !fromNodes.has(requirementName(r)));
  const added = kept.filter((r) => !existing.includes(r));
  return added.length ? { edit: { path: edit.path, value: kept }, added } : null;
}

/** Captures into `.cec` (one commit, not applied: the disk already is what it records). */
export async function captureEnvironment(session: Session): Promise<CaptureSummary> {
  const paths = session.paths;
  const { captureWorkflows } = await import("../providers/workflows/track.ts");
  const { recordSynced } = await import("../providers/workflows/files.ts");
  const { captureNodes } = await import("../providers/nodes/capture.ts");
  const { envResolver } = await import("../providers/workflows/files.ts");
  const { resolver } = await envResolver(paths, undefined, session.app.settings.nodeMapFile ?? undefined);
  const summary: CaptureSummary = { workflows: [], nodes: [], packages: [], skipped: [], commit: null };
  let synced: Record<string, string | null> = {};
  const result = await session.change({
    message: () =>
      "capture: " + [
        ...summary.workflows.map((n) => `workflow ${n}`),
        ...summary.nodes.map((n) => `node ${n}`),
        ...summary.packages.map((p) => `package ${p}`),
      ].join(", "),
    apply: false,
    edit: async (desired) => {
      const p = session.app.progress;
      const wf = await withTask(
        p,
        "looking for workflows saved in ComfyUI",
        () => captureWorkflows(paths, desired, { resolver }),
      );
      const nodes = await withTask(
        p,
        "looking for custom nodes installed by hand",
        () => captureNodes(paths, desired),
      );
      const packages = await withTask(
        p,
        "looking for Python packages installed by hand",
        () => capturePackages(session, desired, nodes.edits),
      );
      summary.workflows = wf.names;
      summary.nodes = nodes.names;
      summary.packages = packages?.added ?? [];
      summary.skipped = [
        ...wf.skipped.map((e) =>
          `workflow ${e.name}: ${e.state} (resolve with 'comfydock workflow sync --strategy ours|theirs')`
        ),
        ...nodes.skipped,
      ];
      synced = wf.synced;
      return {
        edits: [...wf.edits, ...nodes.edits, ...(packages ? [packages.edit] : [])],
        files: [...wf.files, ...nodes.files],
      };
    },
  });
  if (result.commit) await recordSynced(paths, synced);
  summary.commit = result.commit;
  return summary;
}
