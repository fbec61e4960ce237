/**
 * Runs every test file in its own `deno test` process, a few at a time. `deno test --parallel` runs modules
 * in one process, where a test that sets an environment variable (COMFYDOCK_UV, PATH, COMFYDOCK_FAULT, ...)
 * leaks it into tests running beside it; separate processes make each file's environment its own.
 *
 * Before the files start: uv is found once for all of them (a missing uv stops the run, with how to install
 * it), and the real data the selected files read is fetched into its cache (fixtures/real_data.ts). The
 * summary counts passed, failed and ignored tests and names every ignored one with its reason.
 *
 * Usage: deno run -A tests/run.ts [FILTER...]   (FILTER: substrings of test file paths)
 */
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { renderError } from "../cmd/main.ts";
import { warmRealData } from "../fixtures/real_data.ts";
import { localUv } from "../fixtures/tools.ts";

export interface FileCounts {
  passed: number;
  failed: number;
  /** Names of the ignored tests (testNeeds puts the reason in the name). */
  ignored: string[];
}

/** The counts in one `deno test` run's output (NO_COLOR); a run that died before its summary is a failure. */
export function parseTestOutput(output: string, code: number): FileCounts {
  const m = /(\d+) passed.*?\| (\d+) failed/.exec(output);
  return {
    passed: m ? Number(m[1]) : 0,
    failed: m ? Number(m[2]) : (code === 0 ? 0 : 1),
    ignored: [...output.matchAll(/^(.+) \.\.\. ignored \(/gm)].map((x) => x[1].trim()),
  };
}

export interface FileResult extends FileCounts {
  file: string;
  code: number;
  seconds: number;
  output: string;
}

/**
 * One test file in its own `deno test` process, with its own TMPDIR, removed when the file ends, so a run
 * leaves nothing in the system's temp folder: not the tests' folders, nor what the tools they run put
 * there (uv keeps a lock file per environment in TMPDIR: about a hundred per run).
 */
export async function runTestFile(root: string, file: string, uv: string): Promise<FileResult> {
  const t0 = performance.now();
  const tmp = await Deno.makeTempDir({ prefix: "comfydock-tests-" });
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--no-check", file],
    cwd: root,
    // The uv found once for the run: each file would otherwise look for it again (a pyenv shim costs).
    env: { NO_COLOR: "1", COMFYDOCK_UV: uv, TMPDIR: tmp },
    stdout: "piped",
    stderr: "piped",
  }).output().finally(() =>
    Deno.remove(tmp, { recursive: true }).catch((e) => console.error(`warning: ${tmp} was not removed: ${e}`))
  );
  const dec = new TextDecoder();
  const output = dec.decode(out.stdout) + dec.decode(out.stderr);
  return {
    file: relative(root, file),
    code: out.code,
    ...parseTestOutput(output, out.code),
    seconds: (performance.now() - t0) / 1000,
    output,
  };
}

async function findTests(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await findTests(p));
    else if (e.isFile && e.name.endsWith("_test.ts")) out.push(p);
  }
  return out.sort();
}

async function main(filters: string[]): Promise<number> {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const jobs = Number(Deno.env.get("COMFYDOCK_TEST_JOBS") ?? Math.max(2, navigator.hardwareConcurrency + 1));

  let uv: string | null;
  try {
    uv = await localUv();
  } catch (e) {
    return renderError(e);
  }
  if (!uv) {
    console.error("error: uv was not found (COMFYDOCK_UV is unset and no 'uv' on PATH)");
    console.error(
      "hint: install it as the README's set-up says ('pip install uv'), then run the tests again",
    );
    return 1;
  }
  const files = (await findTests(join(root, "tests"))).filter((f) =>
    filters.length === 0 || filters.some((x) => f.includes(x))
  );
  const readers = files.filter((f) => Deno.readTextFileSync(f).includes("fixtures/real_data.ts"));
  if (readers.length > 0) {
    const t0 = performance.now();
    try {
      const lines = await warmRealData();
      console.log(`real data (${((performance.now() - t0) / 1000).toFixed(1)}s):\n  ${lines.join("\n  ")}`);
    } catch (e) {
      console.error(`${readers.length} test file(s) read real data that is not available:`);
      return renderError(e);
    }
  }

  const queue = [...files];
  const results: FileResult[] = [];
  await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, async () => {
    while (queue.length > 0) {
      const r = await runTestFile(root, queue.shift()!, uv);
      results.push(r);
      const status = r.code === 0 ? "ok  " : "FAIL";
      const ignored = r.ignored.length ? `, ${r.ignored.length} ignored` : "";
      console.log(
        `${status} ${r.file} (${r.passed} passed, ${r.failed} failed${ignored}, ${r.seconds.toFixed(1)}s)`,
      );
      if (r.code !== 0) console.log(r.output.split("\n").map((l) => `    ${l}`).join("\n"));
    }
  }));

  const passed = results.reduce((n, r) => n + r.passed, 0);
  const failed = results.reduce((n, r) => n + r.failed, 0);
  const ignored = results.flatMap((r) => r.ignored.map((name) => `  ignored: ${r.file}: ${name}`)).sort();
  const slowest = [...results].sort((a, b) => b.seconds - a.seconds).slice(0, 3)
    .map((r) => `${r.file} ${r.seconds.toFixed(1)}s`).join(", ");
  console.log(`\n${files.length} test files; slowest: ${slowest}`);
  if (ignored.length > 0) console.log(ignored.join("\n"));
  console.log(`${passed} passed, ${failed} failed, ${ignored.length} ignored`);
  return failed > 0 || results.some((r) => r.code !== 0) || files.length === 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
