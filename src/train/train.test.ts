import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createModel } from '../models/index.js';
import { initBackend } from '../tensor/backend.js';
import type { Params } from '../tensor/params.js';
import { add, disposeParams, toArrays } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { disposeData, evaluate, makeStep, toTensors, trainLocal } from './loop.js';
import {
  addDecayedWeights,
  addLinear,
  chain,
  type GradTransform,
  l1ProxMap,
  type ProxMap,
  proximalPull,
} from './transforms.js';

beforeAll(async () => {
  await initBackend('wasm');
});

const vals = (t: tf.Tensor) => Array.from(t.dataSync());
const p = (o: Record<string, number[]>): Params =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k, tf.tensor1d(v)]));

/** Two Gaussian blobs per class in 4x4x1 inputs: easy for a linear model, not trivial. */
function blobs(n: number, classes: number, seed: number) {
  const rng = new Rng(seed);
  const centers = Array.from({ length: classes }, () =>
    Array.from({ length: 16 }, () => rng.normal()),
  );
  const x = new Float32Array(n * 16);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % classes;
    for (let j = 0; j < 16; j++) x[i * 16 + j] = centers[y[i]!]![j]! + 0.7 * rng.normal();
  }
  return { x, y };
}

describe('gradient transforms', () => {
  it('add the linear, proximal and decay terms in order', () => {
    const g = p({ a: [1, 2], b: [3, 4] });
    const w = p({ a: [0.5, -1], b: [2, 0] });
    const c = p({ a: [10, 20] });
    const anchor = p({ a: [1, 1], b: [1, 1] });
    const out = tf.tidy(() =>
      chain(addLinear(c, -1), proximalPull(0.1, anchor), addDecayedWeights(0.01)).update(g, w),
    );
    // a: g - c + 0.1*(w - anchor) + 0.01*w
    expect(vals(out['a']!)).toEqual(
      [1 - 10 + 0.1 * (0.5 - 1) + 0.01 * 0.5, 2 - 20 + 0.1 * (-1 - 1) + 0.01 * -1].map((v) =>
        expect.closeTo(v, 5),
      ),
    );
    // b has no linear term: g + 0.1*(w - anchor) + 0.01*w
    expect(vals(out['b']!)).toEqual(
      [3 + 0.1 * 1 + 0.02, 4 + 0.1 * -1].map((v) => expect.closeTo(v, 5)),
    );
    disposeParams(g, w, c, anchor, out);
  });

  it('L1 prox soft-thresholds by lambda * lr', () => {
    const w = p({ a: [0.5, -0.05, 0.08, -0.3] });
    const out = tf.tidy(() => l1ProxMap(1, ['a']).apply(w, 0.1));
    expect(vals(out['a']!)).toEqual([0.4, 0, 0, -0.2].map((v) => expect.closeTo(v, 6)));
    disposeParams(w, out);
  });
});

