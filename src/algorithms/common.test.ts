/**
 * The shared algorithm helpers on hand-computed values: element-wise means and sums, the state
 * codecs' round trips and their errors, FedAvg's averaging server and the local SGD pass a FedAvg
 * client runs (a linear model on two points, batch = all points, so every step is known).
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeParams } from '../codec/params.js';
import { denseParams } from '../codec/wire.js';
import { createModel, type Model } from '../models/index.js';
import { initBackend } from '../tensor/backend.js';
import { disposeParams, fromArrays, type ParamArrays, toArrays } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { type DataTensors, disposeData, toTensors } from '../train/loop.js';
import { addDecayedWeights } from '../train/transforms.js';
import {
  addArrays,
  averagingServer,
  combine,
  globalStateCodec,
  noStateCodec,
  setsCodec,
  sgd,
  trainFromDownload,
  weightedMean,
} from './common.js';
import { fedavg } from './fedavg.js';
import type { AlgorithmContext, ClientRun, Upload } from './types.js';

beforeAll(async () => {
  await initBackend('wasm');
});

type Vals = Record<string, number[]>;

const set = (v: Vals, shapes: Record<string, number[]> = {}): ParamArrays =>
  Object.fromEntries(
    Object.entries(v).map(([k, xs]) => [
      k,
      { shape: shapes[k] ?? [xs.length], data: Float32Array.from(xs) },
    ]),
  );
const vals = (a: ParamArrays): Vals =>
  Object.fromEntries(Object.entries(a).map(([k, v]) => [k, Array.from(v.data)]));
const close = (v: Vals, digits = 5) =>
  Object.fromEntries(
    Object.entries(v).map(([k, xs]) => [k, xs.map((x) => expect.closeTo(x, digits))]),
  );
/** a + s * b, element-wise, over the keys of a. */
const axpy = (a: Vals, s: number, b: Vals): Vals =>
  Object.fromEntries(Object.entries(a).map(([k, xs]) => [k, xs.map((x, i) => x + s * b[k]![i]!)]));

describe('combine, weightedMean and addArrays', () => {
  const a = set({ k: [1, 2, 3, 4], b: [10] }, { k: [2, 2] });
  const b = set({ k: [5, 6, 7, 8], b: [-2] }, { k: [2, 2] });

  it('maps every element of every tensor over the sets, keeping shapes', () => {
    const out = combine([a, b], (v) => v[0]! * 10 + v[1]!);
    expect(vals(out)).toEqual({ k: [15, 26, 37, 48], b: [98] });
    expect(out['k']!.shape).toEqual([2, 2]);
    expect(out['b']!.shape).toEqual([1]);
    expect(out['k']!.shape).not.toBe(a['k']!.shape);
  });

  it('normalises the weights of the mean', () => {
    // weights 1 and 3 -> 1/4 and 3/4
    expect(vals(weightedMean([a, b], [1, 3]))).toEqual(close({ k: [4, 5, 6, 7], b: [1] }));
    expect(vals(weightedMean([a, b], [2, 2]))).toEqual(close({ k: [3, 4, 5, 6], b: [4] }));
    expect(vals(weightedMean([b], [0.5]))).toEqual(close(vals(b)));
  });

  it('refuses weights that do not sum to a positive number', () => {
    expect(() => weightedMean([a, b], [0, 0])).toThrow(/weights must sum to a positive/);
    expect(() => weightedMean([a, b], [1, -2])).toThrow(/weights must sum to a positive/);
    expect(() => weightedMean([a], [Number.NaN])).toThrow(/weights must sum to a positive/);
  });

  it('names the tensor that is missing or of another size', () => {
    const short = set({ k: [1, 2, 3], b: [1] });
    expect(() => combine([a, short], (v) => v[0]!)).toThrow(
      "combine: 'k' missing or of another size",
    );
    expect(() => weightedMean([a, set({ k: [1, 2, 3, 4] })], [1, 1])).toThrow(
      "combine: 'b' missing or of another size",
    );
    expect(() => addArrays(a, short)).toThrow("addArrays: 'k' missing or of another size");
    expect(() => addArrays(a, set({ k: [1, 2, 3, 4] }))).toThrow(
      "addArrays: 'b' missing or of another size",
    );
  });

  it('adds two sets tensor by tensor, keeping the first one’s shapes', () => {
    const out = addArrays(a, b);
    expect(vals(out)).toEqual({ k: [6, 8, 10, 12], b: [8] });
    expect(out['k']!.shape).toEqual([2, 2]);
    // a's data is left as it was
    expect(Array.from(a['k']!.data)).toEqual([1, 2, 3, 4]);
  });
});

