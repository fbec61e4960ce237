/**
 * Hashing of model files, the part that runs on any thread (the worker pool in hash.ts calls it too).
 *
 * Chosen from measurements on these machines (2 GiB in page cache, DESIGN §11):
 * - full hash: node:crypto sha256 with the next read overlapped with hashing (~1.29 GB/s). sha256 is what
 *   Hugging Face (LFS oid) and Civitai (by-hash API) publish, so it also finds sources for local files.
 * - blake3 (the seed's `blake3:` hashes): hash-wasm, 400-470 MB/s, only computed when a spec asks for it.
 * - quick identity for scanning: size + xxh3 of the first, middle and last MiB (~20 ms for 2 GiB).
 * Every hash a file needs is computed from one read of it.
 */
import { createHash } from "node:crypto";
import { createBLAKE3, createXXHash3 } from "hash-wasm";

export type FullHashType = "sha256" | "blake3";

export interface FullHashes {
  sha256?: string;
  blake3?: string;
}

/** Size of each read; 4 MiB keeps the syscall count low without hurting the overlap. */
const CHUNK = 4 * 1024 * 1024;
/** Bytes sampled at each of the three positions of the quick identity hash. */
export const QUICK_SAMPLE = 1024 * 1024;

/** Incremental hashing of the types asked for; shared by file hashing and verified downloads. */
export class MultiHasher {
  readonly #sha = createHash("sha256");
  readonly #types: readonly FullHashType[];
  #blake: Awaited<ReturnType<typeof createBLAKE3>> | null = null;

  private constructor(types: readonly FullHashType[]) {
    this.#types = types;
  }

  static async create(types: readonly FullHashType[]): Promise<MultiHasher> {
    const h = new MultiHasher(types);
    if (types.includes("blake3")) {
      h.#blake = await createBLAKE3();
      h.#blake.init();
    }
    return h;
  }

  update(bytes: Uint8Array): void {
    if (this.#types.includes("sha256")) this.#sha.update(bytes);
    this.#blake?.update(bytes);
  }

  digest(): FullHashes {
    const out: FullHashes = {};
    if (this.#types.includes("sha256")) out.sha256 = this.#sha.digest("hex");
    if (this.#blake) out.blake3 = this.#blake.digest("hex");
    return out;
  }
}

/**
 * Hashes a whole file with one pass. While chunk N is hashed (synchronously, on this thread) the read of
 * chunk N+1 is already in flight, so disk/page-cache time and hashing time overlap.
 */
export async function hashFileFull(
  path: string,
  types: readonly FullHashType[],
  onProgress?: (bytesDone: number) => void,
): Promise<FullHashes & { size: number }> {
  const hasher = await MultiHasher.create(types);
  using file = await Deno.open(path, { read: true });
  const bufs = [new Uint8Array(CHUNK), new Uint8Array(CHUNK)];
  let which = 0;
  let size = 0;
  let pending = file.read(bufs[which]);
  while (true) {
    const n = await pending;
    if (n === null) break;
    const cur = bufs[which];
    which ^= 1;
    pending = file.read(bufs[which]);
    hasher.update(n === cur.length ? cur : cur.subarray(0, n));
    size += n;
    onProgress?.(size);
  }
  return { ...hasher.digest(), size };
}

async function readFullyAt(file: Deno.FsFile, offset: number, buf: Uint8Array): Promise<number> {
  await file.seek(offset, Deno.SeekMode.Start);
  let got = 0;
  while (got < buf.length) {
    const n = await file.read(buf.subarray(got));
    if (n === null) break;
    got += n;
  }
  return got;
}

/**
 * Quick identity: `<size hex>-<xxh3 of first/middle/last MiB>`. Equal content always gives an equal value;
 * different content of the same size can collide when it differs only outside the samples, which is why
 * nothing is linked into an environment on the quick hash alone (see provider.ts).
 */
export async function quickHash(path: string): Promise<{ quick: string; size: number }> {
  using file = await Deno.open(path, { read: true });
  const size = (await file.stat()).size;
  const xx = await createXXHash3();
  xx.init();
  if (size <= 3 * QUICK_SAMPLE) {
    const buf = new Uint8Array(size);
    const n = await readFullyAt(file, 0, buf);
    xx.update(buf.subarray(0, n));
  } else {
    const buf = new Uint8Array(QUICK_SAMPLE);
    for (const offset of [0, Math.floor((size - QUICK_SAMPLE) / 2), size - QUICK_SAMPLE]) {
      const n = await readFullyAt(file, offset, buf);
      xx.update(buf.subarray(0, n));
    }
  }
  return { quick: `${size.toString(16)}-${xx.digest("hex")}`, size };
}
