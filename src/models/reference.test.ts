/**
 * The mlp's and the cnn's forward passes against an independent float64 reference written here
 * in plain loops (no tfjs, no model code), with fixed seeded weights:
 *
 *   dense:    y[j] = b[j] + sum_i x[i] K[i, j]                       (K is [in, out])
 *   conv:     y[r, c, o] = b[o] + sum_{u, v, i} x[r + u - p, c + v - p, i] K[u, v, i, o]
 *             (NHWC, stride 1, zero padding p on both sides)
 *   maxPool:  y[r, c, ch] = max over the 2x2 window at (2r, 2c), odd edges dropped ('valid')
 *   relu:     max(v, 0)
 *
 * The flattening before the cnn's first dense layer is in (row, column, channel) order.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../tensor/backend.js';
import type { ParamArrays } from '../tensor/params.js';
import { disposeParams, fromArrays } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { createModel } from './index.js';
import type { Model } from './model.js';

beforeAll(async () => {
  await initBackend('wasm');
});

/** A feature map [h][w][channels] in float64. */
type Map3 = number[][][];

function denseRef(x: number[], k: ArrayLike<number>, b: ArrayLike<number>): number[] {
  const out = b.length;
  return Array.from({ length: out }, (_, j) => {
    let s = b[j]!;
    for (let i = 0; i < x.length; i++) s += x[i]! * k[i * out + j]!;
    return s;
  });
}

function convRef(x: Map3, k: ArrayLike<number>, b: ArrayLike<number>, size: number): Map3 {
  const [h, w, cin] = [x.length, x[0]!.length, x[0]![0]!.length];
  const cout = b.length;
  const pad = (size - 1) / 2;
  return Array.from({ length: h }, (_, r) =>
    Array.from({ length: w }, (_, c) =>
      Array.from({ length: cout }, (_, o) => {
        let s = b[o]!;
        for (let u = 0; u < size; u++)
          for (let v = 0; v < size; v++) {
            const [rr, cc] = [r + u - pad, c + v - pad];
            if (rr < 0 || rr >= h || cc < 0 || cc >= w) continue;
            for (let i = 0; i < cin; i++)
              s += x[rr]![cc]![i]! * k[((u * size + v) * cin + i) * cout + o]!;
          }
        return s;
      }),
    ),
  );
}

function maxPoolRef(x: Map3): Map3 {
  const [h, w] = [Math.floor(x.length / 2), Math.floor(x[0]!.length / 2)];
  return Array.from({ length: h }, (_, r) =>
    Array.from({ length: w }, (_, c) =>
      x[2 * r]![2 * c]!.map((_, ch) =>
        Math.max(
          x[2 * r]![2 * c]![ch]!,
          x[2 * r]![2 * c + 1]![ch]!,
          x[2 * r + 1]![2 * c]![ch]!,
          x[2 * r + 1]![2 * c + 1]![ch]!,
        ),
      ),
    ),
  );
}

const relu = (v: number) => Math.max(v, 0);
const relu3 = (x: Map3): Map3 => x.map((row) => row.map((px) => px.map(relu)));

/** Seeded weights uniform in +-scale (bigger than the default init, so ReLUs cut often). */
function fixedWeights(model: Model, seed: number, scale: number): ParamArrays {
  const rng = new Rng(seed);
  return Object.fromEntries(
    model.spec.map((p) => {
      const n = p.shape.reduce((a, b) => a * b, 1);
      const data = Float32Array.from({ length: n }, () => (2 * rng.uniform() - 1) * scale);
      return [p.name, { shape: [...p.shape], data }];
    }),
  );
}

function inputs(model: Model, batch: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const [h, w, c] = model.inputShape;
  return Float32Array.from({ length: batch * h * w * c }, () => rng.normal());
}

function sampleMap(x: Float32Array, s: number, [h, w, c]: readonly number[]): Map3 {
  const base = s * h! * w! * c!;
  return Array.from({ length: h! }, (_, r) =>
    Array.from({ length: w! }, (_, col) =>
      Array.from({ length: c! }, (_, ch) => x[base + (r * w! + col) * c! + ch]!),
    ),
  );
}

/** The model's logits through its own forward pass, as [batch][classes]. */
function modelLogits(
  model: Model,
  weights: ParamArrays,
  x: Float32Array,
  batch: number,
): number[][] {
  const params = fromArrays(weights);
  const input = tf.tensor4d(x, [batch, ...model.inputShape]);
  const logits = model.forward(params, input);
  const out = logits.arraySync();
  tf.dispose([input, logits]);
  disposeParams(params);
  return out;
}

/** Largest |a - b| relative to the largest |b| (logits of order one and more). */
function relativeGap(a: number[][], b: number[][]): number {
  const top = Math.max(...b.flat().map(Math.abs));
  return Math.max(...a.flat().map((v, i) => Math.abs(v - b.flat()[i]!))) / top;
}

describe('forward passes against a float64 reference', () => {
  it('mlp: dense + ReLU per hidden layer, then dense', () => {
    const model = createModel('mlp', { inputShape: [3, 2, 2], classes: 5, hidden: [9, 7] });
    const wts = fixedWeights(model, 11, 0.6);
    const batch = 6;
    const x = inputs(model, batch, 12);
    const ref = Array.from({ length: batch }, (_, s) => {
      let y = Array.from(x.subarray(s * 12, (s + 1) * 12));
      for (const layer of ['fc1', 'fc2'])
        y = denseRef(y, wts[`${layer}.kernel`]!.data, wts[`${layer}.bias`]!.data).map(relu);
      return denseRef(y, wts['out.kernel']!.data, wts['out.bias']!.data);
    });
    // Some hidden pre-activations are negative, so the ReLUs change the result.
    const h1 = denseRef(
      Array.from(x.subarray(0, 12)),
      wts['fc1.kernel']!.data,
      wts['fc1.bias']!.data,
    );
    expect(h1.some((v) => v < 0)).toBe(true);
    const before = tf.memory().numTensors;
    expect(relativeGap(modelLogits(model, wts, x, batch), ref)).toBeLessThan(1e-5);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('cnn: two 5x5 same convs with ReLU and 2x2 max-pool, dense 512 + ReLU, dense, on a non-square input', () => {
    // 8x5 input: pools to 4x2, then 2x1 (the odd column dropped); 2*1*64 = 128 features.
    const model = createModel('cnn', { inputShape: [8, 5, 2], classes: 4 });
    const wts = fixedWeights(model, 21, 0.15);
    const batch = 3;
    const x = inputs(model, batch, 22);
    const w = (name: string) => wts[name]!.data;
    const ref = Array.from({ length: batch }, (_, s) => {
      let m = sampleMap(x, s, model.inputShape);
      m = maxPoolRef(relu3(convRef(m, w('conv1.kernel'), w('conv1.bias'), 5)));
      m = maxPoolRef(relu3(convRef(m, w('conv2.kernel'), w('conv2.bias'), 5)));
      expect([m.length, m[0]!.length, m[0]![0]!.length]).toEqual([2, 1, 64]);
      const f = denseRef(m.flat(2), w('fc1.kernel'), w('fc1.bias')).map(relu);
      return denseRef(f, w('fc2.kernel'), w('fc2.bias'));
    });
    const before = tf.memory().numTensors;
    expect(relativeGap(modelLogits(model, wts, x, batch), ref)).toBeLessThan(1e-5);
    expect(tf.memory().numTensors).toBe(before);
  });
});
