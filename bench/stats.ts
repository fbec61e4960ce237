/** The one statistic the benchmarks report: the median of repeated runs (robust to a noisy shared machine). */
export function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

/** Median milliseconds of `n` sequential runs of `fn`. */
export async function timeMedian(n: number, fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return median(times);
}

/** The figures of this run that the README's performance table shows, by key (`plan.noop_cli_ms`). */
export const figures: Record<string, number> = {};

/** Records a figure for bench/results.json (and so for the README's table). */
export function record(key: string, value: number): void {
  figures[key] = value;
}
