import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../backend.js';
import { Rng } from '../rng.js';
import { onBoth, randomTensor } from './compare.js';
import { sgdUpdate, sgdUpdateReference, type UpdateTerm } from './sgd_update.js';

/** Bit patterns, so that -0 and +0 (and every last bit) are told apart. */
const bits = (v: Float32Array) => Array.from(new Uint32Array(v.buffer, v.byteOffset, v.length));

type Update = typeof sgdUpdate;

/**
 * w, g and two term tensors of `shape`, with exact zeros, negative zeros and values at the
 * threshold mixed in, updated with every kind of term (or none) and with or without a threshold.
 */
function cases(update: Update, shape: number[], seed: number): tf.Tensor[] {
  const rng = Rng.derive(43, seed);
  const w = tf.mul(randomTensor(rng, shape), 0.05);
  const n = w.size;
  const special = new Float32Array(n);
  for (let i = 0; i < n; i++) special[i] = [0, -0, 0.01, -0.01][i % 4]!;
  const mask = tf.tensor(
    Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 1 : 0)),
    shape,
  );
  const ws = tf.add(tf.mul(w, tf.sub(1, mask)), tf.mul(tf.tensor(special, shape), mask));
  const g = tf.mul(randomTensor(rng, shape), tf.sub(1, mask));
  const c = randomTensor(rng, shape);
  const anchor = randomTensor(rng, shape);
  const stage1: UpdateTerm[] = [
    { kind: 'scaled', x: c, coef: -1 },
    { kind: 'pull', x: anchor, coef: 0.1 },
    { kind: 'decay', coef: 1e-3 },
  ];
  return [
    update(ws, g, [], 0.1),
    update(ws, g, stage1, 0.07),
    update(ws, g, [{ kind: 'decay', coef: 5e-4 }], 0.1, 0.01 * 0.1),
    update(ws, g, [{ kind: 'decay', coef: 5e-4 }], 0.1, 0),
    update(ws, g, stage1, 0.3, 0.02),
    update(ws, g, [{ kind: 'pull', x: anchor, coef: 2 }], 1e-2),
  ];
}

const SHAPES = [[1], [3], [4], [7], [5, 3], [2, 3, 3, 8], [4100], [33, 130]];

describe('sgdUpdate (one pass per tensor)', () => {
  it.each(SHAPES.map((s, i) => [JSON.stringify(s), s, i] as const))(
    'equals the tf-ops formulation bit for bit on cpu and wasm: %s',
    async (_, shape, i) => {
      const ref = await onBoth(() => cases(sgdUpdateReference, shape, i));
      const fused = await onBoth(() => cases(sgdUpdate, shape, i));
      for (const backend of ['cpu', 'wasm'] as const) {
        const want = ref[backend];
        const got = fused[backend];
        expect(got.shapes).toEqual(want.shapes);
        got.values.forEach((v, j) => expect(bits(v)).toEqual(bits(want.values[j]!)));
      }
      // The two backends agree as well (both compute in float32, operation by operation).
      fused.cpu.values.forEach((v, j) => expect(bits(v)).toEqual(bits(fused.wasm.values[j]!)));
    },
  );

  it('thresholds to exact zeros and keeps the sign elsewhere', async () => {
    await initBackend('wasm');
    const w = tf.tensor1d([0.5, -0.05, 0.08, -0.3, 0, 1]);
    const g = tf.zeros([6]);
    const out = sgdUpdate(w, g, [], 0.1, 0.1);
    expect(Array.from(out.dataSync())).toEqual(
      [0.4, 0, 0, -0.2, 0, 0.9].map((v) => expect.closeTo(v, 6)),
    );
    tf.dispose([w, g, out]);
  });

  it('falls back to the reference for broadcast terms and other dtypes', async () => {
    await initBackend('wasm');
    const w = tf.tensor1d([1, 2, 3]);
    const g = tf.tensor1d([0.5, 0.5, 0.5]);
    const c = tf.scalar(2);
    const before = tf.memory().numTensors;
    const out = sgdUpdate(w, g, [{ kind: 'scaled', x: c, coef: 1 }], 0.1);
    expect(Array.from(out.dataSync())).toEqual([0.75, 1.75, 2.75].map((v) => expect.closeTo(v, 6)));
    expect(tf.memory().numTensors).toBe(before + 1);
    tf.dispose([w, g, c, out]);
  });

  it('names a bad threshold', async () => {
    await initBackend('wasm');
    const w = tf.zeros([2]);
    expect(() => sgdUpdate(w, w, [], 0.1, -1)).toThrow(/tau must be a finite number >= 0, got -1/);
    w.dispose();
  });
});
