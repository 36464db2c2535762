/**
 * Per-client test sets with the label proportions of each client's training data (FEDSLR.md,
 * evaluation protocol): client i gets floor(n_ic * K / n_i) test images of class c, where n_ic
 * is its number of training samples of class c and n_i its total, drawn without replacement
 * from the test set's images of class c. K is 100 by default, as in the authors' code. Different
 * clients may get the same test images. If a class's test pool is smaller than the number asked
 * for, the client gets the whole pool.
 */
import type { Rng } from '../tensor/rng.js';
import { indicesByClass } from './partition.js';
import { labelCounts } from './stats.js';

export const DEFAULT_TEST_PER_CLIENT = 100;

export function proportionalTestSplit(
  trainLabels: Int32Array,
  partition: readonly Int32Array[],
  testLabels: Int32Array,
  classes: number,
  rng: Rng,
  perClient: number = DEFAULT_TEST_PER_CLIENT,
): Int32Array[] {
  if (!Number.isInteger(perClient) || perClient < 1) {
    throw new Error(`test split: perClient must be a positive integer, got ${perClient}`);
  }
  const pools = indicesByClass(testLabels, classes);
  return partition.map((idx, client) => {
    if (idx.length === 0) throw new Error(`test split: client ${client} has no training samples`);
    const counts = labelCounts(trainLabels, idx, classes);
    const out: number[] = [];
    for (let c = 0; c < classes; c++) {
      const want = Math.min(Math.floor((counts[c]! * perClient) / idx.length), pools[c]!.length);
      if (want === 0) continue;
      const pool = Int32Array.from(pools[c]!);
      for (let k = 0; k < want; k++) {
        const j = k + rng.int(pool.length - k);
        const t = pool[k]!;
        pool[k] = pool[j]!;
        pool[j] = t;
        out.push(pool[k]!);
      }
    }
    return Int32Array.from(out).sort();
  });
}
