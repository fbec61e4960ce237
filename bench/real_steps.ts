/** What the opt-in real-world benches share: a CLI environment on a fresh workspace, and timed steps. */
import { cli, type CliResult } from "../fixtures/cli.ts";

/** The variables a CLI run needs on workspace `home` (never a Python download; the caller's uv). */
export function realCliEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    COMFYDOCK_HOME: home,
    UV_PYTHON_DOWNLOADS: "never",
    PATH: Deno.env.get("PATH") ?? "",
    ...(Deno.env.get("COMFYDOCK_UV") ? { COMFYDOCK_UV: Deno.env.get("COMFYDOCK_UV")! } : {}),
    ...extra,
  };
}

/** Runs CLI steps, printing and recording each one's time; an unexpected exit code stops the bench. */
export function timedSteps(env: Record<string, string>) {
  const rows: [string, number][] = [];
  const step = async (what: string, args: string[], expect: number[] = [0]): Promise<CliResult> => {
    const t0 = performance.now();
    const r = await cli(args, { env });
    const s = (performance.now() - t0) / 1000;
    rows.push([what, s]);
    console.log(`${what}: ${s.toFixed(1)} s (exit ${r.code})`);
    if (!expect.includes(r.code)) {
      throw new Error(`${args.join(" ")} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
    }
    return r;
  };
  const table = () => {
    console.log("\n| step | seconds |\n| --- | --- |");
    for (const [what, s] of rows) console.log(`| ${what} | ${s.toFixed(1)} |`);
  };
  return { step, table };
}
