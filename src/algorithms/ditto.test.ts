/**
 * Ditto's client on a hand-computed case: a linear model on two points, batch = all points, so
 * every step is known. The global copy takes E steps of w - lr (grad + wd w) from W^t; the
 * personal model takes its own number of steps of v - lr (grad + lambda (v - W^t) + wd v).
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeParams } from '../codec/params.js';
import { createModel } from '../models/index.js';
import { initBackend } from '../tensor/backend.js';
import type { ParamArrays } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { type DataTensors, disposeData, toTensors } from '../train/loop.js';
import { ditto } from './ditto.js';
import type { ClientRun } from './types.js';

beforeAll(async () => {
  await initBackend('wasm');
});

type Vals = Record<string, number[]>;
const model = createModel('mlp', { inputShape: [2, 1, 1], classes: 2, hidden: [] });
const W: Vals = { 'out.kernel': [0.3, -0.2, 0.1, 0.4], 'out.bias': [0.05, -0.05] };
const V: Vals = { 'out.kernel': [-0.1, 0.5, 0.2, -0.3], 'out.bias': [0.2, 0.1] };

const toSet = (v: Vals): ParamArrays =>
  Object.fromEntries(
    model.spec.map((p) => [p.name, { shape: [...p.shape], data: Float32Array.from(v[p.name]!) }]),
  );
const vals = (a: ParamArrays): Vals =>
  Object.fromEntries(Object.entries(a).map(([k, v]) => [k, Array.from(v.data)]));
const close = (v: Vals) =>
  Object.fromEntries(Object.entries(v).map(([k, xs]) => [k, xs.map((x) => expect.closeTo(x, 5))]));
const axpy = (a: Vals, s: number, b: Vals): Vals =>
  Object.fromEntries(Object.entries(a).map(([k, xs]) => [k, xs.map((x, i) => x + s * b[k]![i]!)]));

/** Mean cross-entropy at `p` on `data` and its gradient, from the model's forward pass. */
function lossAndGrad(p: Vals, data: DataTensors): { loss: number; grad: Vals } {
  return tf.tidy(() => {
    const names = model.spec.map((s) => s.name);
    const ts = names.map((k, i) => tf.tensor(p[k]!, [...model.spec[i]!.shape]));
    const { value, grads } = tf.valueAndGrads((...xs: tf.Tensor[]) => {
      const logits = model.forward(Object.fromEntries(names.map((k, i) => [k, xs[i]!])), data.x);
      return tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(data.y, 2), tf.logSoftmax(logits)), 1)));
    })(ts);
    return {
      loss: value.dataSync()[0]!,
      grad: Object.fromEntries(names.map((k, i) => [k, Array.from(grads[i]!.dataSync())])),
    };
  });
}

const ctx = {
  model,
  numClients: 3,
  train: { lr: 0.5, lrDecay: 1, weightDecay: 0.01, batchSize: 2, epochs: 1 },
};
const run = (data: DataTensors): ClientRun => ({
  client: 2,
  round: 1,
  lr: 0.5,
  data,
  rng: new Rng(3),
});

describe('Ditto', () => {
  it('uploads the global copy trained E epochs and keeps v trained its own epochs, pulled to W^t', async () => {
    const algo = ditto(ctx, { lambda: 0.7, personalEpochs: 2, weighted: true });
    expect([algo.name, algo.hasGlobal, algo.hasPersonal]).toEqual(['ditto', true, true]);
    const data = toTensors(
      Float32Array.from([1, -2, 0.5, 1.5]),
      Int32Array.from([1, 0]),
      [2, 1, 1],
    );
    const down = algo.server.download(algo.server.initServer(toSet(W)), 1, 2);
    const before = tf.memory().numTensors;
    const r = await algo.client.train(down, { personal: toSet(V) }, run(data));
    expect(tf.memory().numTensors).toBe(before);

    const w1 = axpy(W, -0.5, axpy(lossAndGrad(W, data).grad, 0.01, W));
    expect(vals(decodeParams(r.upload.params))).toEqual(close(w1));
    expect(r.upload.round).toBe(1);
    expect(r.upload.numSamples).toBe(2);
    // The upload reports the global copy's loss (its only epoch starts at W), not v's.
    expect(r.upload.trainLoss).toBeCloseTo(lossAndGrad(W, data).loss, 5);
    expect(r.upload.trainLoss).not.toBeCloseTo(lossAndGrad(V, data).loss, 3);

    const vStep = (v: Vals) =>
      axpy(v, -0.5, axpy(axpy(lossAndGrad(v, data).grad, 0.7, axpy(v, -1, W)), 0.01, v));
    const v2 = vStep(vStep(V));
    expect(vals(r.state.personal)).toEqual(close(v2));
    expect(vals((await algo.client.personalModel(r.state, toSet(W), run(data)))!)).toEqual(
      close(v2),
    );
    disposeData(data);
  });

  it('trains v for the global epochs when personalEpochs is not set, and starts v at the init', async () => {
    const algo = ditto(
      { ...ctx, train: { ...ctx.train, epochs: 2 } },
      { lambda: 0, weighted: true },
    );
    const data = toTensors(
      Float32Array.from([1, -2, 0.5, 1.5]),
      Int32Array.from([1, 0]),
      [2, 1, 1],
    );
    const state = algo.client.initClient(0, toSet(V));
    expect(vals(state.personal)).toEqual(close(V));
    const r = await algo.client.train(
      algo.server.download(algo.server.initServer(toSet(W)), 0, 0),
      state,
      run(data),
    );
    const step = (v: Vals) => axpy(v, -0.5, axpy(lossAndGrad(v, data).grad, 0.01, v));
    expect(vals(r.state.personal)).toEqual(close(step(step(V))));
    expect(vals(decodeParams(r.upload.params))).toEqual(close(step(step(W))));
    disposeData(data);
  });
});
