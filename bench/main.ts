/**
 * `deno task bench`: every performance figure of the project in one run, on this machine. Figures, not
 * pass/fail: speed targets live here, never in timed unit tests. `deno task bench plan models` runs a subset.
 * The figures the README shows are written to bench/results.json (the suites run are replaced, the others
 * kept); `--update-readme` then regenerates the README's performance table from that file (bench/readme.ts).
 */
import { fileURLToPath } from "node:url";
import { benchAction } from "./action.ts";
import { benchAdopt } from "./adopt.ts";
import { benchEnv } from "./env.ts";
import { benchModels } from "./models.ts";
import { benchNodes } from "./nodes.ts";
import { benchPackages } from "./packages.ts";
import { benchPlan } from "./plan.ts";
import { benchWorkflows } from "./workflows.ts";
import { figures } from "./stats.ts";
import { Results, RESULTS_FILE, withPerformanceBlock } from "./readme.ts";

const suites: [string, () => Promise<string[]>][] = [
  ["plan", benchPlan], // includes start-up figures (--help, no-op status, TAB completion)
  ["env", benchEnv],
  ["nodes", benchNodes],
  ["packages", benchPackages],
  ["workflows", benchWorkflows],
  ["models", benchModels],
  ["action", benchAction],
  ["adopt", benchAdopt],
];

/** The 1-minute load average (Linux), so a busy machine's figures say so. */
async function loadAverage(): Promise<number | null> {
  const text = await Deno.readTextFile("/proc/loadavg").catch(() => null);
  return text ? Number(text.split(" ")[0]) : null;
}

const updateReadme = Deno.args.includes("--update-readme");
const only = Deno.args.filter((a) => !a.startsWith("--"));
const previous = await Deno.readTextFile(RESULTS_FILE).then((t) => Results.parse(JSON.parse(t)), () => null);
const results: Results = {
  format_version: 1,
  cores: navigator.hardwareConcurrency,
  deno: Deno.version.deno,
  suites: { ...previous?.suites },
};
console.log(`ComfyDock benchmarks — ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}`);
for (const [name, fn] of suites) {
  if (only.length && !only.includes(name)) continue;
  const t0 = performance.now();
  const load = await loadAverage();
  for (const k of Object.keys(figures)) delete figures[k];
  console.log(`\n[${name}]${load === null ? "" : ` (load average ${load.toFixed(1)})`}`);
  for (const line of await fn()) console.log(`  ${line}`);
  console.log(`  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  // Counts stay exact; measurements keep 4 significant digits.
  const rounded = Object.fromEntries(
    Object.entries(figures).map(([k, v]) => [k, Number.isInteger(v) ? v : Number(v.toPrecision(4))]),
  );
  results.suites[name] = {
    measured_at: new Date().toISOString().slice(0, 10),
    load_average: load,
    figures: rounded,
  };
}
await Deno.writeTextFile(RESULTS_FILE, JSON.stringify(results, null, 2) + "\n");
console.log(`\nWrote ${fileURLToPath(RESULTS_FILE)}`);
if (updateReadme) {
  const readme = fileURLToPath(new URL("../README.md", import.meta.url));
  await Deno.writeTextFile(readme, withPerformanceBlock(await Deno.readTextFile(readme), results));
  await new Deno.Command(Deno.execPath(), { args: ["fmt", readme] }).output();
  console.log(`Updated the performance table of ${readme}`);
}
