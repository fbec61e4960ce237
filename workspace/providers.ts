/** Every resource kind the engine knows, in apply order. Loaded lazily: plan-free commands never pay for them. */
import type { Provider } from "../reconcile/types.ts";
import type { WorkspacePaths } from "../reconcile/paths.ts";
import type { Settings } from "../lib/settings.ts";
import { exists } from "../lib/fsx.ts";
import type { RegistryClient } from "../providers/nodes/registry.ts";

export async function loadProviders(): Promise<Provider[]> {
  const [comfyui, nodes, packages, models, workflows] = await Promise.all([
    import("../providers/comfyui/provider.ts"),
    import("../providers/nodes/provider.ts"),
    import("../providers/packages/provider.ts"),
    import("../providers/models/provider.ts"),
    import("../providers/workflows/provider.ts"),
  ]);
  return [
    comfyui.comfyuiProvider,
    nodes.nodeProvider,
    packages.packageProvider,
    models.modelProvider,
    workflows.workflowProvider,
  ];
}

/**
 * A registry client with the workspace's API cache (when there is a workspace: `node search` works without
 * one), for every step that resolves nodes; `refresh` bypasses the cache. close() releases it.
 */
export async function openRegistry(
  ws: WorkspacePaths,
  settings: Settings,
  refresh = false,
): Promise<{ registry: RegistryClient; close: () => void }> {
  const [{ RegistryClient }, { ApiCache }] = await Promise.all([
    import("../providers/nodes/registry.ts"),
    import("../providers/nodes/api_cache.ts"),
  ]);
  const cache = await exists(ws.workspaceJson) ? new ApiCache(ws.apiCacheDb) : undefined;
  return { registry: RegistryClient.fromSettings(settings, { cache, refresh }), close: () => cache?.close() };
}
