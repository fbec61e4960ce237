/**
 * Resolve as of a date: uv's `exclude-newer` in `.cec`'s `[tool.uv]`, so an older ComfyUI gets the packages
 * of its release week instead of today's (a transformers that no longer pulls `requests` in broke ComfyUI
 * 0.3.64). Kept in `.cec`, so every machine and plain `uv lock` resolve the same way.
 *
 * The PyTorch index publishes no upload times, and uv drops files without one under `exclude-newer`; the
 * torch family from that index is exempted (`exclude-newer-package = { torch = false, ... }`). Torch is
 * pinned by `constraint-dependencies` after the first lock anyway.
 */
import { CdError } from "../../lib/errors.ts";
import type { TomlEdit } from "../../reconcile/pyproject_edit.ts";
import { TORCH_PACKAGES } from "./torch.ts";

/** `2025-10-01` or an RFC 3339 time -> `2025-10-01T00:00:00Z` (UTC, what uv records in uv.lock). */
export function parseAsOf(value: string): string {
  const v = value.trim();
  const date = /^\d{4}-\d{2}-\d{2}$/.test(v) ? new Date(`${v}T00:00:00Z`) : new Date(v);
  if (!/^\d{4}-\d{2}-\d{2}/.test(v) || Number.isNaN(date.getTime())) {
    throw new CdError("RESOLVE_AS_OF_INVALID", `--resolve-as-of '${value}' is not a date`, {
      hint: "give YYYY-MM-DD, an RFC 3339 time (2025-10-01T12:00:00Z), or 'comfyui' (the date of the " +
        "pinned ComfyUI commit)",
    });
  }
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** `[tool.uv]` edits that resolve as of `date`; `torchFromIndex`: exempt the torch family (no dates there). */
export function excludeNewerEdits(date: string, torchFromIndex: boolean): TomlEdit[] {
  return [
    { path: ["tool", "uv", "exclude-newer"], value: date },
    ...(torchFromIndex
      ? [{
        path: ["tool", "uv", "exclude-newer-package"],
        value: Object.fromEntries(TORCH_PACKAGES.map((p) => [p, false])),
      }]
      : []),
  ];
}
