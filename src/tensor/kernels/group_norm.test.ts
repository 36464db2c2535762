import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../backend.js';
import { Rng } from '../rng.js';
import { onBoth, randomTensor, relativeError } from './compare.js';
import { groupNorm, groupNormReference } from './group_norm.js';

const CASES: [number[], number][] = [
  [[2, 5, 4, 6], 2],
  [[2, 5, 4, 6], 3],
  [[1, 3, 3, 6], 1],
  [[1, 3, 3, 6], 6],
  [[3, 8, 8, 32], 2],
  [[2, 4, 4, 64], 2],
];

/** Loss sum(groupNorm(x) * r), its value and gradients in x, scale and offset. */
function lossAndGrads(
  norm: typeof groupNorm,
  shape: number[],
  groups: number,
  seed: number,
): tf.Tensor[] {
  const rng = Rng.derive(41, seed);
  const c = shape[3]!;
  const x = tf.add(tf.mul(randomTensor(rng, shape), 3), 0.5);
  const scale = tf.add(randomTensor(rng, [c]), 1);
  const offset = randomTensor(rng, [c]);
  const r = randomTensor(rng, shape);
  const f = (a: tf.Tensor, s: tf.Tensor, o: tf.Tensor) =>
    tf.sum(tf.mul(norm(a as tf.Tensor4D, s as tf.Tensor1D, o as tf.Tensor1D, groups), r));
  const { value, grads } = tf.valueAndGrads(f)([x, scale, offset]);
  return [
    norm(x as tf.Tensor4D, scale as tf.Tensor1D, offset as tf.Tensor1D, groups),
    value,
    ...grads,
  ];
}

describe('groupNorm (fused, with its own gradient)', () => {
  it.each(CASES.map(([s, g], i) => [JSON.stringify(s), g, s, i] as const))(
    'equals the tf-ops formulation on cpu, on cpu and wasm: x %s, %i groups',
    async (_, groups, shape, i) => {
      const { cpu: reference } = await onBoth(() =>
        lossAndGrads(groupNormReference, shape, groups, i),
      );
      const { cpu, wasm } = await onBoth(() => lossAndGrads(groupNorm, shape, groups, i));
      for (const out of [cpu, wasm]) {
        expect(out.shapes).toEqual(reference.shapes);
        out.values.forEach((v, j) =>
          expect(relativeError(v, reference.values[j]!)).toBeLessThan(2e-5),
        );
      }
    },
  );

  it('names the bad argument', async () => {
    await initBackend('wasm');
    const x = tf.zeros([1, 2, 2, 6]) as tf.Tensor4D;
    const s = tf.ones([6]) as tf.Tensor1D;
    const s4 = tf.ones([4]) as tf.Tensor1D;
    expect(() => groupNorm(x, s, s, 4)).toThrow(/groups must be a positive divisor of 6/);
    expect(() => groupNorm(x, s4, s, 2)).toThrow(/scale and offset must be \[6\]/);
    tf.dispose([x, s, s4]);
  });
});
