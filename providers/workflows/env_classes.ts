/**
 * Which installed pack provides which node class, in one environment: what health recorded when ComfyUI
 * loaded the packs (exact: the classes each pack registered), and for packs health never loaded (not run
 * yet, failed to import, installed since) the textual scan of the pack's Python sources. Workflow analysis
 * asks this before any node index: a pack that is installed is the best answer for its classes.
 */
import { join } from "node:path";
import { packIdsOf, readHealth } from "../comfyui/health.ts";
import type { EnvPaths } from "../../reconcile/paths.ts";
import type { NodeSpec } from "../../reconcile/schema.ts";
import { packClassesFromSource } from "./core_from_checkout.ts";

export interface EnvironmentClasses {
  /** Node class -> pack (the `.cec` node id of its folder, else the folder name). */
  classes: Map<string, string>;
  /** Packs whose classes came from health, and from the source scan. */
  fromHealth: string[];
  scanned: string[];
}

/** The packs in custom_nodes ComfyUI would load (folders and `.py` files, not disabled ones). */
async function installedPacks(customNodes: string): Promise<string[]> {
  try {
    return (await Array.fromAsync(Deno.readDir(customNodes)))
      .filter((e) =>
        !e.name.startsWith(".") && e.name !== "__pycache__" && !e.name.endsWith(".disabled") &&
        (e.isDirectory || e.isSymlink || e.name.endsWith(".py"))
      )
      .map((e) => e.name).sort();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

export async function environmentClasses(
  paths: EnvPaths,
  nodes: Record<string, NodeSpec>,
): Promise<EnvironmentClasses> {
  const ids = packIdsOf(nodes);
  const packOf = (dir: string) => ids[dir] ?? ids[dir.replace(/\.py$/, "")] ?? dir.replace(/\.py$/, "");
  const out: EnvironmentClasses = { classes: new Map(), fromHealth: [], scanned: [] };
  const health = await readHealth(paths);
  const checked = health ? Date.parse(health.checked_at) : 0;
  const known = new Map<string, string[]>();
  for (const p of health?.packs ?? []) if (p.status === "loaded" && p.classes) known.set(p.dir, p.classes);
  for (const dir of await installedPacks(paths.customNodes)) {
    const full = join(paths.customNodes, dir);
    const st = await Deno.stat(full).catch(() => null);
    // Health's list holds while the folder is the one it loaded (a reinstall renames a new one in).
    const fromHealth = known.get(dir);
    if (fromHealth && st && (st.mtime?.getTime() ?? 0) <= checked) {
      for (const c of fromHealth) out.classes.set(c, packOf(dir));
      out.fromHealth.push(dir);
      continue;
    }
    for (const c of await packClassesFromSource(full)) out.classes.set(c, packOf(dir));
    out.scanned.push(dir);
  }
  return out;
}
