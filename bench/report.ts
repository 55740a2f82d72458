/** A target from the issue: the measured value must be at most (`<=`) or at least (`>=`) target. */
export interface Goal {
  op: "<=" | ">=";
  target: number;
}

/**
 * One line of the benchmark table and one element of the `--json` array. ratio is always
 * value / baseline, with the baseline measured in the same run (DESIGN §9).
 */
export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  /** The goal as text, e.g. "<= 5". */
  goal: string;
  baseline: number;
  ratio: number;
  met: boolean;
}

/** What one benchmark produced: its rows and the notes printed under the table. */
export interface BenchResult {
  rows: BenchRow[];
  notes: string[];
}

const round = (x: number, digits: number): number => Number(x.toFixed(digits));

/** A row from a measurement, its goal and its baseline; numbers are rounded for display. */
export function benchRow(name: string, value: number, unit: string, goal: Goal, baseline: number): BenchRow {
  return {
    name,
    value: round(value, 3),
    unit,
    goal: `${goal.op} ${goal.target}`,
    baseline: round(baseline, 3),
    ratio: round(value / baseline, 3),
    met: goal.op === "<=" ? value <= goal.target : value >= goal.target,
  };
}

function display(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const abs = Math.abs(x);
  if (abs >= 1000) return Math.round(x).toLocaleString("en-US");
  if (abs >= 100) return x.toFixed(0);
  if (abs >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

/** Formats rows as a Markdown table (readable in a terminal, pasteable into docs). */
export function formatTable(rows: readonly BenchRow[]): string {
  const header = ["name", "value", "unit", "goal", "baseline", "ratio", "met"];
  const cells = rows.map((r) => [
    r.name,
    display(r.value),
    r.unit,
    r.goal,
    display(r.baseline),
    r.ratio.toFixed(2),
    r.met ? "yes" : "NO",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? "").length)));
  const line = (c: string[]) =>
    `| ${c.map((x, i) => (i === 0 || i === 2 || i === 3 ? x.padEnd(widths[i] ?? 0) : x.padStart(widths[i] ?? 0))).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (i === 0 || i === 2 || i === 3 ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  return [line(header), rule, ...cells.map(line)].join("\n");
}