describe('local training', () => {
  const model = createModel('mlp', { inputShape: [4, 4, 1], classes: 3, hidden: [] });

  it('one step equals w - lr * (grad + terms), then the prox', () => {
    const w = model.init(new Rng(1));
    const anchor = model.init(new Rng(2));
    const { x, y } = blobs(8, 3, 3);
    const d = toTensors(x, y, [4, 4, 1]);
    const lr = 0.05;
    const step = makeStep({ model, transform: proximalPull(0.3, anchor), prox: l1ProxMap(0.2) });
    const r = step(w, d.x, d.y, lr);
    const expected = tf.tidy(() => {
      const names = Object.keys(w);
      const grads = tf.grads((...ts: tf.Tensor[]) => {
        const logits = model.forward(Object.fromEntries(names.map((k, i) => [k, ts[i]!])), d.x);
        return tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(d.y, 3), tf.logSoftmax(logits)), 1)));
      })(names.map((k) => w[k]!));
      return names.map((k, i) => {
        const g = tf.add(grads[i]!, tf.mul(tf.sub(w[k]!, anchor[k]!), 0.3));
        const v = tf.sub(w[k]!, tf.mul(g, lr));
        return tf.mul(tf.sign(v), tf.relu(tf.sub(tf.abs(v), 0.2 * lr)));
      });
    });
    Object.keys(w).forEach((k, i) => {
      const got = vals(r.params[k]!);
      const want = vals(expected[i]!);
      got.forEach((v, j) => expect(v).toBeCloseTo(want[j]!, 6));
    });
    tf.dispose([...expected, r.lossSum, r.correct]);
    disposeParams(w, anchor, r.params);
    disposeData(d);
  });

  it('lowers the loss, repeats exactly with the same seed, and leaks nothing', async () => {
    const { x, y } = blobs(200, 3, 4);
    const d = toTensors(x, y, [4, 4, 1]);
    const w = model.init(new Rng(7));
    const before = await evaluate(model, w, d);
    const run = () =>
      trainLocal(w, { model, data: d, epochs: 3, batchSize: 20, lr: 0.1, rng: new Rng(9) });
    const a = await run();
    const live = tf.memory().numTensors;
    const b = await run();
    disposeParams(b.params);
    const c = await run();
    disposeParams(c.params);
    expect(tf.memory().numTensors).toBe(live);
    const after = await evaluate(model, a.params, d);
    expect(after.loss).toBeLessThan(0.5 * before.loss);
    expect(after.acc).toBeGreaterThan(0.9);
    expect(a.steps).toBe(30);
    expect(a.epochs.map((e) => e.epoch)).toEqual([0, 1, 2]);
    expect(a.epochs[2]!.loss).toBeLessThan(a.epochs[0]!.loss);
    const b2 = await run();
    expect(toArrays(b2.params)['out.kernel']!.data).toEqual(toArrays(a.params)['out.kernel']!.data);
    disposeParams(w, a.params, b2.params);
    disposeData(d);
  });

  it('lets the event loop run between batches', async () => {
    const { x, y } = blobs(200, 3, 4);
    const d = toTensors(x, y, [4, 4, 1]);
    const w = model.init(new Rng(7));
    // Counts turns of the event loop while training runs.
    let turns = 0;
    let training = true;
    const spin = () => {
      if (!training) return;
      turns++;
      setImmediate(spin);
    };
    setImmediate(spin);
    const r = await trainLocal(w, {
      model,
      data: d,
      epochs: 1,
      batchSize: 10,
      lr: 0.1,
      rng: new Rng(9),
    });
    training = false;
    expect(r.steps).toBe(20);
    expect(turns).toBeGreaterThanOrEqual(r.steps / 2);
    disposeParams(w, r.params);
    disposeData(d);
  });

  it('trains only the given tensors through compose, leaving the frozen base alone', async () => {
    const { x, y } = blobs(60, 3, 5);
    const d = toTensors(x, y, [4, 4, 1]);
    const base = model.init(new Rng(11));
    const baseCopy = toArrays(base);
    const zero = Object.fromEntries(Object.entries(base).map(([k, t]) => [k, tf.zerosLike(t)]));
    const r = await trainLocal(zero, {
      model,
      compose: (pp) => add(base, pp),
      data: d,
      epochs: 2,
      batchSize: 10,
      lr: 0.1,
      rng: new Rng(1),
    });
    expect(toArrays(base)).toEqual(baseCopy);
    const full = add(base, r.params);
    expect((await evaluate(model, full, d)).loss).toBeLessThan(
      (await evaluate(model, base, d)).loss,
    );
    disposeParams(base, zero, r.params, full);
    disposeData(d);
  });
});

