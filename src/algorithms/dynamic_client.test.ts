/**
 * FedSLR's and FedDyn's client over several SGD steps, against iterates computed by hand in
 * float64 (no tfjs). With full batches the order of the samples does not matter, so every
 * iterate of a linear softmax model is known in closed form:
 *
 *   stage 1:  w <- w - lr (grad f(w) - pi + alpha (w - W) + wd w),   from w = W
 *   dual:     pi <- pi + alpha (W - w_E1)
 *   stage 2:  P <- soft(P - lr (grad f(W + P) + wd P), lambda lr),    W frozen
 *
 * From the second step on, w != W, so the pull term alpha (w - W) is exercised.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeParams } from '../codec/params.js';
import { createModel } from '../models/index.js';
import { initBackend } from '../tensor/backend.js';
import type { ParamArrays } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { disposeData, toTensors } from '../train/loop.js';
import { feddyn } from './feddyn.js';
import { FEDSLR_DEFAULTS, fedslr } from './fedslr.js';
import type { AlgorithmContext, ClientRun } from './types.js';

beforeAll(async () => {
  await initBackend('wasm');
});

const D = 3; // inputs
const C = 3; // classes
const X = [
  [1, -2, 0.5],
  [0.3, 0.8, -1],
  [-1.5, 0.2, 0.4],
  [0.7, 0.1, 1.2],
];
const Y = [1, 0, 2, 1];

/** A linear model as float64 arrays: kernel [D x C] row-major and bias [C]. */
interface Lin {
  k: number[];
  b: number[];
}

/** Gradient of the mean softmax cross-entropy of x K + b over the whole batch. */
function gradient(m: Lin): Lin {
  const g: Lin = { k: new Array(D * C).fill(0), b: new Array(C).fill(0) };
  X.forEach((x, s) => {
    const z = Array.from(
      { length: C },
      (_, j) => m.b[j]! + x.reduce((a, v, i) => a + v * m.k[i * C + j]!, 0),
    );
    const top = Math.max(...z);
    const e = z.map((v) => Math.exp(v - top));
    const sum = e.reduce((a, b) => a + b, 0);
    for (let j = 0; j < C; j++) {
      const d = (e[j]! / sum - (Y[s] === j ? 1 : 0)) / X.length;
      g.b[j]! += d;
      for (let i = 0; i < D; i++) g.k[i * C + j]! += x[i]! * d;
    }
  });
  return g;
}

const zip = (a: Lin, b: Lin, f: (x: number, y: number) => number): Lin => ({
  k: a.k.map((x, i) => f(x, b.k[i]!)),
  b: a.b.map((x, i) => f(x, b.b[i]!)),
});
const soft = (v: number, t: number) => Math.sign(v) * Math.max(Math.abs(v) - t, 0);

function stage1(W: Lin, pi: Lin, steps: number, lr: number, alpha: number, wd: number): Lin {
  let w = W;
  for (let s = 0; s < steps; s++) {
    const g = gradient(w);
    const term = (gv: number, wv: number, pv: number, Wv: number) =>
      gv - pv + alpha * (wv - Wv) + wd * wv;
    w = {
      k: w.k.map((x, i) => x - lr * term(g.k[i]!, x, pi.k[i]!, W.k[i]!)),
      b: w.b.map((x, i) => x - lr * term(g.b[i]!, x, pi.b[i]!, W.b[i]!)),
    };
  }
  return w;
}

function stage2(W: Lin, P: Lin, steps: number, lr: number, lambda: number, wd: number): Lin {
  let p = P;
  for (let s = 0; s < steps; s++) {
    const g = gradient(zip(W, p, (a, b) => a + b));
    p = zip(p, g, (x, gv) => soft(x - lr * (gv + wd * x), lambda * lr));
  }
  return p;
}

const toSet = (m: Lin): ParamArrays => ({
  'out.kernel': { shape: [D, C], data: Float32Array.from(m.k) },
  'out.bias': { shape: [C], data: Float32Array.from(m.b) },
});
const fromSet = (a: ParamArrays): Lin => ({
  k: Array.from(a['out.kernel']!.data),
  b: Array.from(a['out.bias']!.data),
});
/** Largest absolute difference between two models. */
const gap = (a: Lin, b: Lin) =>
  Math.max(
    ...a.k.map((x, i) => Math.abs(x - b.k[i]!)),
    ...a.b.map((x, i) => Math.abs(x - b.b[i]!)),
  );

