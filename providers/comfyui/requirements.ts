/**
 * ComfyUI's requirements.txt -> `[project].dependencies`. Pure.
 *
 * Torch-family lines (torch, torchvision, torchaudio) are KEPT: ComfyUI cannot start without them. Which
 * build of them is installed (CPU, CUDA, ROCm) is decided by the `[tool.uv]` index routing written for the
 * torch backend, not by removing or rewriting these lines.
 */

/** PEP 508 requirement lines, comments/options/blank lines dropped, order kept, duplicates removed. */
export function parseRequirements(text: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  // A trailing backslash continues a line in pip's format.
  const joined = text.replace(/\\\r?\n/g, " ");
  for (const raw of joined.split(/\r?\n/)) {
    // pip treats ` #` (whitespace then #) as a comment; `#` inside a URL fragment is kept.
    const line = raw.replace(/(^|\s)#.*$/, "").trim();
    if (!line || line.startsWith("-")) continue;
    const normalised = line.replace(/\s+/g, " ");
    if (!seen.has(normalised)) {
      seen.add(normalised);
      out.push(normalised);
    }
  }
  return out;
}

/**
 * `[project].dependencies` after a ComfyUI version change: the old ComfyUI requirements are replaced by
 * the new ones (in ComfyUI's order, first); the user's own additions are kept after them.
 */
export function mergeRequirements(current: string[], oldComfy: string[], newComfy: string[]): string[] {
  const old = new Set(oldComfy);
  const next = new Set(newComfy);
  return [...newComfy, ...current.filter((d) => !old.has(d) && !next.has(d))];
}
