/** Summaries of per-client metrics: the paper's unweighted mean and the spread around it. */

export interface Summary {
  acc: number;
  acc_weighted: number;
  acc_std: number;
  acc_p10: number;
  acc_p50: number;
  acc_p90: number;
  loss: number;
}

/** Percentile with linear interpolation between order statistics (numpy's default). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Summary over clients; `sizes` are the clients' test-set sizes (for the weighted mean). */
export function summarize(
  acc: readonly number[],
  loss: readonly number[],
  sizes: readonly number[],
): Summary {
  const n = acc.length;
  const mean = acc.reduce((a, b) => a + b, 0) / n;
  const total = sizes.reduce((a, b) => a + b, 0);
  const weighted = acc.reduce((s, a, i) => s + a * sizes[i]!, 0) / total;
  const std = Math.sqrt(acc.reduce((s, a) => s + (a - mean) ** 2, 0) / n);
  const sorted = [...acc].sort((a, b) => a - b);
  return {
    acc: mean,
    acc_weighted: weighted,
    acc_std: std,
    acc_p10: percentile(sorted, 10),
    acc_p50: percentile(sorted, 50),
    acc_p90: percentile(sorted, 90),
    loss: loss.reduce((a, b) => a + b, 0) / n,
  };
}