describe('state codecs', () => {
  const x = set({ k: [1, 2] });
  const y = set({ k: [3] });

  it('writes the required and present optional sets and the numbers, and reads them back', () => {
    const codec = setsCodec({ required: ['dual'], optional: ['hint'], scalars: ['alpha'] });
    const full = codec.toRecord({ dual: x, hint: y, alpha: 0.25 });
    expect(full).toEqual({ tensors: { dual: x, hint: y }, scalars: { alpha: 0.25 } });
    expect(codec.fromRecord(full, 'f')).toEqual({ dual: x, hint: y, alpha: 0.25 });
    const partial = codec.toRecord({ dual: x, alpha: 1 });
    expect(Object.keys(partial.tensors)).toEqual(['dual']);
    expect(codec.fromRecord(partial, 'f')).toEqual({ dual: x, alpha: 1 });
    expect(codec.fromRecord(partial, 'f')).not.toHaveProperty('hint');
  });

  it('names the source and the missing set or number', () => {
    const codec = setsCodec({ required: ['dual'], scalars: ['alpha'] });
    expect(() => codec.fromRecord({ tensors: {}, scalars: { alpha: 1 } }, 'ckpt.bin')).toThrow(
      "ckpt.bin: the state lacks its 'dual' tensors",
    );
    expect(() => codec.fromRecord({ tensors: { dual: x } }, 'ckpt.bin')).toThrow(
      "ckpt.bin: the state lacks its number 'alpha'",
    );
    expect(() =>
      codec.fromRecord({ tensors: { dual: x }, scalars: { beta: 1 } }, 'store/3'),
    ).toThrow("store/3: the state lacks its number 'alpha'");
  });

  it('needs nothing that was not named', () => {
    const codec = setsCodec({ optional: ['hint'] });
    expect(codec.toRecord({})).toEqual({ tensors: {} });
    expect(codec.fromRecord({ tensors: {} }, 'f')).toEqual({});
    expect(codec.fromRecord({ tensors: { hint: y } }, 'f')).toEqual({ hint: y });
  });

  it('stores an empty state as no tensors and no numbers', () => {
    expect(noStateCodec.toRecord({})).toEqual({ tensors: {} });
    expect(noStateCodec.toRecord({})).not.toHaveProperty('scalars');
    expect(noStateCodec.fromRecord({ tensors: { stray: x } }, 'f')).toEqual({});
  });

  it('keeps a global-only server state in the record’s global slot', () => {
    const record = globalStateCodec.toRecord({ global: x });
    expect(record).toEqual({ global: x, tensors: {} });
    expect(globalStateCodec.fromRecord(record, 'f')).toEqual({ global: x });
    expect(() => globalStateCodec.fromRecord({ tensors: { global: x } }, 'run/ckpt')).toThrow(
      'run/ckpt: the server state lacks its global model',
    );
  });
});

describe('averagingServer (FedAvg’s server part)', () => {
  const init = set({ k: [1, 2], b: [0] });
  const up = (v: Vals, numSamples: number): Upload => ({
    round: 0,
    params: denseParams(set(v)),
    numSamples,
    trainLoss: 0,
    trainAcc: 0,
  });
  const uploads = [
    { client: 3, upload: up({ k: [2, 4], b: [1] }, 1) },
    { client: 0, upload: up({ k: [6, 0], b: [5] }, 3) },
  ];

  it('sends the global model dense with the round, to training and to evaluation', () => {
    const server = averagingServer(true);
    const s = server.initServer(init);
    expect(server.global(s)).toBe(init);
    for (const down of [server.download(s, 4, 1), server.evalDownload(s, 4)]) {
      expect(down.round).toBe(4);
      expect(down.params).toEqual(denseParams(init));
      expect(down.extra).toBeUndefined();
    }
  });

  it('replaces the global model by the sample-weighted mean of the uploads', async () => {
    const server = averagingServer(true);
    const r = await server.aggregate(server.initServer(init), 0, uploads);
    // (1 * [2, 4, 1] + 3 * [6, 0, 5]) / 4
    expect(vals(r.server.global)).toEqual(close({ k: [5, 1], b: [4] }));
    expect(r.stats).toEqual({});
    expect(server.global(r.server)).toBe(r.server.global);
  });

  it('weights every upload equally when not weighted', async () => {
    const server = averagingServer(false);
    const r = await server.aggregate(server.initServer(init), 0, uploads);
    expect(vals(r.server.global)).toEqual(close({ k: [4, 2], b: [3] }));
  });
});

