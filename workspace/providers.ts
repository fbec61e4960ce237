/** Every resource kind the engine knows, in apply order. Loaded lazily: plan-free commands never pay for them. */
import type { Provider } from "../reconcile/types.ts";

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
