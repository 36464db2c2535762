import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeParams } from '../codec/params.js';
import {
  decodeClientState,
  decodeServerState,
  encodeClientState,
  encodeServerState,
} from '../codec/state.js';
import { pack, wireParamsCount } from '../codec/wire.js';
import { plantedMatrix } from '../linalg/planted.js';
import { createModel } from '../models/index.js';
import { initBackend } from '../tensor/backend.js';
import type { ParamArrays } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { disposeData, toTensors } from '../train/loop.js';
import { FEDSLR_DEFAULTS, fedslr, initialSparse } from './fedslr.js';
import type { AlgorithmContext, Upload } from './types.js';

beforeAll(async () => {
  await initBackend('wasm');
});

const arr = (shape: number[], data: number[]): ParamArrays[string] => ({
  shape,
  data: Float32Array.from(data),
});
const upload = (params: ParamArrays): Upload => ({
  round: 0,
  params: Object.fromEntries(
    Object.entries(params).map(([k, v]) => [
      k,
      { kind: 'dense' as const, shape: v.shape, data: v.data },
    ]),
  ),
  numSamples: 1,
  trainLoss: 0,
  trainAcc: 0,
});
const list = (a: ParamArrays[string] | undefined) => Array.from(a!.data);
const close = (xs: number[]) => xs.map((x) => expect.closeTo(x, 5));

function ctx(
  inputShape: [number, number, number],
  classes: number,
  numClients: number,
  train = {},
): AlgorithmContext {
  return {
    model: createModel('mlp', { inputShape, classes, hidden: [] }),
    numClients,
    train: { lr: 0.1, lrDecay: 1, weightDecay: 0, batchSize: 1, epochs: 1, ...train },
  };
}