// float32 through up to 3 steps: agreement to 1e-5; the pull term moves the result by far more.
const TOL = 1e-5;
const W: Lin = {
  k: [0.3, -0.2, 0.1, 0.4, 0.05, -0.3, -0.1, 0.25, 0.2],
  b: [0.05, -0.05, 0.1],
};
const PI: Lin = { k: [0.1, 0.2, -0.1, 0, 0.05, 0.3, -0.2, 0.1, 0], b: [0.3, 0, -0.1] };
const P0: Lin = { k: [0.5, -0.01, 0.2, 0, 0.3, -0.6, 0.02, 0.1, -0.2], b: [-0.4, 0.02, 0.1] };
const LR = 0.5;
const WD = 0.01;
const ALPHA = 0.4;

function context(epochs: number): AlgorithmContext {
  return {
    model: createModel('mlp', { inputShape: [D, 1, 1], classes: C, hidden: [] }),
    numClients: 3,
    train: { lr: LR, lrDecay: 1, weightDecay: WD, batchSize: X.length, epochs },
  };
}

function clientRun(): ClientRun {
  const data = toTensors(Float32Array.from(X.flat()), Int32Array.from(Y), [D, 1, 1]);
  return { client: 0, round: 0, lr: LR, data, rng: new Rng(7) };
}

describe('FedSLR client over several steps', () => {
  it('follows the hand-computed iterates of stage 1 (pull term included), the dual update and stage 2', async () => {
    const before = tf.memory().numTensors;
    const opts = { ...FEDSLR_DEFAULTS, alpha: ALPHA, lambda: 0.2, personalEpochs: 2 };
    const algo = fedslr(context(3), opts);
    const down = algo.server.download(algo.server.initServer(toSet(W)), 0, 0);
    const run = clientRun();
    const r = await algo.client.train(down, { dual: toSet(PI), sparse: toSet(P0) }, run);
    disposeData(run.data);

    const wi = stage1(W, PI, 3, LR, ALPHA, WD);
    // The pull term matters here: without it (or with its sign flipped) the iterate moves.
    expect(gap(wi, stage1(W, PI, 3, LR, -ALPHA, WD))).toBeGreaterThan(100 * TOL);
    expect(gap(fromSet(decodeParams(r.upload.params)), wi)).toBeLessThan(TOL);

    const piNext = zip(
      PI,
      zip(W, wi, (a, b) => a - b),
      (p, d) => p + ALPHA * d,
    );
    expect(gap(fromSet(r.state.dual!), piNext)).toBeLessThan(TOL);

    const P = stage2(W, P0, 2, LR, opts.lambda, WD);
    expect(gap(fromSet(r.state.sparse!), P)).toBeLessThan(TOL);
    // The L1 prox zeroes some entries exactly, and the personal model is W + P.
    expect([...P.k, ...P.b].filter((v) => v === 0).length).toBeGreaterThan(0);
    expect([...r.state.sparse!['out.kernel']!.data].filter((v) => v === 0).length).toBe(
      P.k.filter((v) => v === 0).length,
    );
    const personal = await algo.client.personalModel(r.state, toSet(W), run);
    expect(
      gap(
        fromSet(personal!),
        zip(W, P, (a, b) => a + b),
      ),
    ).toBeLessThan(TOL);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('FedDyn client over several steps', () => {
  it('follows the same stage-1 iterates and dual update, with no personal part', async () => {
    const algo = feddyn(context(2), { alpha: ALPHA });
    const down = algo.server.download(algo.server.initServer(toSet(W)), 0, 0);
    const run = clientRun();
    const r = await algo.client.train(down, { dual: toSet(PI) }, run);
    disposeData(run.data);
    const wi = stage1(W, PI, 2, LR, ALPHA, WD);
    expect(gap(fromSet(decodeParams(r.upload.params)), wi)).toBeLessThan(TOL);
    const piNext = zip(
      PI,
      zip(W, wi, (a, b) => a - b),
      (p, d) => p + ALPHA * d,
    );
    expect(gap(fromSet(r.state.dual!), piNext)).toBeLessThan(TOL);
    expect(r.state.sparse).toBeUndefined();
    expect(await algo.client.personalModel(r.state, toSet(W), run)).toBeNull();
  });

  it('starts from a zero dual when the client has none yet', async () => {
    const algo = feddyn(context(2), { alpha: ALPHA });
    const down = algo.server.download(algo.server.initServer(toSet(W)), 0, 0);
    const run = clientRun();
    const r = await algo.client.train(down, algo.client.initClient(0, toSet(W)), run);
    disposeData(run.data);
    const zero: Lin = { k: new Array(D * C).fill(0), b: new Array(C).fill(0) };
    const wi = stage1(W, zero, 2, LR, ALPHA, WD);
    expect(gap(fromSet(decodeParams(r.upload.params)), wi)).toBeLessThan(TOL);
    expect(r.upload.numSamples).toBe(X.length);
  });
});