describe('the fused update', () => {
  const model = createModel('mlp', { inputShape: [4, 4, 1], classes: 3, hidden: [6] });
  /** The same pieces, hidden behind plain objects, so that the step applies them one by one. */
  const opaque = (t: GradTransform): GradTransform => ({ name: t.name, update: t.update });
  const opaqueProx = (m: ProxMap): ProxMap => ({ name: m.name, apply: m.apply });

  it('trains to the same bits as the transforms applied one by one', async () => {
    const { x, y } = blobs(50, 3, 21);
    const d = toTensors(x, y, [4, 4, 1]);
    const W = model.init(new Rng(1));
    const pi = model.init(new Rng(2));
    const P = model.init(new Rng(3));
    const names = Object.keys(W);
    const base = { model, data: d, epochs: 2, batchSize: 8, lr: (s: number) => 0.1 / (1 + s) };
    const stage1 = chain(addLinear(pi, -0.5), proximalPull(0.3, W), addDecayedWeights(1e-2));
    const partial = chain(addLinear({ [names[0]!]: pi[names[0]!]! }, 2), addDecayedWeights(1e-3));
    const l1 = l1ProxMap(0.05);
    const l1Some = l1ProxMap(0.2, [names[0]!]);
    const clip: ProxMap = { name: 'clip', apply: (p) => tf.tidy(() => tfClip(p)) };
    const tfClip = (p: Params): Params =>
      Object.fromEntries(Object.entries(p).map(([k, t]) => [k, tf.clipByValue(t, -0.3, 0.3)]));
    const runs: [Params, { transform?: GradTransform; prox?: ProxMap; compose?: boolean }][] = [
      [W, {}],
      [W, { transform: stage1 }],
      [W, { transform: partial, prox: l1Some }],
      [W, { transform: stage1, prox: clip }],
      [P, { transform: addDecayedWeights(1e-2), prox: l1, compose: true }],
    ];
    const live = tf.memory().numTensors;
    for (const [start, o] of runs) {
      const train = (transform?: GradTransform, prox?: ProxMap) =>
        trainLocal(start, {
          ...base,
          rng: new Rng(5),
          transform,
          prox,
          ...(o.compose ? { compose: (p: Params) => add(W, p) } : {}),
        });
      const fused = await train(o.transform, o.prox);
      const generic = await train(
        o.transform && opaque(o.transform),
        o.prox && (o.prox === clip ? o.prox : opaqueProx(o.prox)),
      );
      for (const k of names) {
        const a = fused.params[k]!.dataSync() as Float32Array;
        const b = generic.params[k]!.dataSync() as Float32Array;
        expect(new Uint32Array(a.buffer)).toEqual(new Uint32Array(b.buffer));
      }
      expect(fused.epochs).toEqual(generic.epochs);
      disposeParams(fused.params, generic.params);
    }
    expect(tf.memory().numTensors).toBe(live);
    disposeParams(W, pi, P);
    disposeData(d);
  });

  it('keeps the prox map errors', () => {
    const w = p({ a: [1, 2] });
    const d = toTensors(new Float32Array(16), new Int32Array([0]), [4, 4, 1]);
    expect(() => l1ProxMap(-1).apply(w, 0.1)).toThrow(/proxL1: tau must be/);
    const step = makeStep({ model, prox: l1ProxMap(0.1, ['nope']) });
    const params = model.init(new Rng(1));
    expect(() => step(params, d.x, d.y, 0.1)).toThrow(/proxL1: no parameter 'nope'/);
    disposeParams(w, params);
    disposeData(d);
  });

  it('says in each transform and prox map whether the step can fuse it', () => {
    const c = p({ a: [1, 2] });
    const fusable = chain(addLinear(c, -1), proximalPull(0.5, c), addDecayedWeights(0.1));
    expect(fusable.fused.map((t) => [t.kind, t.coef])).toEqual([
      ['scaled', -1],
      ['pull', 0.5],
      ['decay', 0.1],
    ]);
    expect(chain(addLinear(c, -1), opaque(addDecayedWeights(0.1))).fused).toBeUndefined();
    expect(l1ProxMap(0.2, ['a']).fused).toEqual({ kind: 'l1', lambda: 0.2, names: ['a'] });
    expect(opaqueProx(l1ProxMap(0.2)).fused).toBeUndefined();
    disposeParams(c);
  });
});