describe('FedSLR server', () => {
  it('keeps D over all clients and aggregates with stale duals (mu = 0: no thresholding)', async () => {
    const algo = fedslr(ctx([2, 1, 1], 2, 4), { ...FEDSLR_DEFAULTS, alpha: 0.5, mu: 0 });
    const W = { 'out.kernel': arr([2, 2], [1, 2, 3, 4]), 'out.bias': arr([2], [0.5, -0.5]) };
    const s0 = algo.server.initServer(W);
    const w1 = { 'out.kernel': arr([2, 2], [2, 2, 2, 2]), 'out.bias': arr([2], [1, 1]) };
    const w2 = { 'out.kernel': arr([2, 2], [0, 0, 0, 0]), 'out.bias': arr([2], [0, 0]) };
    const r1 = await algo.server.aggregate(s0, 0, [
      { client: 0, upload: upload(w1) },
      { client: 1, upload: upload(w2) },
    ]);
    // D = 0 + alpha (|S| W - sum w) ; V = mean w - D / (alpha N)
    expect(list(r1.server.dualSum!['out.kernel'])).toEqual(close([0, 1, 2, 3]));
    expect(list(r1.server.dualSum!['out.bias'])).toEqual(close([0, -1]));
    expect(list(r1.server.global['out.kernel'])).toEqual(close([1, 0.5, 0, -0.5]));
    expect(list(r1.server.global['out.bias'])).toEqual(close([0.5, 1]));
    // Round 2: only client 3 joins and does not move; D still carries clients 0 and 1's duals.
    const r2 = await algo.server.aggregate(r1.server, 1, [
      { client: 3, upload: upload(r1.server.global) },
    ]);
    expect(list(r2.server.dualSum!['out.kernel'])).toEqual(close([0, 1, 2, 3]));
    expect(list(r2.server.global['out.kernel'])).toEqual(close([1, 0.5 - 0.5, 0 - 1, -0.5 - 1.5]));
    expect(list(r2.server.global['out.bias'])).toEqual(close([0.5, 1.5]));
  });

  it('thresholds singular values at mu/alpha and sends the low-rank result as factors', async () => {
    // V = 2 u1 v1^T + 0.05 u2 v2^T with orthonormal u (3-vectors) and v (2-vectors).
    const u1 = [1 / Math.sqrt(2), 1 / Math.sqrt(2), 0];
    const u2 = [0, 0, 1];
    const v1 = [0.6, 0.8];
    const v2 = [-0.8, 0.6];
    const V = u1.flatMap((a, i) => v1.map((b, j) => 2 * a * b + 0.05 * u2[i]! * v2[j]!));
    const algo = fedslr(ctx([3, 1, 1], 2, 1), { ...FEDSLR_DEFAULTS, alpha: 0.1, mu: 0.01 });
    const w = { 'out.kernel': arr([3, 2], V), 'out.bias': arr([2], [0.1, 0.2]) };
    // W^t = w and a single client that did not move: D stays 0, so V = w.
    const r = await algo.server.aggregate(algo.server.initServer(w), 0, [
      { client: 0, upload: upload(w) },
    ]);
    const expected = u1.flatMap((a) => v1.map((b) => 1.9 * a * b));
    expect(list(r.server.global['out.kernel'])).toEqual(close(expected));
    expect(list(r.server.global['out.bias'])).toEqual(close([0.1, 0.2]));
    expect(r.stats.ranks).toEqual({ 'out.kernel': { rank: 1, full: 2 } });

    const down = algo.server.download(r.server, 1, 0);
    const k = down.params['out.kernel']!;
    expect(k.kind).toBe('lowrank');
    // rank 1 x (3 + 2) numbers instead of 6, plus the dense bias.
    expect(wireParamsCount(down.params)).toBe(5 + 2);
    const spec = ctx([3, 1, 1], 2, 1).model.spec;
    const decoded = decodeParams(down.params, spec);
    expect(list(decoded['out.kernel'])).toEqual(close(expected));
  });

  it('counts the bytes of factors: a rank-1 40x30 matrix costs (40 + 30) floats, not 1200', async () => {
    const rng = new Rng(3);
    const unit = (n: number) => {
      const v = Array.from({ length: n }, () => rng.normal());
      const norm = Math.hypot(...v);
      return v.map((x) => x / norm);
    };
    const [u, v] = [unit(40), unit(30)];
    const w = {
      'out.kernel': arr(
        [40, 30],
        u.flatMap((a) => v.map((b) => 3 * a * b)),
      ),
      'out.bias': arr([30], new Array(30).fill(0)),
    };
    const algo = fedslr(ctx([40, 1, 1], 30, 1), { ...FEDSLR_DEFAULTS, alpha: 0.1, mu: 0.01 });
    const r = await algo.server.aggregate(algo.server.initServer(w), 0, [
      { client: 0, upload: upload(w) },
    ]);
    const down = algo.server.download(r.server, 1, 0);
    expect(wireParamsCount(down.params)).toBe(70 + 30);
    const denseDown = {
      round: 1,
      params: Object.fromEntries(
        Object.entries(r.server.global).map(([n, a]) => [
          n,
          { kind: 'dense', shape: a.shape, data: a.data },
        ]),
      ),
    };
    const [lowBytes, denseBytes] = [pack(down).byteLength, pack(denseDown).byteLength];
    // 4 bytes per float plus a small fixed overhead per tensor.
    expect(lowBytes).toBeGreaterThanOrEqual(4 * 100);
    expect(lowBytes).toBeLessThan(4 * 100 + 200);
    expect(denseBytes).toBeGreaterThanOrEqual(4 * 1230);
  });

  it('thresholds conv kernels in their matrix view and maps them back unchanged when nothing is cut', async () => {
    const model = createModel('cnn', { inputShape: [4, 4, 1], classes: 3 });
    const c: AlgorithmContext = {
      model,
      numClients: 1,
      train: { lr: 0.1, lrDecay: 1, weightDecay: 0, batchSize: 1, epochs: 1 },
    };
    const t = model.init(new Rng(4));
    const w: ParamArrays = Object.fromEntries(
      Object.entries(t).map(([k, v]) => [
        k,
        { shape: [...v.shape], data: v.dataSync() as Float32Array },
      ]),
    );
    // A threshold far below every singular value: W^{t+1} = V = w up to rounding.
    const algo = fedslr(c, { ...FEDSLR_DEFAULTS, alpha: 0.1, mu: 1e-9 });
    const r = await algo.server.aggregate(algo.server.initServer(w), 0, [
      { client: 0, upload: upload(w) },
    ]);
    for (const [name, a] of Object.entries(w)) {
      const got = r.server.global[name]!.data;
      const maxErr = a.data.reduce((m, x, i) => Math.max(m, Math.abs(x - got[i]!)), 0);
      expect(maxErr, name).toBeLessThan(1e-6);
    }
    tf.dispose(Object.values(t));
  });

  it("keeps each matrix's SVT warm start (right singular vectors) in the server state", async () => {
    // A 150 x 120 dense kernel of rank 10, thresholded at tau = mu / alpha = 0.1 by the
    // subspace path, which the next round starts from the kept basis.
    const algo = fedslr(ctx([150, 1, 1], 120, 4), { ...FEDSLR_DEFAULTS, alpha: 0.1, mu: 0.01 });
    const s = Array.from({ length: 10 }, (_, i) => 1 - 0.07 * i);
    const W = {
      'out.kernel': arr([150, 120], Array.from(plantedMatrix(150, 120, s, 3))),
      'out.bias': arr([120], new Array(120).fill(0)),
    };
    const r1 = await algo.server.aggregate(algo.server.initServer(W), 0, [
      { client: 0, upload: upload(W) },
    ]);
    expect(r1.stats.ranks!['out.kernel']).toEqual({ rank: 10, full: 120 });
    expect(r1.server.hints['out.kernel']!.basis?.length).toBe(120 * 10);
    expect(r1.server.hints['out.kernel']!.rank).toBe(10);
    const next = [{ client: 0, upload: upload(r1.server.global) }];
    const r2 = await algo.server.aggregate(r1.server, 1, next);
    expect(r2.stats.ranks!['out.kernel']).toEqual({ rank: 10, full: 120 });
    // Through the codec and MessagePack (a checkpoint) the next round is bit for bit the same.
    const { codec } = algo.server;
    const bytes = encodeServerState(codec.toRecord(r1.server));
    const restored = codec.fromRecord(decodeServerState(bytes, 'test'), 'test');
    const r2b = await algo.server.aggregate(restored, 1, next);
    expect(r2b.server.global['out.kernel']!.data).toEqual(r2.server.global['out.kernel']!.data);
    expect(r2b.server.factors['out.kernel']!.left.data).toEqual(
      r2.server.factors['out.kernel']!.left.data,
    );
    expect(r2b.server.hints['out.kernel']).toEqual(r2.server.hints['out.kernel']);
  });

  it('sends full-rank matrices dense', async () => {
    const algo = fedslr(ctx([3, 1, 1], 2, 1), FEDSLR_DEFAULTS);
    const w = { 'out.kernel': arr([3, 2], [1, 0, 0, 1, 1, 1]), 'out.bias': arr([2], [0, 0]) };
    const r = await algo.server.aggregate(algo.server.initServer(w), 0, [
      { client: 0, upload: upload(w) },
    ]);
    expect(r.stats.ranks!['out.kernel']).toEqual({ rank: 2, full: 2 });
    expect(algo.server.download(r.server, 1, 0).params['out.kernel']!.kind).toBe('dense');
  });
});

