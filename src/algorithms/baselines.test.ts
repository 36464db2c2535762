/**
 * The baselines' update rules on hand-computed cases: a linear model (or one hidden layer for the
 * head/body splits) on one or two points, batch = all points, so every local step is known. Loss
 * gradients come from tf.grads on the model's forward pass, independently of the training loop.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeParams } from '../codec/params.js';
import { denseParams } from '../codec/wire.js';
import { createModel, type Model } from '../models/index.js';
import { initBackend } from '../tensor/backend.js';
import type { ParamArrays } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { type DataTensors, disposeData, toTensors } from '../train/loop.js';
import { apfl } from './apfl.js';
import { clientBatches } from './batches.js';
import { ditto } from './ditto.js';
import { fedavg } from './fedavg.js';
import { fedavgft } from './fedavgft.js';
import { feddyn } from './feddyn.js';
import { fedper } from './fedper.js';
import { fedprox } from './fedprox.js';
import { fedrep } from './fedrep.js';
import { lgfedavg } from './lgfedavg.js';
import { local } from './local.js';
import { perfedavg } from './perfedavg.js';
import { scaffold } from './scaffold.js';
import { headNames } from './split.js';
import type { Algorithm, AlgorithmContext, ClientRun, Download, Upload } from './types.js';

beforeAll(async () => {
  await initBackend('wasm');
});

type Vals = Record<string, number[]>;

const linear = createModel('mlp', { inputShape: [2, 1, 1], classes: 2, hidden: [] });
const hidden = createModel('mlp', { inputShape: [2, 1, 1], classes: 2, hidden: [3] });

function ctx(model: Model, train = {}, numClients = 4): AlgorithmContext {
  return {
    model,
    numClients,
    train: { lr: 0.5, lrDecay: 1, weightDecay: 0.01, batchSize: 2, epochs: 1, ...train },
  };
}

const toSet = (v: Vals, model: Model): ParamArrays =>
  Object.fromEntries(
    model.spec.map((p) => [p.name, { shape: [...p.shape], data: Float32Array.from(v[p.name]!) }]),
  );
const vals = (a: ParamArrays): Vals =>
  Object.fromEntries(Object.entries(a).map(([k, v]) => [k, Array.from(v.data)]));
const close = (v: Vals) =>
  Object.fromEntries(Object.entries(v).map(([k, xs]) => [k, xs.map((x) => expect.closeTo(x, 5))]));
/** a + s * b, element-wise, over the keys of a. */
const axpy = (a: Vals, s: number, b: Vals): Vals =>
  Object.fromEntries(Object.entries(a).map(([k, xs]) => [k, xs.map((x, i) => x + s * b[k]![i]!)]));
const scale = (a: Vals, s: number): Vals =>
  Object.fromEntries(Object.entries(a).map(([k, xs]) => [k, xs.map((x) => s * x)]));
const pick = (a: Vals, keys: string[]): Vals => Object.fromEntries(keys.map((k) => [k, a[k]!]));
const dot = (a: Vals, b: Vals) =>
  Object.keys(a).reduce((s, k) => s + a[k]!.reduce((t, x, i) => t + x * b[k]![i]!, 0), 0);

/** Gradient of the mean cross-entropy of `model` at `p` on all of `data`. */
function grad(model: Model, p: Vals, data: DataTensors): Vals {
  return tf.tidy(() => {
    const names = model.spec.map((s) => s.name);
    const ts = names.map((k, i) => tf.tensor(p[k]!, [...model.spec[i]!.shape]));
    const gs = tf.grads((...xs: tf.Tensor[]) => {
      const params = Object.fromEntries(names.map((k, i) => [k, xs[i]!]));
      const logits = model.forward(params, data.x);
      return tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(data.y, 2), tf.logSoftmax(logits)), 1)));
    })(ts);
    return Object.fromEntries(names.map((k, i) => [k, Array.from(gs[i]!.dataSync())]));
  });
}

/** Mean cross-entropy of `model` at `p` on all of `data`. */
function lossAt(model: Model, p: Vals, data: DataTensors): number {
  return tf.tidy(() => {
    const params = Object.fromEntries(
      model.spec.map((s) => [s.name, tf.tensor(p[s.name]!, [...s.shape])]),
    );
    const logits = model.forward(params, data.x);
    const ce = tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(data.y, 2), tf.logSoftmax(logits)), 1)));
    return ce.dataSync()[0]!;
  });
}

/** Share of `data` whose largest logit under `model` at `p` is the label. */
function accAt(model: Model, p: Vals, data: DataTensors): number {
  return tf.tidy(() => {
    const params = Object.fromEntries(
      model.spec.map((s) => [s.name, tf.tensor(p[s.name]!, [...s.shape])]),
    );
    const hits = tf.equal(tf.argMax(model.forward(params, data.x), 1), data.y);
    return tf.mean(tf.cast(hits, 'float32')).dataSync()[0]!;
  });
}

const twoPoints = () =>
  toTensors(Float32Array.from([1, -2, 0.5, 1.5]), Int32Array.from([1, 0]), [2, 1, 1]);
/** The two points one at a time, as one-sample data sets. */
const pointOf = (i: number) =>
  i === 0
    ? toTensors(Float32Array.from([1, -2]), Int32Array.from([1]), [2, 1, 1])
    : toTensors(Float32Array.from([0.5, 1.5]), Int32Array.from([0]), [2, 1, 1]);
