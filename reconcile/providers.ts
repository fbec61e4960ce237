/** Every resource kind the engine knows, in apply order. Loaded lazily: plan-free commands never pay for them. */
import type { Provider } from "./types.ts";

export async function loadProviders(): Promise<Provider[]> {
  const kinds: Provider[] = [];
  return await Promise.resolve(kinds);
}
