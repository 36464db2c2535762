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

/**
 * Running loss and accuracy sums of an epoch from its steps' scalar results. The scalars are kept
 * on the backend and read once, in `result` (asynchronously, as WebGPU needs), which disposes them.
 */
export class EpochStats {
  private readonly steps: { lossSum: tf.Scalar; correct: tf.Scalar }[] = [];
  private n = 0;

  /** Takes ownership of the step's two scalars. */
  add(lossSum: tf.Scalar, correct: tf.Scalar, n: number): void {
    this.steps.push({ lossSum, correct });
    this.n += n;
  }

  /** Starts the next epoch: disposes the previous one's scalars and forgets its counts. */
  newEpoch(): void {
    for (const s of this.steps) tf.dispose([s.lossSum, s.correct]);
    this.steps.length = 0;
    this.n = 0;
  }

  /** Mean loss and accuracy over the samples added; disposes the scalars. */
  async result(): Promise<{ loss: number; acc: number }> {
    let loss = 0;
    let correct = 0;
    try {
      for (const s of this.steps) {
        loss += (await s.lossSum.data())[0]!;
        correct += (await s.correct.data())[0]!;
      }
    } finally {
      for (const s of this.steps) tf.dispose([s.lossSum, s.correct]);
      this.steps.length = 0;
    }
    return this.n
      ? { loss: loss / this.n, acc: correct / this.n }
      : { loss: Number.NaN, acc: Number.NaN };
  }
}
