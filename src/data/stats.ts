/**
 * Label statistics of client splits, for tests, logs and reports.
 */

/** How many of `indices` have each label. */
export function labelCounts(
  labels: Int32Array,
  indices: ArrayLike<number>,
  classes: number,
): Int32Array {
  const counts = new Int32Array(classes);
  for (let i = 0; i < indices.length; i++) counts[labels[indices[i]!]!]! += 1;
  return counts;
}

/** Shannon entropy (nats) of a count vector; 0 for an empty one. */
export function entropy(counts: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i]!;
  if (total === 0) return 0;
  let h = 0;
  for (let i = 0; i < counts.length; i++) {
    const p = counts[i]! / total;
    if (p > 0) h -= p * Math.log(p);
  }
  return h;
}

export interface PartitionStats {
  readonly sizes: number[];
  readonly minSize: number;
  readonly maxSize: number;
  /** Mean over clients of the entropy (nats) of the client's label distribution. */
  readonly meanLabelEntropy: number;
  /** Mean over clients of the number of classes present. */
  readonly meanClasses: number;
}

export function partitionStats(
  labels: Int32Array,
  partition: readonly ArrayLike<number>[],
  classes: number,
): PartitionStats {
  const counts = partition.map((p) => labelCounts(labels, p, classes));
  const sizes = partition.map((p) => p.length);
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  return {
    sizes,
    minSize: Math.min(...sizes),
    maxSize: Math.max(...sizes),
    meanLabelEntropy: mean(counts.map(entropy)),
    meanClasses: mean(counts.map((c) => c.filter((v) => v > 0).length)),
  };
}
