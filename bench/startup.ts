/** Start-up cost of the CLI (CI and the Action call it many times), against Deno's own start-up. */
import { fileURLToPath } from "node:url";
import { record } from "./stats.ts";

const MAIN = fileURLToPath(new URL("../cmd/main.ts", import.meta.url));

async function timeRuns(args: string[], runs: number, env: Record<string, string> = {}): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = await new Deno.Command(Deno.execPath(), { args, env, stdout: "null", stderr: "null" }).output();
    times.push(performance.now() - t0);
    if (r.code !== 0 && r.code !== 2) throw new Error(`deno ${args.join(" ")} exited ${r.code}`);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

export async function benchStartup(statusEnv?: Record<string, string>): Promise<string[]> {
  const dir = await Deno.makeTempDir();
  const hello = `${dir}/hello.ts`;
  await Deno.writeTextFile(hello, "console.log('hi');\n");
  const runs = 9;
  const base = await timeRuns(["run", "-A", "--quiet", hello], runs);
  const help = await timeRuns(["run", "-A", "--quiet", MAIN, "--help"], runs);
  record("startup.deno_ms", base);
  record("startup.help_ms", help);
  const lines = [
    `startup: deno hello world ${base.toFixed(0)} ms (median of ${runs})`,
    `startup: comfydock --help ${help.toFixed(0)} ms (+${(help - base).toFixed(0)} ms over deno)`,
  ];
  if (statusEnv) {
    // What a shell waits for on TAB: the values of --target, read from the environment's .cec.
    const complete = await timeRuns(
      ["run", "-A", "--quiet", MAIN, "__complete", "2", "plan", "--target", ""],
      runs,
      statusEnv,
    );
    record("startup.complete_ms", complete);
    lines.push(`startup: comfydock __complete (TAB after 'plan --target') ${complete.toFixed(0)} ms`);
    const status = await timeRuns(["run", "-A", "--quiet", MAIN, "status"], runs, statusEnv);
    lines.push(
      `startup: comfydock status (no-op env) ${status.toFixed(0)} ms (+${
        (status - base).toFixed(0)
      } ms over deno)`,
    );
  }
  await Deno.remove(dir, { recursive: true });
  return lines;
}
