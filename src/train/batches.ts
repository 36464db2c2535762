/**
 * The mini-batches of local training, shared by `trainLocal` and the algorithms that take more
 * than one step per batch (APFL's two models, Per-FedAvg's inner and outer steps).
 *
 * Each epoch draws a fresh permutation of the n samples from the client's seeded generator and
 * cuts it into consecutive slices of `batchSize`. When n is not a multiple of the batch size the
 * last slice is short (r = n mod batchSize samples), and `lastBatch` says what happens to it:
 *
 * - `keep`: it is a step of its own (PyTorch's DataLoader with drop_last=False, the authors' script);
 * - `merge`: it joins the previous slice, one step on batchSize + r samples (when there is only one
 *   slice, n < batchSize, that slice is kept);
 * - `drop`: it is not used this epoch (drop_last=True; a client with fewer samples than batchSize
 *   takes no step at all).
 *
 * When n is a multiple of batchSize the three are the same batches.
 */
import type { Rng } from '../tensor/rng.js';

export const LAST_BATCH_MODES = ['keep', 'merge', 'drop'] as const;
export type LastBatch = (typeof LAST_BATCH_MODES)[number];

/** One epoch's batches: consecutive slices of `perm`, the short last one as `lastBatch` says. */
export function epochBatches(
  perm: Int32Array,
  batchSize: number,
  lastBatch: LastBatch = 'keep',
): Int32Array[] {
  const n = perm.length;
  const batches: Int32Array[] = [];
  for (let s = 0; s < n; s += batchSize) batches.push(perm.subarray(s, Math.min(n, s + batchSize)));
  const short = n % batchSize !== 0;
  if (short && lastBatch === 'drop') batches.pop();
  if (short && lastBatch === 'merge' && batches.length > 1) {
    batches.pop();
    batches[batches.length - 1] = perm.subarray(n - batchSize - (n % batchSize), n);
  }
  return batches;
}

/** Index arrays of every batch, per epoch (a fresh permutation of 0..n-1 for each epoch). */
export function batchIndices(
  n: number,
  batchSize: number,
  epochs: number,
  rng: Rng,
  lastBatch: LastBatch = 'keep',
): Int32Array[][] {
  if (!(Number.isInteger(batchSize) && batchSize >= 1))
    throw new Error(`batchSize: expected an integer >= 1, got ${batchSize}`);
  if (!(Number.isInteger(epochs) && epochs >= 0))
    throw new Error(`epochs: expected an integer >= 0, got ${epochs}`);
  const out: Int32Array[][] = [];
  for (let e = 0; e < epochs && n > 0; e++)
    out.push(epochBatches(rng.permutation(n), batchSize, lastBatch));
  return out;
}
