import { median } from "./stats.js";

/** One step of a breakdown: its label and the durations (ms) measured for it, one per sample. */
export type Step = [label: string, durations: number[]];

/**
 * Adds one sample of consecutive points in time (epoch ms) to steps: point k+1 − point k goes to
 * steps[k] (NaN where either point is missing; steps beyond the points get nothing).
 */
export function addStepDurations(steps: readonly Step[], points: readonly number[]): void {
  for (let k = 0; k + 1 < points.length; k++) steps[k]?.[1].push((points[k + 1] ?? Number.NaN) - (points[k] ?? Number.NaN));
}

/**
 * `label median; label median; …`: the median of each step's finite durations written by fmt,
 * "n/a" for a step without any.
 */
export function formatStepMedians(steps: readonly Step[], fmt: (ms: number) => string): string {
  return steps
    .map(([label, values]) => {
      const ok = values.filter(Number.isFinite);
      return `${label} ${ok.length > 0 ? fmt(median(ok)) : "n/a"}`;
    })
    .join("; ");
}