const noPoints = () => toTensors(new Float32Array(0), new Int32Array(0), [2, 1, 1]);
const run = (data: DataTensors, lr = 0.5): ClientRun => ({
  client: 0,
  round: 0,
  lr,
  data,
  rng: new Rng(7),
});
const upload = (p: ParamArrays, extra?: Upload['extra']): Upload => ({
  round: 0,
  params: denseParams(p),
  extra,
  numSamples: 1,
  trainLoss: 0,
  trainAcc: 0,
});

const W: Vals = { 'out.kernel': [0.3, -0.2, 0.1, 0.4], 'out.bias': [0.05, -0.05] };
const H: Vals = {
  'fc1.kernel': [0.2, -0.1, 0.4, 0.3, 0.5, -0.2],
  'fc1.bias': [0.1, 0, -0.1],
  'out.kernel': [0.3, -0.2, 0.1, 0.4, -0.3, 0.2],
  'out.bias': [0.05, -0.05],
};

/** Trains one client and checks that no tensor outlives the call. */
async function train<S, C>(algo: Algorithm<S, C>, down: Download, state: C, r: ClientRun) {
  const before = tf.memory().numTensors;
  const out = await algo.client.train(down, state, r);
  expect(tf.memory().numTensors).toBe(before);
  return out;
}

describe('SCAFFOLD', () => {
  it('corrects every step by c - c_i and updates c_i by option II with K local steps', async () => {
    const c = ctx(linear, { epochs: 2 });
    const algo = scaffold(c);
    const data = twoPoints();
    const cs: Vals = { 'out.kernel': [0.1, -0.1, 0.2, 0], 'out.bias': [0.05, 0.1] };
    const ci: Vals = { 'out.kernel': [0, 0.3, -0.1, 0.1], 'out.bias': [-0.2, 0] };
    const server = { global: toSet(W, linear), control: toSet(cs, linear) };
    const down = algo.server.download(server, 0, 0);
    expect(vals(down.extra!['control']!)).toEqual(close(cs));
    const r = await train(algo, down, { control: toSet(ci, linear) }, run(data));
    const corr = axpy(cs, -1, ci);
    const step = (w: Vals) => axpy(w, -0.5, axpy(axpy(grad(linear, w, data), 1, corr), 0.01, w));
    const y = step(step(W));
    expect(vals(decodeParams(r.upload.params))).toEqual(close(y));
    // K = 2 epochs x 1 batch: c_i+ = c_i - c + (x - y) / (2 lr)
    const ciNext = axpy(axpy(ci, -1, cs), 1 / (2 * 0.5), axpy(W, -1, y));
    expect(vals(r.state.control!)).toEqual(close(ciNext));
    expect(vals(r.upload.extra!['controlDelta']!)).toEqual(close(axpy(ciNext, -1, ci)));
    disposeData(data);
  });

  it('moves x by lr_g times the mean model change and c by the sum of deltas over N', async () => {
    const algo = scaffold(ctx(linear, {}, 4), { serverLr: 0.5 });
    const x = { 'out.kernel': [1, 2, 3, 4], 'out.bias': [0, 1] };
    const s0 = { global: toSet(x, linear), control: toSet(scale(x, 0), linear) };
    const y1 = { 'out.kernel': [3, 2, 3, 4], 'out.bias': [2, 1] };
    const y2 = { 'out.kernel': [1, 0, 3, 4], 'out.bias': [0, 3] };
    const d1 = { 'out.kernel': [4, 0, 0, 0], 'out.bias': [0, 0] };
    const d2 = { 'out.kernel': [0, 0, 0, 8], 'out.bias': [4, 4] };
    const r = await algo.server.aggregate(s0, 0, [
      { client: 0, upload: upload(toSet(y1, linear), { controlDelta: toSet(d1, linear) }) },
      { client: 2, upload: upload(toSet(y2, linear), { controlDelta: toSet(d2, linear) }) },
    ]);
    expect(vals(r.server.global!)).toEqual(
      close({ 'out.kernel': [1.5, 1.5, 3, 4], 'out.bias': [0.5, 1.5] }),
    );
    expect(vals(r.server.control)).toEqual(
      close({ 'out.kernel': [1, 0, 0, 2], 'out.bias': [1, 1] }),
    );
  });
});

