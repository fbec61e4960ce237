/**
 * `capture`: the backward direction (like Terraform's refresh-only/import). What the user changed on disk
 * outside ComfyDock — workflows saved in the UI, node packs installed by hand — is written into `.cec` in one
 * validated commit, so it can be reviewed and shared instead of being "healed" away by the next apply.
 */
import type { EnvPaths } from "../workspace/paths.ts";
import { changeDesired } from "./change.ts";
import { type DesiredState, readDesired } from "./desired.ts";
import type { TomlEdit } from "./pyproject_edit.ts";

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
  paths: EnvPaths,
  desired: DesiredState,
  nodeEdits: TomlEdit[],
): Promise<{ edit: TomlEdit; added: string[] } | null> {
  const { packageProvider } = await import("../providers/packages/provider.ts");
  const { captureUserPackages, USER_GROUP } = await import("../providers/packages/diff.ts");
  const { requirementName } = await import("../providers/packages/resolve.ts");
  const observed = await packageProvider.observe(desired, { paths, readOnly: true });
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

export async function captureEnvironment(paths: EnvPaths): Promise<CaptureSummary> {
  const desired = await readDesired(paths);
  const { captureWorkflows } = await import("../providers/workflows/track.ts");
  const { recordSynced } = await import("../providers/workflows/files.ts");
  const { captureNodes } = await import("../providers/nodes/capture.ts");
  const wf = await captureWorkflows(paths, desired);
  const nodes = await captureNodes(paths, desired);
  const packages = await capturePackages(paths, desired, nodes.edits);
  const edits: TomlEdit[] = [...wf.edits, ...nodes.edits, ...(packages ? [packages.edit] : [])];
  const summary: CaptureSummary = {
    workflows: wf.names,
    nodes: nodes.names,
    packages: packages?.added ?? [],
    skipped: [
      ...wf.skipped.map((e) =>
        `workflow ${e.name}: ${e.state} (resolve with 'comfydock workflow sync --strategy ours|theirs')`
      ),
      ...nodes.skipped,
    ],
    commit: null,
  };
  if (edits.length === 0 && wf.files.length === 0) return summary;
  const what = [
    ...wf.names.map((n) => `workflow ${n}`),
    ...nodes.names.map((n) => `node ${n}`),
    ...(packages?.added ?? []).map((p) => `package ${p}`),
  ].join(", ");
  const result = await changeDesired(paths, {
    edits,
    files: wf.files,
    message: `capture: ${what}`,
    apply: false,
  });
  await recordSynced(paths, wf.synced);
  summary.commit = result.commit;
  return summary;
}
