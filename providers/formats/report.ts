/**
 * What an import from another tool's format did with each thing it found: every key, node or package is
 * either mapped (to what), kept as it was, or not mapped (and why). Nothing is dropped without a line here.
 */
export interface ReportLine {
  /** What was found: `git_custom_nodes["https://..."]`, `tool.comfygit.models.<hash>`, `pips: numpy==1.26`. */
  item: string;
  outcome: "mapped" | "kept" | "not mapped";
  /** Mapped: where it went. Not mapped: why, and what the user can do. */
  detail: string;
}

export class MappingReport {
  readonly lines: ReportLine[] = [];

  mapped(item: string, detail: string): void {
    this.lines.push({ item, outcome: "mapped", detail });
  }

  kept(item: string, detail: string): void {
    this.lines.push({ item, outcome: "kept", detail });
  }

  notMapped(item: string, detail: string): void {
    this.lines.push({ item, outcome: "not mapped", detail });
  }

  get unmapped(): ReportLine[] {
    return this.lines.filter((l) => l.outcome === "not mapped");
  }
}