describe('SCAFFOLD state and messages', () => {
  const zero: Vals = { 'out.kernel': [0, 0, 0, 0], 'out.bias': [0, 0] };

  it('starts c at zero, sends it only for training, and stores x and c', () => {
    const algo = scaffold(ctx(linear));
    const s0 = algo.server.initServer(toSet(W, linear));
    expect(vals(s0.control)).toEqual(zero);
    const down = algo.server.download(s0, 3, 1);
    expect([down.round, vals(decodeParams(down.params))]).toEqual([3, close(W)]);
    expect(vals(down.extra!['control']!)).toEqual(zero);
    expect(algo.server.evalDownload(s0, 3).extra).toBeUndefined();
    const record = algo.server.codec.toRecord(s0);
    expect(record).toEqual({ global: s0.global, tensors: { control: s0.control } });
    expect(algo.server.codec.fromRecord(record, 'f')).toEqual(s0);
    expect(() => algo.server.codec.fromRecord({ global: s0.global, tensors: {} }, 'ck/1')).toThrow(
      'ck/1: the server state lacks its global model or control variate',
    );
    expect(() =>
      algo.server.codec.fromRecord({ tensors: { control: s0.control } }, 'ck/1'),
    ).toThrow(/lacks its global model/);
    expect(algo.server.global(s0)).toBe(s0.global);
  });

  it("takes a never-drawn client's c_i as zero, and leaves c_i when no step was taken", async () => {
    const algo = scaffold(ctx(linear));
    const data = twoPoints();
    const cs: Vals = { 'out.kernel': [0.1, -0.1, 0.2, 0], 'out.bias': [0.05, 0.1] };
    const server = { global: toSet(W, linear), control: toSet(cs, linear) };
    const down = algo.server.download(server, 0, 0);
    expect(algo.client.initClient(0, toSet(W, linear))).toEqual({});
    const fresh = await train(algo, down, {}, run(data));
    const zeroed = await train(algo, down, { control: toSet(zero, linear) }, run(data));
    expect(vals(decodeParams(fresh.upload.params))).toEqual(
      vals(decodeParams(zeroed.upload.params)),
    );
    expect(vals(fresh.state.control!)).toEqual(vals(zeroed.state.control!));
    // One step: y = x - lr (grad + c + wd x), c_i+ = -c + (x - y) / lr.
    const y = axpy(W, -0.5, axpy(axpy(grad(linear, W, data), 1, cs), 0.01, W));
    expect(vals(decodeParams(fresh.upload.params))).toEqual(close(y));
    expect(vals(fresh.state.control!)).toEqual(close(axpy(scale(cs, -1), 2, axpy(W, -1, y))));

    // Two samples, batches of 4 dropped when short: no step, so c_i stays and Delta c_i is zero.
    const idle = scaffold(ctx(linear, { batchSize: 4, lastBatch: 'drop' }));
    const ci: Vals = { 'out.kernel': [0, 0.3, -0.1, 0.1], 'out.bias': [-0.2, 0] };
    const r = await train(idle, down, { control: toSet(ci, linear) }, run(data));
    expect(vals(r.state.control!)).toEqual(close(ci));
    expect(vals(r.upload.extra!['controlDelta']!)).toEqual(zero);
    expect(vals(decodeParams(r.upload.params))).toEqual(close(W));
    disposeData(data);
  });

  it('refuses a download without c and an upload without Delta c_i, naming the client', async () => {
    const algo = scaffold(ctx(linear));
    const data = twoPoints();
    const s0 = algo.server.initServer(toSet(W, linear));
    await expect(algo.client.train(algo.server.evalDownload(s0, 0), {}, run(data))).rejects.toThrow(
      "scaffold: the download lacks the server control variate 'control'",
    );
    await expect(
      algo.server.aggregate(s0, 0, [{ client: 5, upload: upload(toSet(W, linear)) }]),
    ).rejects.toThrow("scaffold: client 5's upload lacks 'controlDelta'");
    disposeData(data);
  });
});

describe('Local', () => {
  it('trains the client’s own model, shares nothing and uploads only its counts', async () => {
    const algo = local(ctx(linear, { epochs: 2 }));
    expect([algo.name, algo.hasGlobal, algo.hasPersonal]).toEqual(['local', false, true]);
    const s0 = algo.server.initServer(toSet(W, linear));
    expect(s0).toEqual({});
    expect(algo.server.global(s0)).toBeUndefined();
    expect(algo.server.evalDownload(s0, 2)).toEqual({ round: 2, params: {} });
    const down = algo.server.download(s0, 2, 1);
    expect(down).toEqual({ round: 2, params: {} });
    const V: Vals = { 'out.kernel': [-0.1, 0.5, 0.2, -0.3], 'out.bias': [0.2, 0.1] };
    const state = algo.client.initClient(1, toSet(V, linear));
    expect(vals(state.personal)).toEqual(close(V));
    const data = twoPoints();
    const r = await train(algo, down, state, run(data));
    const step = (w: Vals) => axpy(w, -0.5, axpy(grad(linear, w, data), 0.01, w));
    expect(vals(r.state.personal)).toEqual(close(step(step(V))));
    expect(vals((await algo.client.personalModel(r.state, undefined, run(data)))!)).toEqual(
      close(step(step(V))),
    );
    expect([r.upload.round, r.upload.params, r.upload.numSamples]).toEqual([2, {}, 2]);
    expect(Number.isFinite(r.upload.trainLoss)).toBe(true);
    expect((await algo.server.aggregate(s0, 2, [{ client: 1, upload: r.upload }])).server).toBe(s0);
    disposeData(data);
  });
});

