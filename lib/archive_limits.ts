/**
 * The limits every archive reader enforces (node zips, bundles): what a zip bomb, a lying header or a
 * hostile server runs into. Sizes are checked against the declared sizes before anything is inflated, and
 * against the bytes actually produced while inflating (a header may lie), so memory and disk stay bounded.
 */
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export interface ArchiveLimits {
  maxEntries: number;
  /** Largest single file (except under `largeFilePrefix`). */
  maxFileBytes: number;
  /** Entries under this prefix (model files) may be as large as `maxLargeFileBytes`. */
  largeFilePrefix?: string;
  maxLargeFileBytes: number;
  /** Sum of all file sizes once extracted. */
  maxTotalBytes: number;
  maxPathLength: number;
  /** Decompressed/compressed bytes; checked once more than `ratioCheckAfterBytes` came out (zip bombs). */
  maxExpansionRatio: number;
  ratioCheckAfterBytes: number;
}

/** Environment bundles: code and text, plus model weights under `models/` when exported with them. */
export const BUNDLE_LIMITS: ArchiveLimits = {
  maxEntries: 20_000,
  maxFileBytes: 256 * MiB,
  maxLargeFileBytes: 128 * GiB,
  maxTotalBytes: 512 * GiB,
  maxPathLength: 1024,
  // Text compresses 5-20x, model weights ~1.1x; deflate's ceiling is ~1030x, which is what bombs use.
  maxExpansionRatio: 200,
  ratioCheckAfterBytes: 64 * MiB,
};

/**
 * Registry node archives: the same ratio rule as bundles; sizes for code (the largest packs on the
 * registry ship a few hundred MB of bundled web assets or small weights; none comes near 2 GiB).
 */
export const NODE_ARCHIVE_LIMITS: ArchiveLimits = {
  ...BUNDLE_LIMITS,
  maxEntries: 50_000,
  maxFileBytes: 512 * MiB,
  maxLargeFileBytes: 512 * MiB,
  maxTotalBytes: 2 * GiB,
};

/** Why `produced` bytes out of `compressed` input break the ratio rule, or null. */
export function expansionProblem(produced: number, compressed: number, limits: ArchiveLimits): string | null {
  if (produced <= limits.ratioCheckAfterBytes) return null;
  const ratio = produced / Math.max(compressed, 1);
  return ratio > limits.maxExpansionRatio
    ? `expands ${Math.round(ratio)}x, more than ${limits.maxExpansionRatio}x (zip-bomb-like archive)`
    : null;
}
