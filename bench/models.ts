/**
 * Model hashing and scanning, over files made in this run (2 x 1 GiB, deleted afterwards): full-hash
 * throughput against `openssl dgst -sha256` (and `b3sum` when installed) on the same files from the page
 * cache, the quick identity per file, and a rescan of 500 unchanged files.
 */
import { median, record } from "./stats.ts";
import { join } from "node:path";
import { hashFileFull, hashFiles, quickHash } from "../providers/models/hash.ts";
import { ModelIndex } from "../providers/models/index_db.ts";

const GiB = 1024 ** 3;

async function timed(fn: () => Promise<unknown>, runs: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    times.push((performance.now() - t) / 1000);
  }
  return median(times);
}

async function tool(cmd: string, args: string[]): Promise<boolean> {
  try {
    const r = await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output();
    return r.success;
  } catch {
    return false;
  }
}

/** A 1 GiB file of 16 repeats of a 64 MiB random block (hashing cost is the same as fully random data). */
async function makeFile(path: string): Promise<void> {
  const block = new Uint8Array(64 * 1024 * 1024);
  for (let i = 0; i < block.length; i += 65536) crypto.getRandomValues(block.subarray(i, i + 65536));
  using f = await Deno.open(path, { write: true, create: true, truncate: true });
  for (let i = 0; i < GiB / block.length; i++) {
    let w = 0;
    while (w < block.length) w += await f.write(block.subarray(w));
  }
}

export async function benchModels(): Promise<string[]> {
  const dir = await Deno.makeTempDir({ prefix: "comfydock-bench-models-" });
  const lines: string[] = [];
  const gbps = (bytes: number, s: number) => `${(bytes / s / 1e9).toFixed(2)} GB/s`;
  try {
    const files = [join(dir, "a.safetensors"), join(dir, "b.safetensors")];
    for (const f of files) await makeFile(f);
    for (const f of files) await hashFileFull(f, ["sha256"]); // page cache warm-up

    const openssl = await timed(() => tool("openssl", ["dgst", "-sha256", files[0]]), 3);
    const ours = await timed(() => hashFileFull(files[0], ["sha256"]), 3);
    record("models.sha256_one_gbps", GiB / ours / 1e9);
    record("models.sha256_one_vs_openssl", openssl / ours);
    lines.push(
      `models: sha256 1 GiB, one thread (overlapped reads): ${ours.toFixed(2)} s = ${gbps(GiB, ours)}; ` +
        `openssl dgst -sha256 ${openssl.toFixed(2)} s; ratio ${
          (openssl / ours).toFixed(2)
        }x openssl (goal >= 1)`,
    );
    const two = await timed(
      () => hashFiles(files.map((path) => ({ path, types: ["sha256"], size: GiB }))),
      3,
    );
    const opensslTwo = await timed(() => tool("openssl", ["dgst", "-sha256", ...files]), 3);
    record("models.sha256_two_gbps", (2 * GiB) / two / 1e9);
    record("models.sha256_two_vs_openssl", opensslTwo / two);
    lines.push(
      `models: sha256 2 x 1 GiB on 2 workers: ${two.toFixed(2)} s = ${gbps(2 * GiB, two)}; ` +
        `openssl (sequential) ${opensslTwo.toFixed(2)} s; ratio ${(opensslTwo / two).toFixed(2)}x`,
    );
    const blake = await timed(() => hashFileFull(files[0], ["blake3"]), 1);
    const hasB3 = await tool("b3sum", ["--version"]);
    if (hasB3) {
      const b3 = await timed(() => tool("b3sum", [files[0]]), 3);
      lines.push(
        `models: blake3 1 GiB (hash-wasm, only for blake3: specs) ${blake.toFixed(2)} s; b3sum ${
          b3.toFixed(2)
        } s; ` +
          `sha256 path vs b3sum ${(ours / b3).toFixed(2)}x slower (goal <= 1.3)`,
      );
    } else {
      lines.push(
        `models: blake3 1 GiB (hash-wasm, only for blake3: specs) ${blake.toFixed(2)} s = ${
          gbps(GiB, blake)
        }; ` +
          `b3sum not installed (no ratio)`,
      );
    }
    const quick = await timed(() => quickHash(files[0]), 7);
    record("models.quick_ms", quick * 1000);
    lines.push(
      `models: quick identity (size + xxh3 of 3 x 1 MiB) of a 1 GiB file: ${(quick * 1000).toFixed(1)} ms`,
    );

    const small = join(dir, "small", "models", "loras");
    await Deno.mkdir(small, { recursive: true });
    for (let i = 0; i < 500; i++) {
      await Deno.writeFile(join(small, `m${i}.safetensors`), crypto.getRandomValues(new Uint8Array(4096)));
    }
    using index = ModelIndex.open(join(dir, "index.db"));
    const first = await timed(() => index.scanDirectory(join(dir, "small")), 1);
    const rescan = await timed(() => index.scanDirectory(join(dir, "small")), 5);
    record("models.rescan_500_ms", rescan * 1000);
    lines.push(
      `models: scan of 500 new small files ${(first * 1000).toFixed(0)} ms; rescan of 500 unchanged ` +
        `${(rescan * 1000).toFixed(0)} ms (goal well under 1 s)`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  return lines;
}

if (import.meta.main) {
  for (const l of await benchModels()) console.log(l);
}