describe('Ditto', () => {
  const V: Vals = { 'out.kernel': [-0.1, 0.5, 0.2, -0.3], 'out.bias': [0.2, 0.1] };

  it('uploads the global copy trained E epochs and keeps v trained its own epochs, pulled to W^t', async () => {
    const algo = ditto(ctx(linear), { lambda: 0.7, personalEpochs: 2, weighted: true });
    expect([algo.name, algo.hasGlobal, algo.hasPersonal]).toEqual(['ditto', true, true]);
    const data = twoPoints();
    const down = algo.server.download(algo.server.initServer(toSet(W, linear)), 1, 2);
    const r = await train(algo, down, { personal: toSet(V, linear) }, run(data));
    const w1 = axpy(W, -0.5, axpy(grad(linear, W, data), 0.01, W));
    expect(vals(decodeParams(r.upload.params))).toEqual(close(w1));
    expect([r.upload.round, r.upload.numSamples]).toEqual([1, 2]);
    // The upload reports the global copy's loss (its only epoch starts at W), not v's.
    expect(r.upload.trainLoss).toBeCloseTo(lossAt(linear, W, data), 5);
    expect(r.upload.trainLoss).not.toBeCloseTo(lossAt(linear, V, data), 3);
    // v <- v - lr (grad + lambda (v - W^t) + wd v), twice.
    const vStep = (v: Vals) =>
      axpy(v, -0.5, axpy(axpy(grad(linear, v, data), 0.7, axpy(v, -1, W)), 0.01, v));
    const v2 = vStep(vStep(V));
    expect(vals(r.state.personal)).toEqual(close(v2));
    expect(vals((await algo.client.personalModel(r.state, toSet(W, linear), run(data)))!)).toEqual(
      close(v2),
    );
    disposeData(data);
  });

  it('trains v for the global epochs when personalEpochs is not set, and starts v at the init', async () => {
    const algo = ditto(ctx(linear, { epochs: 2 }), { lambda: 0, weighted: true });
    const data = twoPoints();
    const state = algo.client.initClient(0, toSet(V, linear));
    expect(vals(state.personal)).toEqual(close(V));
    const down = algo.server.download(algo.server.initServer(toSet(W, linear)), 0, 0);
    const r = await train(algo, down, state, run(data));
    const step = (v: Vals) => axpy(v, -0.5, axpy(grad(linear, v, data), 0.01, v));
    expect(vals(r.state.personal)).toEqual(close(step(step(V))));
    expect(vals(decodeParams(r.upload.params))).toEqual(close(step(step(W))));
    disposeData(data);
  });
});

describe('what each baseline keeps and evaluates', () => {
  it('names itself, has a global model and no personal one, and keeps no client state (FedAvg, FedProx, SCAFFOLD)', () => {
    const data = twoPoints();
    const init = toSet(W, linear);
    for (const algo of [
      fedavg(ctx(linear)),
      fedprox(ctx(linear), { mu: 0.1, weighted: true }),
      scaffold(ctx(linear)),
    ]) {
      expect([algo.hasGlobal, algo.hasPersonal], algo.name).toEqual([true, false]);
      expect(algo.client.initClient(0, init)).toEqual({});
      expect(algo.client.personalModel({}, init, run(data))).toBeNull();
    }
    expect(
      [fedavg, scaffold].map((f) => f(ctx(linear)).name).concat(fedprox(ctx(linear)).name),
    ).toEqual(['fedavg', 'scaffold', 'fedprox']);
    // SCAFFOLD's client state is its c_i, stored when there is one.
    const codec = scaffold(ctx(linear)).client.codec;
    const control = toSet(W, linear);
    expect(codec.fromRecord(codec.toRecord({ control }), 'c')).toEqual({ control });
    expect(codec.toRecord({})).toEqual({ tensors: {} });
    disposeData(data);
  });
});

describe('FedProx', () => {
  it('adds mu (w - W^t) to the gradient (zero on the first step)', async () => {
    const algo = fedprox(ctx(linear, { epochs: 2 }), { mu: 0.7, weighted: true });
    const data = twoPoints();
    const down = algo.server.download(algo.server.initServer(toSet(W, linear)), 0, 0);
    const r = await train(algo, down, algo.client.initClient(0, toSet(W, linear)), run(data));
    const y1 = axpy(W, -0.5, axpy(grad(linear, W, data), 0.01, W));
    const g2 = axpy(axpy(grad(linear, y1, data), 0.7, axpy(y1, -1, W)), 0.01, y1);
    expect(vals(decodeParams(r.upload.params))).toEqual(close(axpy(y1, -0.5, g2)));
    disposeData(data);
  });
});

