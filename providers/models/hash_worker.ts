/** Worker side of the hashing pool (hash.ts): hashes one file per message, reports progress. */
import { type FullHashType, hashFileFull } from "./hash_core.ts";

interface Job {
  id: number;
  path: string;
  types: FullHashType[];
}

/** Progress messages at most every 64 MiB: enough for a smooth bar, few enough to cost nothing. */
const PROGRESS_STEP = 64 * 1024 * 1024;

// deno-lint-ignore no-explicit-any -- the worker global scope type is not in Deno's default lib
const scope = self as any;

scope.onmessage = async (ev: MessageEvent<Job>) => {
  const { id, path, types } = ev.data;
  let reported = 0;
  try {
    const result = await hashFileFull(path, types, (done) => {
      if (done - reported >= PROGRESS_STEP) {
        scope.postMessage({ id, progress: done - reported });
        reported = done;
      }
    });
    scope.postMessage({ id, progress: result.size - reported, result });
  } catch (e) {
    const err = e instanceof Error
      ? { name: e.name, message: e.message }
      : { name: "Error", message: String(e) };
    scope.postMessage({ id, error: err });
  }
};
