/** Every resource kind the engine knows, in apply order. Loaded lazily: plan-free commands never pay for them. */
import type { Provider } from "./types.ts";

export async function loadProviders(): Promise<Provider[]> {
  const [packages, workflows] = await Promise.all([
    import("../providers/packages/provider.ts"),
    import("../providers/workflows/provider.ts"),
  ]);
  return [packages.packageProvider, workflows.workflowProvider];
}