describe('FedDyn', () => {
  it("is FedSLR's stage 1 and dual update, with no personal part", async () => {
    const algo = feddyn(ctx(linear), { alpha: 0.2 });
    expect([algo.name, algo.hasGlobal, algo.hasPersonal]).toEqual(['feddyn', true, false]);
    const data = twoPoints();
    const pi: Vals = { 'out.kernel': [0.1, 0.2, -0.1, 0], 'out.bias': [0.3, 0] };
    const down = algo.server.download(algo.server.initServer(toSet(W, linear)), 0, 0);
    const r = await train(algo, down, { dual: toSet(pi, linear) }, run(data));
    // w = W - lr (grad f(W) - pi + wd W); pi <- pi + alpha (W - w)
    const w = axpy(W, -0.5, axpy(axpy(grad(linear, W, data), -1, pi), 0.01, W));
    expect(vals(decodeParams(r.upload.params))).toEqual(close(w));
    expect(vals(r.state.dual!)).toEqual(close(axpy(pi, 0.2, axpy(W, -1, w))));
    expect(Object.keys(r.state)).toEqual(['dual']);
    expect(await algo.client.personalModel(r.state, toSet(W, linear), run(data))).toBeNull();
    disposeData(data);
  });

  it('takes V = mean w - D/(alpha N) as the new model, with no singular-value thresholding', async () => {
    // A matrix FedSLR would threshold (singular values 2 and 0.05); FedDyn keeps it as is.
    const algo = feddyn(ctx(linear, {}, 2), { alpha: 0.5 });
    const w0 = toSet({ 'out.kernel': [1, 0, 0, 0.05], 'out.bias': [0, 0] }, linear);
    const w1 = toSet({ 'out.kernel': [1.5, 0, 0, 0.05], 'out.bias': [1, 0] }, linear);
    const r = await algo.server.aggregate(algo.server.initServer(w0), 0, [
      { client: 0, upload: upload(w1) },
    ]);
    // D = alpha (W - w1) = [-0.25, 0, 0, 0 | -0.5, 0]; V = w1 - D / (alpha N) = w1 - D
    expect(vals(r.server.global!)).toEqual(
      close({ 'out.kernel': [1.75, 0, 0, 0.05], 'out.bias': [1.5, 0] }),
    );
    expect(r.stats.ranks).toBeUndefined();
    expect(algo.server.download(r.server, 1, 0).params['out.kernel']!.kind).toBe('dense');
  });
});

describe('APFL', () => {
  const V: Vals = { 'out.kernel': [-0.1, 0.5, 0.2, -0.3], 'out.bias': [0.2, 0.1] };
  const mix = (a: number, v: Vals, w: Vals) => axpy(scale(v, a), 1 - a, w);

  it('steps w, v and alpha from the same batch and the same iterates', async () => {
    const algo = apfl(ctx(linear), { alpha: 0.4, adaptive: true, weighted: true });
    const data = twoPoints();
    const down = algo.server.download(algo.server.initServer(toSet(W, linear)), 0, 0);
    const state = { personal: toSet(V, linear), alpha: 0.4 };
    const r = await train(algo, down, state, run(data));
    const gbar = grad(linear, mix(0.4, V, W), data);
    const v1 = axpy(V, -0.5, axpy(scale(gbar, 0.4), 0.01, V));
    const a1 = Math.min(1, Math.max(0, 0.4 - 0.5 * dot(axpy(V, -1, W), gbar)));
    const w1 = axpy(W, -0.5, axpy(grad(linear, W, data), 0.01, W));
    expect(vals(decodeParams(r.upload.params))).toEqual(close(w1));
    expect(vals(r.state.personal!)).toEqual(close(v1));
    expect(r.state.alpha).toBeCloseTo(a1, 5);
    expect(a1).not.toBeCloseTo(0.4, 3);
    const G = toSet(scale(W, 2), linear);
    expect(vals((await algo.client.personalModel(r.state, G, run(data)))!)).toEqual(
      close(mix(a1, v1, scale(W, 2))),
    );
    disposeData(data);
  });

  it('carries w, v and alpha from step to step, starting from the client’s own alpha, and reports w’s last epoch', async () => {
    // Two epochs of one batch; the state's alpha (0.4) is a resumed client's, not the option's.
    const algo = apfl(ctx(linear, { epochs: 2 }), { alpha: 0.25, adaptive: true, weighted: true });
    const data = twoPoints();
    const step = (s: { w: Vals; v: Vals; a: number }) => {
      const gbar = grad(linear, mix(s.a, s.v, s.w), data);
      return {
        w: axpy(s.w, -0.5, axpy(grad(linear, s.w, data), 0.01, s.w)),
        v: axpy(s.v, -0.5, axpy(scale(gbar, s.a), 0.01, s.v)),
        a: Math.min(1, Math.max(0, s.a - 0.5 * dot(axpy(s.v, -1, s.w), gbar))),
      };
    };
    const s1 = step({ w: W, v: V, a: 0.4 });
    const s2 = step(s1);
    const down = algo.server.download(algo.server.initServer(toSet(W, linear)), 3, 0);
    const r = await train(algo, down, { personal: toSet(V, linear), alpha: 0.4 }, run(data));
    expect(vals(decodeParams(r.upload.params))).toEqual(close(s2.w));
    expect(vals(r.state.personal!)).toEqual(close(s2.v));
    expect(r.state.alpha).toBeCloseTo(s2.a, 5);
    // The last epoch's one step starts at w_1: its loss and accuracy are w_1's, on both points.
    expect(r.upload.trainLoss).toBeCloseTo(lossAt(linear, s1.w, data), 5);
    expect(r.upload.trainAcc).toBe(accAt(linear, s1.w, data));
    expect([r.upload.round, r.upload.numSamples]).toEqual([3, 2]);
    disposeData(data);
  });

  it('clips alpha to [0, 1]', async () => {
    const algo = apfl(ctx(linear, { lr: 5 }), { alpha: 0.4, adaptive: true, weighted: true });
    const data = twoPoints();
    const down = algo.server.download(algo.server.initServer(toSet(W, linear)), 0, 0);
    const gbar = grad(linear, mix(0.4, V, W), data);
    const raw = 0.4 - 5 * dot(axpy(V, -1, W), gbar);
    expect(raw < 0 || raw > 1).toBe(true);
    const r = await train(algo, down, { personal: toSet(V, linear), alpha: 0.4 }, run(data, 5));
    expect(r.state.alpha).toBe(raw < 0 ? 0 : 1);
    disposeData(data);
  });

  it('takes alpha in [0, 1] only, names itself, and stores v and alpha', () => {
    const opts = { adaptive: true, weighted: true };
    for (const alpha of [0, 1]) expect(apfl(ctx(linear), { ...opts, alpha }).name).toBe('apfl');
    for (const alpha of [-0.1, 1.5, Number.NaN])
      expect(() => apfl(ctx(linear), { ...opts, alpha })).toThrow(
        `apfl alpha: expected a number in [0, 1], got ${alpha}`,
      );
    const algo = apfl(ctx(linear), { ...opts, alpha: 0.4 });
    expect([algo.hasGlobal, algo.hasPersonal]).toEqual([true, true]);
    const state = { personal: toSet(V, linear), alpha: 0.3 };
    const record = algo.client.codec.toRecord(state);
    expect(record).toEqual({ tensors: { personal: state.personal }, scalars: { alpha: 0.3 } });
    expect(algo.client.codec.fromRecord(record, 'c')).toEqual(state);
    expect(() =>
      algo.client.codec.fromRecord({ tensors: {}, scalars: { alpha: 0.3 } }, 'c'),
    ).toThrow("c: the state lacks its 'personal' tensors");
    expect(() =>
      algo.client.codec.fromRecord({ tensors: { personal: state.personal } }, 'c'),
    ).toThrow("c: the state lacks its number 'alpha'");
    expect(() => algo.client.personalModel(state, undefined, run(twoPoints()))).toThrow(
      'apfl: the personal model needs the global model',
    );
  });

  it('keeps alpha fixed when not adaptive', async () => {
    const algo = apfl(ctx(linear), { alpha: 0.4, adaptive: false, weighted: true });
    const data = twoPoints();
    const down = algo.server.download(algo.server.initServer(toSet(W, linear)), 0, 0);
    const r = await train(algo, down, algo.client.initClient(0, toSet(V, linear)), run(data));
    const gbar = grad(linear, mix(0.4, V, W), data);
    expect(r.state.alpha).toBe(0.4);
    expect(vals(r.state.personal!)).toEqual(close(axpy(V, -0.5, axpy(scale(gbar, 0.4), 0.01, V))));
    disposeData(data);
  });
});

