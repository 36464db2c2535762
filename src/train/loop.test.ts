/**
 * The training loop's bookkeeping against independent counts on a linear model (logits = x K + b,
 * scored here in float64): an epoch's loss and accuracy are over the samples its batches used,
 * a learning-rate schedule is indexed by the step, a run with no step returns copies, and
 * `evaluate` gives the same counts whatever its batch size.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createModel } from '../models/index.js';
import { initBackend } from '../tensor/backend.js';
import { disposeParams, fromArrays, type ParamArrays, toArrays } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { batchIndices } from './batches.js';
import { type DataTensors, disposeData, evaluate, toTensors, trainLocal } from './loop.js';

beforeAll(async () => {
  await initBackend('wasm');
});

const DIM = 3;
const CLASSES = 3;
const model = createModel('mlp', { inputShape: [DIM, 1, 1], classes: CLASSES, hidden: [] });
const W: ParamArrays = {
  'out.kernel': {
    shape: [DIM, CLASSES],
    data: Float32Array.from([0.4, -0.3, 0.1, 0.2, 0.5, -0.6, -0.1, 0.3, 0.2]),
  },
  'out.bias': { shape: [CLASSES], data: Float32Array.from([0.05, -0.1, 0]) },
};

/** n samples with fixed inputs and labels (some the model gets right, some not). */
function dataset(n: number): { x: Float32Array; y: Int32Array } {
  const rng = new Rng(3);
  const x = Float32Array.from({ length: n * DIM }, () => rng.normal());
  const y = Int32Array.from({ length: n }, (_, i) => (i * 7) % CLASSES);
  return { x, y };
}