describe('FedSLR client', () => {
  it('stage 1 with the dual term, the dual update, and stage 2 with the L1 prox, as FEDSLR.md', async () => {
    const c = ctx([2, 1, 1], 2, 3, { lr: 0.5, weightDecay: 0.01 });
    const opts = { ...FEDSLR_DEFAULTS, alpha: 0.2, lambda: 0.3 };
    const algo = fedslr(c, opts);
    const W = {
      'out.kernel': arr([2, 2], [0.3, -0.2, 0.1, 0.4]),
      'out.bias': arr([2], [0.05, -0.05]),
    };
    const pi = { 'out.kernel': arr([2, 2], [0.1, 0.2, -0.1, 0]), 'out.bias': arr([2], [0.3, 0]) };
    const P = {
      'out.kernel': arr([2, 2], [0.5, -0.01, 0.2, 0]),
      'out.bias': arr([2], [-0.4, 0.02]),
    };
    const data = toTensors(Float32Array.from([1, -2]), Int32Array.from([1]), [2, 1, 1]);
    const down = algo.server.download(algo.server.initServer(W), 0, 0);
    const r = await algo.client.train(
      down,
      { dual: pi, sparse: P },
      { client: 0, round: 0, lr: 0.5, data, rng: new Rng(1) },
    );

    // The loss gradient at a point, computed independently with tf.grads.
    const grad = (p: ParamArrays) =>
      tf.tidy(() => {
        const k = tf.tensor(p['out.kernel']!.data, [2, 2]);
        const b = tf.tensor(p['out.bias']!.data, [2]);
        const [gk, gb] = tf.grads((kk: tf.Tensor, bb: tf.Tensor) => {
          const logits = tf.add(tf.matMul(tf.reshape(data.x, [1, 2]), kk), bb);
          return tf.neg(tf.sum(tf.mul(tf.oneHot(data.y, 2), tf.logSoftmax(logits))));
        })([k, b]);
        return { 'out.kernel': Array.from(gk!.dataSync()), 'out.bias': Array.from(gb!.dataSync()) };
      });
    const lr = 0.5;
    const wd = 0.01;
    const gW = grad(W);
    const wP = Object.fromEntries(
      Object.entries(W).map(([k, v]) => [
        k,
        arr(
          v.shape,
          list(v).map((x, i) => x + P[k as keyof typeof P].data[i]!),
        ),
      ]),
    );
    const gWP = grad(wP);
    for (const name of ['out.kernel', 'out.bias'] as const) {
      const w = list(W[name]);
      // w_i = W - lr (grad f(W) - pi + alpha (W - W) + wd W)
      const wi = w.map((x, i) => x - lr * (gW[name][i]! - pi[name].data[i]! + wd * x));
      expect(list(decodeParams(r.upload.params)[name])).toEqual(close(wi));
      // pi <- pi + alpha (W - w_i)
      expect(list(r.state.dual![name])).toEqual(
        close(
          pi[name].data.length
            ? list(pi[name]).map((p, i) => p + opts.alpha * (w[i]! - wi[i]!))
            : [],
        ),
      );
      // P <- soft(P - lr (grad f(W + P) + wd P), lambda lr)
      const step = list(P[name]).map((p, i) => p - lr * (gWP[name][i]! + wd * p));
      const soft = step.map((v) => Math.sign(v) * Math.max(Math.abs(v) - opts.lambda * lr, 0));
      expect(list(r.state.sparse![name])).toEqual(close(soft));
    }
    expect(soft0(r.state.sparse!)).toBeGreaterThan(0);
    // The client codec stores exactly this state.
    const { codec } = algo.client;
    const back = codec.fromRecord(
      decodeClientState(encodeClientState(codec.toRecord(r.state)), 't'),
      't',
    );
    expect(back.dual!['out.kernel']!.data).toEqual(r.state.dual!['out.kernel']!.data);
    expect(back.sparse!['out.bias']!.data).toEqual(r.state.sparse!['out.bias']!.data);
    disposeData(data);
  });

  it('starts P_i from the initial weights (norm tensors zero) or from zeros', () => {
    const m = createModel('resnet8gn', { inputShape: [8, 8, 3], classes: 4 });
    const p = m.init(new Rng(1));
    const init: ParamArrays = Object.fromEntries(
      Object.entries(p).map(([k, t]) => [
        k,
        { shape: [...t.shape], data: t.dataSync() as Float32Array },
      ]),
    );
    const fromInit = initialSparse(m.spec, init, 'init');
    expect(fromInit['stem.conv.kernel']!.data).toBe(init['stem.conv.kernel']!.data);
    expect(fromInit['fc.kernel']!.data).toBe(init['fc.kernel']!.data);
    expect(Array.from(fromInit['stem.gn.scale']!.data).every((x) => x === 0)).toBe(true);
    const zeros = initialSparse(m.spec, init, 'zeros');
    expect(Object.values(zeros).every((a) => a.data.every((x) => x === 0))).toBe(true);
    tf.dispose(Object.values(p));
  });
});

function soft0(set: ParamArrays): number {
  return Object.values(set).reduce((n, a) => n + a.data.filter((x) => x === 0).length, 0);
}