describe('head/body splits', () => {
  const body = ['fc1.kernel', 'fc1.bias'];
  const head = ['out.kernel', 'out.bias'];

  it('takes the last dense layer(s) and their biases as the head', () => {
    expect(headNames(hidden.spec, 1)).toEqual(head);
    const cnn = createModel('cnn', { inputShape: [28, 28, 1], classes: 10 });
    expect(headNames(cnn.spec, 1)).toEqual(['fc2.kernel', 'fc2.bias']);
    expect(headNames(cnn.spec, 2)).toEqual(['fc1.kernel', 'fc1.bias', 'fc2.kernel', 'fc2.bias']);
    expect(() => headNames(cnn.spec, 3)).toThrow(
      "headLayers: expected an integer from 1 to 2 (the model's dense layers: fc1, fc2), got 3",
    );
    for (const layers of [0, 1.5])
      expect(() => headNames(cnn.spec, layers)).toThrow(`from 1 to 2 (the model's dense layers`);
    expect(() => headNames(linear.spec, 1)).toThrow(
      'headLayers: 1 leaves no body (the model has 1 dense layers)',
    );
  });

  it('takes a tensor name without a dot as a layer of its own', () => {
    const tensor = (name: string, role: 'dense' | 'bias') => ({ name, role, shape: [2, 2] });
    const spec = [tensor('w1', 'dense'), tensor('w2', 'dense'), tensor('out.kernel', 'dense')];
    expect(headNames([...spec, tensor('out.bias', 'bias')], 2)).toEqual([
      'w2',
      'out.kernel',
      'out.bias',
    ]);
  });

  it('averages the shared part, sent alike to training and evaluation, and keeps the other part', async () => {
    const fp = fedper(ctx(hidden), { headLayers: 1, weighted: false });
    const weighted = fedper(ctx(hidden), { headLayers: 1, weighted: true });
    const s0 = fp.server.initServer(toSet(H, hidden));
    expect(fp.server.evalDownload(s0, 4)).toEqual(fp.server.download(s0, 4, 1));
    expect(fp.server.evalDownload(s0, 4).round).toBe(4);
    expect(fp.server.global(s0)).toBe(s0.global);
    const a = pick(H, body);
    const b = scale(a, 3);
    const bodySet = (v: Vals) => pick2(toSet({ ...H, ...v }, hidden), body);
    const uploads = [
      { client: 0, upload: upload(bodySet(a)) },
      { client: 1, upload: { ...upload(bodySet(b)), numSamples: 3 } },
    ];
    const meanOf = async (algo: typeof fp) =>
      vals((await algo.server.aggregate(s0, 0, uploads)).server.global!);
    expect(await meanOf(fp)).toEqual(close(scale(a, 2)));
    expect(await meanOf(weighted)).toEqual(close(scale(a, 2.5)));
    expect((await fp.server.aggregate(s0, 0, uploads)).stats).toEqual({});
    const local = pick2(toSet(H, hidden), head);
    const record = fp.client.codec.toRecord({ local });
    expect(record).toEqual({ tensors: { local } });
    expect(fp.client.codec.fromRecord(record, 'c')).toEqual({ local });
    expect(() => fp.client.codec.fromRecord({ tensors: {} }, 'c')).toThrow(
      "c: the state lacks its 'local' tensors",
    );
    const names = [fp, fedrep(ctx(hidden)), lgfedavg(ctx(hidden))].map((algo) => {
      expect(() => algo.client.personalModel({ local }, undefined, run(twoPoints()))).toThrow(
        `${algo.name}: the personal model needs the shared part`,
      );
      return algo.name;
    });
    expect(names).toEqual(['fedper', 'fedrep', 'lgfedavg']);
  });

  it('FedRep runs headEpochs on the head and bodyEpochs on the body', async () => {
    const algo = fedrep(ctx(hidden), {
      headLayers: 1,
      headEpochs: 0,
      bodyEpochs: 2,
      weighted: true,
    });
    const data = twoPoints();
    const server = algo.server.initServer(toSet(H, hidden));
    const r = await train(
      algo,
      algo.server.download(server, 0, 0),
      algo.client.initClient(0, toSet(H, hidden)),
      run(data),
    );
    const step = (b: Vals) =>
      axpy(b, -0.5, axpy(pick(grad(hidden, { ...H, ...b }, data), body), 0.01, b));
    expect(vals(r.state.local!)).toEqual(close(pick(H, head)));
    expect(vals(decodeParams(r.upload.params))).toEqual(close(step(step(pick(H, body)))));
    disposeData(data);
  });

  it('FedRep trains the head with the body frozen, then the body with the new head', async () => {
    const algo = fedrep(ctx(hidden), { headLayers: 1, headEpochs: 1, weighted: true });
    expect([algo.hasGlobal, algo.hasPersonal]).toEqual([false, true]);
    const data = twoPoints();
    const server = algo.server.initServer(toSet(H, hidden));
    expect(Object.keys(server.global!)).toEqual(body);
    const r = await train(
      algo,
      algo.server.download(server, 0, 0),
      algo.client.initClient(0, toSet(H, hidden)),
      run(data),
    );
    const gh = pick(grad(hidden, H, data), head);
    const h1 = axpy(pick(H, head), -0.5, axpy(gh, 0.01, pick(H, head)));
    const gb = pick(grad(hidden, { ...H, ...h1 }, data), body);
    const b1 = axpy(pick(H, body), -0.5, axpy(gb, 0.01, pick(H, body)));
    expect(vals(decodeParams(r.upload.params))).toEqual(close(b1));
    expect(vals(r.state.local!)).toEqual(close(h1));
    const G = toSet(H, hidden);
    const pm = await algo.client.personalModel(r.state, pick2(G, body), run(data));
    expect(vals(pm!)).toEqual(close({ ...pick(H, body), ...h1 }));
    disposeData(data);
  });

  it('FedPer trains jointly and shares the body; LG-FedAvg shares the head', async () => {
    const data = twoPoints();
    const g = grad(hidden, H, data);
    const joint = axpy(H, -0.5, axpy(g, 0.01, H));
    for (const [algo, shared, local] of [
      [fedper(ctx(hidden), { headLayers: 1, weighted: true }), body, head],
      [lgfedavg(ctx(hidden), { headLayers: 1, weighted: true }), head, body],
    ] as const) {
      const server = algo.server.initServer(toSet(H, hidden));
      expect(Object.keys(server.global!)).toEqual(shared);
      const r = await train(
        algo,
        algo.server.download(server, 0, 0),
        algo.client.initClient(0, toSet(H, hidden)),
        run(data),
      );
      expect(vals(decodeParams(r.upload.params))).toEqual(close(pick(joint, [...shared])));
      expect(vals(r.state.local!)).toEqual(close(pick(joint, [...local])));
    }
    disposeData(data);
  });
});

