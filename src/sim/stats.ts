/** Summaries of per-client metrics: the paper's unweighted mean and the spread around it. */

export interface Summary {
  acc: number;
  acc_weighted: number;
  acc_std: number;
  acc_p10: number;
  acc_p50: number;
  acc_p90: number;
  /** Mean loss; not finite when some client's is not (see `nonfinite`). */
  loss: number;
  /**
   * How many clients' models give a non-finite loss (a model whose values diverged, e.g. a
   * personal part that blew up in one client's training); present only when some do. Their
   * accuracy still counts in the means, as the authors' evaluation counts it.
   */
  nonfinite?: number;
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
  const nonfinite = loss.filter((l) => !Number.isFinite(l)).length;
  return {
    acc: mean,
    acc_weighted: weighted,
    acc_std: std,
    acc_p10: percentile(sorted, 10),
    acc_p50: percentile(sorted, 50),
    acc_p90: percentile(sorted, 90),
    loss: loss.reduce((a, b) => a + b, 0) / n,
    ...(nonfinite > 0 ? { nonfinite } : {}),
  };
}

/** What a record says about models whose loss is not finite, or undefined when there are none. */
export function nonfiniteModels(r: { global?: Summary; personal?: Summary }): string | undefined {
  const parts = (['global', 'personal'] as const).flatMap((k) => {
    const n = r[k]?.nonfinite;
    return n ? [`${n} client${n === 1 ? "'s" : "s'"} ${k} model${n === 1 ? '' : 's'}`] : [];
  });
  if (!parts.length) return undefined;
  const one = parts.length === 1 && (r.global?.nonfinite ?? 0) + (r.personal?.nonfinite ?? 0) === 1;
  return `${parts.join(' and ')} ${one ? 'gives' : 'give'} a non-finite loss (diverged values; their accuracy still counts in the means)`;
}
