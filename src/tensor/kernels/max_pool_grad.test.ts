import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import { onBoth, randomValues, relativeError } from './compare.js';

interface Case {
  shape: [number, number, number, number];
  size: [number, number];
  stride: [number, number];
  pad: 'same' | 'valid' | number;
}

const CASES: Case[] = [
  { shape: [1, 4, 4, 1], size: [2, 2], stride: [2, 2], pad: 'valid' },
  { shape: [3, 7, 9, 5], size: [2, 2], stride: [2, 2], pad: 'valid' },
  { shape: [2, 7, 7, 8], size: [3, 3], stride: [2, 2], pad: 'same' },
  { shape: [2, 6, 5, 3], size: [3, 3], stride: [1, 1], pad: 'same' },
  { shape: [1, 9, 8, 64], size: [3, 2], stride: [2, 1], pad: 'valid' },
  { shape: [2, 8, 8, 16], size: [3, 3], stride: [2, 2], pad: 1 },
];

/** Values on a coarse grid with many exact zeros (as after a ReLU), so windows have ties. */
function tiedValues(rng: Rng, n: number): Float32Array {
  return randomValues(rng, n).map((v) => Math.max(0, Math.round(v * 3)));
}

/** Tied values with every fifth one NaN: a NaN is never a window's maximum. */
function withNaN(rng: Rng, n: number): Float32Array {
  return tiedValues(rng, n).map((v, i) => (i % 5 === 2 ? Number.NaN : v));
}

describe('MaxPoolGrad on wasm', () => {
  it.each(CASES.map((c, i) => [JSON.stringify(c), c, i] as const))(
    'equals cpu, with and without ties and NaN: %s',
    async (_, c, i) => {
      const { cpu, wasm } = await onBoth(() => {
        const rng = Rng.derive(31, i);
        const n = c.shape.reduce((a, b) => a * b, 1);
        const f = (x: tf.Tensor) => tf.maxPool(x as tf.Tensor4D, c.size, c.stride, c.pad);
        const grads = [randomValues(rng, n), tiedValues(rng, n), withNaN(rng, n)].map((values) => {
          const x = tf.tensor4d(values, c.shape);
          const y = f(x);
          const dy = tf.tensor(randomValues(rng, y.size), y.shape);
          return tf.grad(f)(x, dy);
        });
        return grads;
      });
      expect(wasm.shapes).toEqual([c.shape, c.shape, c.shape]);
      wasm.values.forEach((v, j) => expect(relativeError(v, cpu.values[j]!)).toBeLessThan(1e-6));
    },
  );
});