describe('Per-FedAvg (first order)', () => {
  it('takes the outer step at w with the gradient at w~ = w - alpha grad f(w)', async () => {
    const algo = perfedavg(ctx(linear), { alpha: 0.3, adaptSteps: 1, weighted: true });
    const data = twoPoints();
    const down = algo.server.download(algo.server.initServer(toSet(W, linear)), 0, 0);
    const r = await train(algo, down, algo.client.initClient(0, toSet(W, linear)), run(data));
    const tilde = axpy(W, -0.3, grad(linear, W, data));
    const w1 = axpy(W, -0.5, axpy(grad(linear, tilde, data), 0.01, W));
    expect(vals(decodeParams(r.upload.params))).toEqual(close(w1));
    // Personal model: one adaptation step of size alpha on local data.
    const before = tf.memory().numTensors;
    const pm = await algo.client.personalModel(r.state, toSet(W, linear), run(data));
    expect(tf.memory().numTensors).toBe(before);
    expect(vals(pm!)).toEqual(close(tilde));
    disposeData(data);
  });
});

describe('Per-FedAvg over several mini-batches', () => {
  it('takes each outer step on the next mini-batch and reports the loss at w~ on it, over the last epoch', async () => {
    const c = ctx(linear, { batchSize: 1, epochs: 2 });
    const algo = perfedavg(c, { alpha: 0.3, adaptSteps: 3, weighted: true });
    expect([algo.name, algo.hasGlobal, algo.hasPersonal]).toEqual(['perfedavg', true, true]);
    expect(algo.client.initClient(0, toSet(W, linear))).toEqual({});
    const data = twoPoints();
    const points = [pointOf(0), pointOf(1)];
    // Each epoch's two one-sample batches, in the order the client's generator draws them.
    const plan = clientBatches(c, run(data), 2).map((e) => e.map((idx) => points[idx[0]!]!));
    const tildeOf = (w: Vals, d: DataTensors) => axpy(w, -0.3, grad(linear, w, d));
    let w = W;
    let losses: number[] = [];
    for (const epoch of plan) {
      losses = [];
      epoch.forEach((d, j) => {
        const next = epoch[(j + 1) % epoch.length]!;
        const tilde = tildeOf(w, d);
        losses.push(lossAt(linear, tilde, next));
        w = axpy(w, -0.5, axpy(grad(linear, tilde, next), 0.01, w));
      });
    }
    const down = algo.server.download(algo.server.initServer(toSet(W, linear)), 0, 0);
    const r = await train(algo, down, {}, run(data));
    expect(vals(decodeParams(r.upload.params))).toEqual(close(w));
    expect(r.upload.trainLoss).toBeCloseTo((losses[0]! + losses[1]!) / 2, 5);
    expect(r.upload.numSamples).toBe(2);
    // The personal model: 3 adaptation steps, cycling over the first epoch's two batches.
    const [d0, d1] = plan[0]!;
    const before = tf.memory().numTensors;
    const pm = await algo.client.personalModel({}, toSet(W, linear), run(data));
    expect(tf.memory().numTensors).toBe(before);
    expect(vals(pm!)).toEqual(close(tildeOf(tildeOf(tildeOf(W, d0!), d1!), d0!)));
    for (const d of [data, ...points]) disposeData(d);
  });

  it('adapts with the round’s lr when alpha is not set, and not at all without training data', async () => {
    const algo = perfedavg(ctx(linear), { adaptSteps: 1, weighted: true });
    const data = twoPoints();
    const pm = await algo.client.personalModel({}, toSet(W, linear), run(data, 0.2));
    expect(vals(pm!)).toEqual(close(axpy(W, -0.2, grad(linear, W, data))));
    const empty = noPoints();
    const unchanged = await algo.client.personalModel({}, toSet(W, linear), run(empty));
    expect(vals(unchanged!)).toEqual(close(W));
    await expect(algo.client.personalModel({}, undefined, run(data))).rejects.toThrow(
      'perfedavg: the personal model needs the global model',
    );
    for (const d of [data, empty]) disposeData(d);
  });
});