describe('the local SGD pass (FedAvg’s client)', () => {
  const model: Model = createModel('mlp', { inputShape: [2, 1, 1], classes: 2, hidden: [] });
  const W: Vals = { 'out.kernel': [0.3, -0.2, 0.1, 0.4], 'out.bias': [0.05, -0.05] };
  const toSet = (v: Vals): ParamArrays =>
    Object.fromEntries(
      model.spec.map((p) => [p.name, { shape: [...p.shape], data: Float32Array.from(v[p.name]!) }]),
    );
  const ctx = (train = {}): AlgorithmContext => ({
    model,
    numClients: 2,
    train: { lr: 0.5, lrDecay: 1, weightDecay: 0.01, batchSize: 2, epochs: 1, ...train },
  });
  const twoPoints = () =>
    toTensors(Float32Array.from([1, -2, 0.5, 1.5]), Int32Array.from([1, 0]), [2, 1, 1]);
  const run = (data: DataTensors, lr = 0.5): ClientRun => ({
    client: 1,
    round: 3,
    lr,
    data,
    rng: new Rng(7),
  });

  /** Mean cross-entropy and its gradient at `p` on `data`, from the model's forward pass. */
  function lossAndGrad(p: Vals, data: DataTensors): { loss: number; grad: Vals } {
    return tf.tidy(() => {
      const names = model.spec.map((s) => s.name);
      const ts = names.map((k, i) => tf.tensor(p[k]!, [...model.spec[i]!.shape]));
      const { value, grads } = tf.valueAndGrads((...xs: tf.Tensor[]) => {
        const params = Object.fromEntries(names.map((k, i) => [k, xs[i]!]));
        const logits = model.forward(params, data.x);
        return tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(data.y, 2), tf.logSoftmax(logits)), 1)));
      })(ts);
      return {
        loss: value.dataSync()[0]!,
        grad: Object.fromEntries(names.map((k, i) => [k, Array.from(grads[i]!.dataSync())])),
      };
    });
  }

  it('uploads E steps of w - lr (grad + wd w), with the sample count, the round and the last epoch’s loss', async () => {
    const algo = fedavg(ctx({ epochs: 2 }));
    const data = twoPoints();
    const down = algo.server.download(algo.server.initServer(toSet(W)), 3, 1);
    const before = tf.memory().numTensors;
    const r = await algo.client.train(down, algo.client.initClient(1, toSet(W)), run(data));
    expect(tf.memory().numTensors).toBe(before);
    const step = (w: Vals) => axpy(w, -0.5, axpy(lossAndGrad(w, data).grad, 0.01, w));
    const w1 = step(W);
    expect(vals(decodeParams(r.upload.params))).toEqual(close(step(w1)));
    expect(r.upload.round).toBe(3);
    expect(r.upload.numSamples).toBe(2);
    // The last epoch's loss is the loss before its only step, at w1.
    expect(r.upload.trainLoss).toBeCloseTo(lossAndGrad(w1, data).loss, 5);
    expect(r.upload.trainAcc).toBeGreaterThanOrEqual(0);
    expect(r.upload.trainAcc).toBeLessThanOrEqual(1);
    expect(r.state).toEqual({});
    expect(algo.client.personalModel(r.state, toSet(W), run(data))).toBeNull();
    disposeData(data);
  });

  it('trains from the download with the transform built on the start model', async () => {
    const data = twoPoints();
    const started: number[][] = [];
    const up = await trainFromDownload(
      ctx(),
      { round: 5, params: denseParams(toSet(W)) },
      run(data, 0.2),
      (start) => {
        started.push(Array.from(start['out.bias']!.dataSync()));
        return addDecayedWeights(0);
      },
    );
    expect(started).toEqual([[expect.closeTo(0.05, 6), expect.closeTo(-0.05, 6)]]);
    expect(vals(decodeParams(up.params))).toEqual(close(axpy(W, -0.2, lossAndGrad(W, data).grad)));
    expect(up.round).toBe(5);
    disposeData(data);
  });

  it('reports the step count, and NaN loss and accuracy when no epoch ran', async () => {
    const data = twoPoints();
    const start = fromArrays(toSet(W));
    const two = await sgd(ctx({ batchSize: 1 }), run(data), start, 2);
    expect(two.steps).toBe(4);
    expect(Number.isFinite(two.loss)).toBe(true);
    const none = await sgd(ctx(), run(data), start, 0);
    expect(none.steps).toBe(0);
    expect(none.loss).toBeNaN();
    expect(none.acc).toBeNaN();
    expect(vals(toArrays(none.params))).toEqual(close(W));
    disposeParams(two.params, none.params, start);
    disposeData(data);
  });
});
