import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../backend.js';
import { Rng } from '../rng.js';
import { onBoth, randomValues, relativeError } from './compare.js';
import { builtinKernels } from './wasm.js';

const CASES: { shape: number[]; axis: number[]; keepDims: boolean }[] = [
  { shape: [20, 7, 7, 8], axis: [0, 1, 2], keepDims: false },
  { shape: [20, 7, 7, 8], axis: [-4, -3, -2], keepDims: true },
  { shape: [5, 3, 4], axis: [0], keepDims: false },
  { shape: [5, 3, 4], axis: [1, 0], keepDims: false },
  { shape: [33, 10], axis: [0], keepDims: true },
  { shape: [1, 6], axis: [0], keepDims: false },
  { shape: [4, 3, 2], axis: [1], keepDims: false },
  { shape: [4, 3, 2], axis: [0, 1, 2], keepDims: false },
];

/** Random values with signed zeros, infinities and a NaN mixed in. */
function awkwardValues(rng: Rng, n: number): Float32Array {
  const specials = [0, -0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN];
  return randomValues(rng, n).map((v, i) => (i % 7 === 3 ? specials[i % 5]! : v * 1e3));
}

/** The bit patterns, every NaN as one (wasm and JavaScript give inf - inf different signs). */
const bits = (a: Float32Array) =>
  Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length), (b, i) =>
    Number.isNaN(a[i]) ? 0x7fc00000 : b,
  );

describe('Sum on wasm', () => {
  it.each(CASES.map((c, i) => [JSON.stringify(c), c, i] as const))(
    'equals the built-in kernel bit for bit and cpu to rounding: %s',
    async (_, c, i) => {
      await initBackend('wasm');
      const backend = tf.engine().backend as BackendWasm;
      const rng = Rng.derive(41, i);
      const n = c.shape.reduce((a, b) => a * b, 1);
      for (const values of [randomValues(rng, n), awkwardValues(rng, n)]) {
        const x = tf.tensor(values, c.shape);
        const ours = tf.sum(x, c.axis, c.keepDims);
        const info = builtinKernels.get('Sum')!.kernelFunc({
          inputs: { x },
          backend,
          attrs: { axis: c.axis, keepDims: c.keepDims },
        }) as tf.TensorInfo;
        expect(ours.shape).toEqual(info.shape);
        const theirs = backend.readSync(info.dataId) as Float32Array;
        expect(bits(ours.dataSync() as Float32Array)).toEqual(bits(theirs));
        backend.disposeData(info.dataId);
        tf.dispose([x, ours]);
      }
      const { cpu, wasm } = await onBoth(() =>
        tf.sum(tf.tensor(randomValues(Rng.derive(42, i), n), c.shape), c.axis, c.keepDims),
      );
      expect(wasm.shapes).toEqual(cpu.shapes);
      expect(relativeError(wasm.values[0]!, cpu.values[0]!)).toBeLessThan(1e-5);
    },
  );

  it('leaves int32 sums to the built-in kernel', async () => {
    await initBackend('wasm');
    const x = tf.tensor([1, 2, 3, 4, 5, 6], [3, 2], 'int32');
    const s = tf.sum(x, 0);
    expect(s.dtype).toBe('int32');
    expect(Array.from(s.dataSync())).toEqual([9, 12]);
    tf.dispose([x, s]);
  });
});
