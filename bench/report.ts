/**
 * The shape every bench section shares, plus the statistics and table formatting they use.
 * A section is a name and a `run` that returns one JSON object and some table rows; adding a
 * benchmark (Whisper latency, real-time factor, memory) means adding one more section to the list
 * in scripts/bench.ts.
 */

export interface BenchContext {
  /** Repository root (absolute). */
  root: string;
  /** ../shared/eval/dev, or $EARSHOT_SHARED/eval/dev (absolute). */
  evalDir: string;
  /** Epoch ms by which every section must have finished; sections size their work to it. */
  deadline: number;
  /** Progress notes, to stderr so stdout stays machine-readable. */
  log: (message: string) => void;
}

export interface Table {
  columns: string[];
  rows: string[][];
}

export interface SectionResult {
  json: Record<string, unknown>;
  table: Table;
}

export interface Section {
  /** The key of this section's object in the bench JSON. */
  name: string;
  title: string;
  run: (context: BenchContext) => Promise<SectionResult>;
}

/** Nearest-rank quantile (q in [0, 1]) of unsorted values; NaN when there are none. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

export const median = (values: readonly number[]): number => quantile(values, 0.5);
export const p95 = (values: readonly number[]): number => quantile(values, 0.95);

/** Milliseconds rounded for JSON: 4 decimals (0.1 µs) is far below any noise here. */
export function ms(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}

/** A fixed-width text table with a title line. */
export function formatTable(title: string, table: Table): string {
  const widths = table.columns.map((column, i) =>
    Math.max(column.length, ...table.rows.map((row) => (row[i] ?? "").length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join("  ");
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  return [title, line(table.columns), rule, ...table.rows.map(line)].join("\n");
}
