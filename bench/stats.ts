/**
 * The q-quantile (0 ≤ q ≤ 1) of values by the nearest-rank method, so p99 of 500 samples is the
 * 495th smallest. NaN for an empty list; values need not be sorted.
 */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

/** The median (nearest rank, so always one of the values). */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}
