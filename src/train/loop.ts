/**
 * The local training loop: shuffled mini-batch SGD over one client's data, with gradient
 * transforms and an optional proximal map after every step, and batched evaluation.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Model } from '../models/index.js';
import { gatherRows } from '../tensor/kernels/gather_rows.js';
import type { Params } from '../tensor/params.js';
import type { Rng } from '../tensor/rng.js';
import { yieldToEventLoop } from '../util/yield.js';
import { batchIndices, type LastBatch } from './batches.js';
import { type GradTransform, type ProxMap, sgdStep } from './transforms.js';

/** One client's samples as tensors: x [n, h, w, c] float32, y [n] int32 labels. */
export interface DataTensors {
  x: tf.Tensor4D;
  y: tf.Tensor1D;
}

export function toTensors(
  x: Float32Array,
  y: Int32Array,
  inputShape: readonly number[],
): DataTensors {
  const n = y.length;
  const per = inputShape.reduce((a, b) => a * b, 1);
  if (x.length !== n * per) {
    throw new Error(
      `toTensors: ${x.length} input values for ${n} samples of shape [${inputShape}]`,
    );
  }
  return {
    x: tf.tensor4d(x, [n, ...inputShape] as [number, number, number, number]),
    y: tf.tensor1d(y, 'int32'),
  };
}

/** A scalar tensor's value, read asynchronously (WebGPU has no synchronous read-back in Node). */
export async function readScalar(t: tf.Tensor): Promise<number> {
  return (await t.data())[0]!;
}

export function disposeData(d: DataTensors): void {
  tf.dispose([d.x, d.y]);
}

/** Mean softmax cross-entropy of logits against integer labels. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const onehot = tf.oneHot(labels, logits.shape[1]);
    return tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
  });
}

export interface StepOptions {
  model: Model;
  /** Builds the parameter set the model sees from the trainable tensors (default: they are it). */
  compose?: (trainable: Params) => Params;
  transform?: GradTransform;
  prox?: ProxMap;
}

export interface StepResult {
  params: Params;
  /** Sum of the loss over the batch (mean loss * batch size), a scalar tensor the caller owns. */
  lossSum: tf.Scalar;
  /** Number of correct predictions in the batch, a scalar tensor the caller owns. */
  correct: tf.Scalar;
}

/**
 * Builds one SGD step: forward, backward, gradient transforms, `w - lr * g`, proximal map.
 * The step returns new trainable tensors; it never disposes its inputs.
 */
export function makeStep(
  opts: StepOptions,
): (trainable: Params, x: tf.Tensor4D, y: tf.Tensor1D, lr: number) => StepResult {
  const { model, compose, transform, prox } = opts;
  const update = sgdStep(transform, prox);
  return (trainable, x, y, lr) => {
    const names = Object.keys(trainable);
    let correct: tf.Scalar | undefined;
    const lossOf = (...ts: tf.Tensor[]): tf.Scalar => {
      const p: Params = {};
      names.forEach((k, i) => {
        p[k] = ts[i]!;
      });
      const full = compose ? compose(p) : p;
      const logits = model.forward(full, x);
      correct = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), y), 'float32')) as tf.Scalar);
      return crossEntropy(logits, y);
    };
    const batch = x.shape[0];
    return tf.tidy(() => {
      const { value, grads } = tf.valueAndGrads(lossOf)(names.map((k) => trainable[k]!));
      const g: Params = {};
      names.forEach((k, i) => {
        g[k] = grads[i]!;
      });
      const next = update(trainable, g, lr);
      return { params: next, lossSum: tf.mul(value, batch) as tf.Scalar, correct: correct! };
    });
  };
}

export interface EpochLog {
  epoch: number;
  loss: number;
  acc: number;
}

export interface TrainOptions extends StepOptions {
  data: DataTensors;
  epochs: number;
  batchSize: number;
  /** Learning rate, or a function of the 0-based step. */
  lr: number | ((step: number) => number);
  rng: Rng;
  /** What a short last batch of an epoch becomes (see batches.ts; default keep). */
  lastBatch?: LastBatch;
}

export interface TrainResult {
  /** The trained tensors, owned by the caller. */
  params: Params;
  epochs: EpochLog[];
  steps: number;
}

/**
 * Runs `epochs` passes of shuffled mini-batch SGD over the batches of `batchIndices` (by default
 * the last batch of an epoch may be smaller, as PyTorch's DataLoader without drop_last). An
 * epoch's loss and accuracy are over the samples it used (NaN when it took no step).
 * `trainable` is borrowed and left intact. The event loop runs between batches.
 */
export async function trainLocal(trainable: Params, opts: TrainOptions): Promise<TrainResult> {
  const { data, epochs, batchSize, rng } = opts;
  const n = data.y.shape[0];
  const plan = batchIndices(n, batchSize, epochs, rng, opts.lastBatch);
  const step = makeStep(opts);
  const lrAt = typeof opts.lr === 'function' ? opts.lr : () => opts.lr as number;
  let params = trainable;
  let steps = 0;
  const logs: EpochLog[] = [];
  for (const [e, batches] of plan.entries()) {
    let lossSum = tf.scalar(0);
    let correct = tf.scalar(0);
    let used = 0;
    for (const idx of batches) {
      const xb = gatherRows(data.x, idx);
      const yb = gatherRows(data.y, idx);
      const r = step(params, xb, yb, lrAt(steps));
      tf.dispose([xb, yb]);
      if (params !== trainable) tf.dispose(Object.values(params));
      params = r.params;
      const [l, c] = [tf.add(lossSum, r.lossSum), tf.add(correct, r.correct)];
      tf.dispose([lossSum, correct, r.lossSum, r.correct]);
      lossSum = l as tf.Scalar;
      correct = c as tf.Scalar;
      used += idx.length;
      steps++;
      await yieldToEventLoop();
    }
    const [lossValue, correctValue] = [await readScalar(lossSum), await readScalar(correct)];
    logs.push({
      epoch: e,
      loss: used ? lossValue / used : Number.NaN,
      acc: used ? correctValue / used : Number.NaN,
    });
    tf.dispose([lossSum, correct]);
  }
  if (params === trainable)
    params = Object.fromEntries(Object.entries(trainable).map(([k, t]) => [k, t.clone()]));
  return { params, epochs: logs, steps };
}

export interface EvalResult {
  loss: number;
  acc: number;
  correct: number;
  n: number;
}

/** Accuracy and mean loss of `params` on `data`, in batches. */
export async function evaluate(
  model: Model,
  params: Params,
  data: DataTensors,
  batchSize = 500,
): Promise<EvalResult> {
  const n = data.y.shape[0];
  if (n === 0) return { loss: Number.NaN, acc: Number.NaN, correct: 0, n: 0 };
  let loss = 0;
  let correct = 0;
  for (let start = 0; start < n; start += batchSize) {
    const size = Math.min(batchSize, n - start);
    const rows = Int32Array.from({ length: size }, (_, j) => start + j);
    const [l, c] = tf.tidy(() => {
      const xb = gatherRows(data.x, rows);
      const yb = gatherRows(data.y, rows);
      const logits = model.forward(params, xb);
      return [
        tf.mul(crossEntropy(logits, yb), size),
        tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), yb), 'float32')),
      ];
    });
    try {
      loss += await readScalar(l!);
      correct += await readScalar(c!);
    } finally {
      tf.dispose([l!, c!]);
    }
  }
  return { loss: loss / n, acc: correct / n, correct, n };
}
