/**
 * Runs every test file in its own `deno test` process, a few at a time. `deno test --parallel` runs modules
 * in one process, where a test that sets an environment variable (COMFYDOCK_UV, PATH, COMFYDOCK_FAULT, ...)
 * leaks it into tests running beside it; separate processes make each file's environment its own.
 *
 * Usage: deno run -A tests/run.ts [FILTER...]   (FILTER: substrings of test file paths)
 */
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const filters = Deno.args;
const jobs = Number(Deno.env.get("COMFYDOCK_TEST_JOBS") ?? Math.max(2, navigator.hardwareConcurrency + 1));

async function findTests(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await findTests(p));
    else if (e.isFile && e.name.endsWith("_test.ts")) out.push(p);
  }
  return out.sort();
}

interface FileResult {
  file: string;
  code: number;
  passed: number;
  failed: number;
  seconds: number;
  output: string;
}

async function runFile(file: string): Promise<FileResult> {
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--no-check", file],
    cwd: root,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  const output = dec.decode(out.stdout) + dec.decode(out.stderr);
  const m = /(\d+) passed.*?\| (\d+) failed/.exec(output);
  return {
    file: relative(root, file),
    code: out.code,
    passed: m ? Number(m[1]) : 0,
    failed: m ? Number(m[2]) : (out.code === 0 ? 0 : 1),
    seconds: (performance.now() - t0) / 1000,
    output,
  };
}

const files = (await findTests(join(root, "tests"))).filter((f) =>
  filters.length === 0 || filters.some((x) => f.includes(x))
);
const queue = [...files];
const results: FileResult[] = [];
await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, async () => {
  while (queue.length > 0) {
    const r = await runFile(queue.shift()!);
    results.push(r);
    const status = r.code === 0 ? "ok  " : "FAIL";
    console.log(`${status} ${r.file} (${r.passed} passed, ${r.failed} failed, ${r.seconds.toFixed(1)}s)`);
    if (r.code !== 0) console.log(r.output.split("\n").map((l) => `    ${l}`).join("\n"));
  }
}));

const passed = results.reduce((n, r) => n + r.passed, 0);
const failed = results.reduce((n, r) => n + r.failed, 0);
const slowest = [...results].sort((a, b) => b.seconds - a.seconds).slice(0, 3)
  .map((r) => `${r.file} ${r.seconds.toFixed(1)}s`).join(", ");
console.log(`\n${files.length} test files; slowest: ${slowest}`);
console.log(`${passed} passed, ${failed} failed`);
if (failed > 0 || results.some((r) => r.code !== 0) || files.length === 0) Deno.exit(1);
