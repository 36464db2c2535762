/**
 * Mini-batches drawn as trainLocal draws them (a fresh permutation per epoch, consecutive slices,
 * the last one possibly smaller), for algorithms that take more than one step per batch
 * (APFL's two models, Per-FedAvg's inner and outer steps).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../tensor/rng.js';
import type { DataTensors } from '../train/loop.js';

/** Index arrays of every batch, per epoch. */
export function batchIndices(
  n: number,
  batchSize: number,
  epochs: number,
  rng: Rng,
): Int32Array[][] {
  if (!(Number.isInteger(batchSize) && batchSize >= 1))
    throw new Error(`batchSize: expected an integer >= 1, got ${batchSize}`);
  const out: Int32Array[][] = [];
  for (let e = 0; e < epochs && n > 0; e++) {
    const perm = rng.permutation(n);
    const epoch: Int32Array[] = [];
    for (let s = 0; s < n; s += batchSize) epoch.push(perm.subarray(s, Math.min(n, s + batchSize)));
    out.push(epoch);
  }
  return out;
}

/** The samples at `idx` as new tensors the caller disposes. */
export function gatherBatch(data: DataTensors, idx: Int32Array): DataTensors {
  return tf.tidy(() => {
    const i = tf.tensor1d(idx, 'int32');
    return { x: tf.gather(data.x, i) as tf.Tensor4D, y: tf.gather(data.y, i) as tf.Tensor1D };
  });
}

/** Running loss and accuracy sums of an epoch from a step's scalar results (disposed here). */
export class EpochStats {
  private loss = 0;
  private correct = 0;
  private n = 0;

  add(lossSum: tf.Scalar, correct: tf.Scalar, n: number): void {
    this.loss += lossSum.dataSync()[0]!;
    this.correct += correct.dataSync()[0]!;
    this.n += n;
    tf.dispose([lossSum, correct]);
  }

  result(): { loss: number; acc: number } {
    return this.n
      ? { loss: this.loss / this.n, acc: this.correct / this.n }
      : { loss: Number.NaN, acc: Number.NaN };
  }
}
