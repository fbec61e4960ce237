/**
 * The progress contract (DESIGN §2: nothing below the faces prints). Long steps — downloads, hashing, git
 * clones, uv — open a task on the `Progress` they were handed and report amounts (bytes or items, with a
 * total when known) and a short detail (the file being hashed, uv's latest line); the face decides how it
 * looks (lib/ui.ts: a bar on a terminal, periodic plain lines in CI and pipes, nothing with --json).
 */

export interface TaskOptions {
  /** The amount that makes the task complete, when known (bytes of a download, files of a scan). */
  total?: number | null;
  unit?: "bytes" | "items";
}

export interface ProgressTask {
  /** `n` more units done; `detail`: what is being worked on now (a file name, a tool's latest line). */
  advance(n: number, detail?: string): void;
  /** The amount done so far (and the total or detail when they changed). */
  update(done: number, more?: { total?: number | null; detail?: string }): void;
  /** Finished; `summary` replaces the default "amount in time" closing line. */
  done(summary?: string): void;
  /** Stopped by a failure; the error itself is reported by whoever catches it. */
  fail(reason?: string): void;
}

export interface Progress {
  task(label: string, opts?: TaskOptions): ProgressTask;
}

/** A Progress that shows nothing (library callers, tests). */
export const noProgress: Progress = {
  task: () => ({ advance: () => {}, update: () => {}, done: () => {}, fail: () => {} }),
};

/** Runs `fn` as one task: closed as done when it returns, as failed when it throws. */
export async function withTask<T>(
  progress: Progress | undefined,
  label: string,
  fn: (task: ProgressTask) => Promise<T>,
  opts: TaskOptions = {},
): Promise<T> {
  const task = (progress ?? noProgress).task(label, opts);
  try {
    const r = await fn(task);
    task.done();
    return r;
  } catch (e) {
    task.fail();
    throw e;
  }
}