/** Summed cross-entropy and correct predictions of `p` on the samples `rows`, in float64. */
function score(p: ParamArrays, d: { x: Float32Array; y: Int32Array }, rows: Iterable<number>) {
  const k = p['out.kernel']!.data;
  const b = p['out.bias']!.data;
  let lossSum = 0;
  let correct = 0;
  let n = 0;
  for (const s of rows) {
    const z = Array.from({ length: CLASSES }, (_, c) => {
      let v = b[c]!;
      for (let i = 0; i < DIM; i++) v += d.x[s * DIM + i]! * k[i * CLASSES + c]!;
      return v;
    });
    const top = Math.max(...z);
    lossSum += top + Math.log(z.reduce((a, v) => a + Math.exp(v - top), 0)) - z[d.y[s]!]!;
    if (z.indexOf(top) === d.y[s]) correct++;
    n++;
  }
  return { lossSum, correct, n };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('trainLocal', () => {
  it('logs each epoch’s loss and accuracy over the samples its batches used', async () => {
    // lr 0 keeps the model at W, so every batch is scored at W: the epoch's numbers are those of
    // W on exactly the samples used, whatever the batch sizes.
    const d = dataset(23);
    const data = toTensors(d.x, d.y, [DIM, 1, 1]);
    const start = fromArrays(W);
    for (const lastBatch of ['keep', 'drop'] as const) {
      const r = await trainLocal(start, {
        model,
        data,
        epochs: 2,
        batchSize: 5,
        lr: 0,
        rng: new Rng(9),
        lastBatch,
      });
      const plan = batchIndices(23, 5, 2, new Rng(9), lastBatch);
      expect(r.steps).toBe(lastBatch === 'keep' ? 10 : 8);
      expect(r.epochs.map((e) => e.epoch)).toEqual([0, 1]);
      plan.forEach((batches, e) => {
        const used = batches.flatMap((b) => Array.from(b));
        const want = score(W, d, used);
        expect(want.n).toBe(lastBatch === 'keep' ? 23 : 20);
        expect(r.epochs[e]!.loss).toBeCloseTo(want.lossSum / want.n, 5);
        expect(r.epochs[e]!.acc).toBeCloseTo(want.correct / want.n, 6);
      });
      expect(toArrays(r.params)).toEqual(W);
      disposeParams(r.params);
    }
    // Dropping 3 of 23 samples changes the numbers: the check above tells the two apart.
    const all = score(W, d, range(23));
    const dropped = score(
      W,
      d,
      batchIndices(23, 5, 1, new Rng(9), 'drop')[0]!.flatMap((b) => Array.from(b)),
    );
    expect(all.lossSum / all.n).not.toBeCloseTo(dropped.lossSum / dropped.n, 5);
    disposeParams(start);
    disposeData(data);
  });

  it('takes the learning rate of each step from the schedule, counting steps across epochs', async () => {
    // One batch of all samples per epoch: the gradient is that of the full mean loss.
    const d = dataset(6);
    const data = toTensors(d.x, d.y, [DIM, 1, 1]);
    const start = fromArrays(W);
    const lrs: number[] = [];
    const schedule = (step: number) => {
      lrs.push(step);
      return [0.5, 0.2, 0.1][step]!;
    };
    const r = await trainLocal(start, {
      model,
      data,
      epochs: 3,
      batchSize: 6,
      lr: schedule,
      rng: new Rng(1),
    });
    expect(lrs).toEqual([0, 1, 2]);
    const same = await trainLocal(start, {
      model,
      data,
      epochs: 1,
      batchSize: 6,
      lr: 0.5,
      rng: new Rng(1),
    });
    const after1 = toArrays(same.params);
    // The second epoch's loss is scored at the model after the first step (lr 0.5) ...
    const s1 = score(after1, d, range(6));
    expect(r.epochs[1]!.loss).toBeCloseTo(s1.lossSum / 6, 5);
    // ... and the third one's after a second step of lr 0.2, not 0.5.
    const two = async (lr2: number) => {
      const from = fromArrays(after1);
      const next = await trainLocal(from, {
        model,
        data,
        epochs: 1,
        batchSize: 6,
        lr: lr2,
        rng: new Rng(1),
      });
      const s = score(toArrays(next.params), d, range(6));
      disposeParams(from, next.params);
      return s.lossSum / 6;
    };
    expect(r.epochs[2]!.loss).toBeCloseTo(await two(0.2), 5);
    expect(r.epochs[2]!.loss).not.toBeCloseTo(await two(0.5), 4);
    disposeParams(start, r.params, same.params);
    disposeData(data);
  });

  it('returns copies and NaN epochs when no step is taken, and leaks nothing', async () => {
    const d = dataset(4);
    const data = toTensors(d.x, d.y, [DIM, 1, 1]);
    const start = fromArrays(W);
    const live = tf.memory().numTensors;
    const r = await trainLocal(start, {
      model,
      data,
      epochs: 2,
      batchSize: 5,
      lr: 0.1,
      rng: new Rng(2),
      lastBatch: 'drop',
    });
    expect(r.steps).toBe(0);
    expect(r.epochs).toEqual([
      { epoch: 0, loss: Number.NaN, acc: Number.NaN },
      { epoch: 1, loss: Number.NaN, acc: Number.NaN },
    ]);
    for (const k of Object.keys(start)) expect(r.params[k]).not.toBe(start[k]);
    disposeParams(start);
    expect(toArrays(r.params)).toEqual(W);
    disposeParams(r.params);
    expect(tf.memory().numTensors).toBe(live - 2);
    disposeData(data);
  });
});

describe('evaluate', () => {
  it('gives the same counts in batches of 3 as in one batch, equal to a float64 count', async () => {
    const d = dataset(11);
    const data: DataTensors = toTensors(d.x, d.y, [DIM, 1, 1]);
    const params = fromArrays(W);
    const want = score(W, d, range(11));
    const live = tf.memory().numTensors;
    expect(want.correct).toBeGreaterThan(0);
    expect(want.correct).toBeLessThan(11);
    for (const batch of [3, 11, 500]) {
      const r = await evaluate(model, params, data, batch);
      expect(r.n).toBe(11);
      expect(r.correct).toBe(want.correct);
      expect(r.acc).toBeCloseTo(want.correct / 11, 12);
      expect(r.loss).toBeCloseTo(want.lossSum / 11, 5);
    }
    expect(tf.memory().numTensors).toBe(live);
    disposeParams(params);
    disposeData(data);
  });

  it('returns NaN and no counts on an empty set', async () => {
    const data = toTensors(new Float32Array(0), new Int32Array(0), [DIM, 1, 1]);
    const params = fromArrays(W);
    expect(await evaluate(model, params, data)).toEqual({
      loss: Number.NaN,
      acc: Number.NaN,
      correct: 0,
      n: 0,
    });
    disposeParams(params);
    disposeData(data);
  });
});

describe('toTensors', () => {
  it('says how many values it got for how many samples of which shape', () => {
    expect(() => toTensors(new Float32Array(5), new Int32Array(2), [DIM, 1, 1])).toThrow(
      'toTensors: 5 input values for 2 samples of shape [3,1,1]',
    );
    const t = toTensors(new Float32Array(6), Int32Array.from([1, 2]), [DIM, 1, 1]);
    expect([t.x.shape, t.y.shape, t.y.dtype]).toEqual([[2, 3, 1, 1], [2], 'int32']);
    disposeData(t);
  });
});
