/**
 * Helpers for algorithms that take more than one step per batch (APFL's two models, Per-FedAvg's
 * inner and outer steps) over the batches of `train/batches.ts`, the ones trainLocal uses.
 */
import * as tf from '@tensorflow/tfjs-core';
import { batchIndices } from '../train/batches.js';
import type { DataTensors } from '../train/loop.js';
import type { AlgorithmContext, ClientRun } from './types.js';

/** Each epoch's batches of this client's samples, drawn under the run's batch settings. */
export function clientBatches(
  ctx: AlgorithmContext,
  run: ClientRun,
  epochs: number,
): Int32Array[][] {
  const n = run.data.y.shape[0];
  return batchIndices(n, ctx.train.batchSize, epochs, run.rng, ctx.train.lastBatch);
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