describe('FedAvg-FT', () => {
  it('trains as FedAvg and fine-tunes the global model locally before evaluation', async () => {
    const algo = fedavgft(ctx(linear, { epochs: 1 }), { ftEpochs: 2, weighted: true });
    expect([algo.name, algo.hasGlobal, algo.hasPersonal]).toEqual(['fedavg-ft', true, true]);
    const data = twoPoints();
    const step = (w: Vals) => axpy(w, -0.5, axpy(grad(linear, w, data), 0.01, w));
    const down = algo.server.download(algo.server.initServer(toSet(W, linear)), 0, 0);
    const r = await train(algo, down, algo.client.initClient(0, toSet(W, linear)), run(data));
    expect(vals(decodeParams(r.upload.params))).toEqual(close(step(W)));
    const before = tf.memory().numTensors;
    const pm = await algo.client.personalModel(r.state, toSet(W, linear), run(data));
    expect(tf.memory().numTensors).toBe(before);
    expect(vals(pm!)).toEqual(close(step(step(W))));
    disposeData(data);
  });

  it('averages as FedAvg, equally when not weighted, and needs the global model to fine-tune', async () => {
    const a: Vals = { 'out.kernel': [1, 2, 3, 4], 'out.bias': [0, 1] };
    const b: Vals = { 'out.kernel': [3, 2, 1, 0], 'out.bias': [4, 1] };
    const uploads = [
      { client: 0, upload: upload(toSet(a, linear)) },
      { client: 1, upload: { ...upload(toSet(b, linear)), numSamples: 3 } },
    ];
    const meanOf = async (weighted: boolean) => {
      const algo = fedavgft(ctx(linear), { ftEpochs: 1, weighted });
      const r = await algo.server.aggregate(algo.server.initServer(toSet(W, linear)), 0, uploads);
      return vals(r.server.global!);
    };
    expect(await meanOf(false)).toEqual(close(axpy(scale(a, 0.5), 0.5, b)));
    expect(await meanOf(true)).toEqual(close(axpy(scale(a, 0.25), 0.75, b)));
    const data = twoPoints();
    const algo = fedavgft(ctx(linear), { ftEpochs: 1, weighted: true });
    await expect(algo.client.personalModel({}, undefined, run(data))).rejects.toThrow(
      'fedavg-ft: fine-tuning needs the global model',
    );
    disposeData(data);
  });
});

function pick2(a: ParamArrays, keys: string[]): ParamArrays {
  return Object.fromEntries(keys.map((k) => [k, a[k]!]));
}
