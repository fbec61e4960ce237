/**
 * `deno task bench`: every performance figure of the project in one run, on this machine. Figures, not
 * pass/fail: speed targets live here, never in timed unit tests. `deno task bench plan models` runs a subset.
 */
import { benchAction } from "./action.ts";
import { benchEnv } from "./env.ts";
import { benchModels } from "./models.ts";
import { benchNodes } from "./nodes.ts";
import { benchPackages } from "./packages.ts";
import { benchPlan } from "./plan.ts";
import { benchWorkflows } from "./workflows.ts";

const suites: [string, () => Promise<string[]>][] = [
  ["plan", benchPlan], // includes start-up figures (--help, no-op status)
  ["env", benchEnv],
  ["nodes", benchNodes],
  ["packages", benchPackages],
  ["workflows", benchWorkflows],
  ["models", benchModels],
  ["action", benchAction],
];

const only = Deno.args;
console.log(`ComfyDock benchmarks — ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}`);
for (const [name, fn] of suites) {
  if (only.length && !only.includes(name)) continue;
  const t0 = performance.now();
  console.log(`\n[${name}]`);
  for (const line of await fn()) console.log(`  ${line}`);
  console.log(`  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}
