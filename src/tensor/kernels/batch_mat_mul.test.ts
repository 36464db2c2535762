import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend.js';
import { Rng } from '../rng.js';
import { productOrder } from './batch_mat_mul.js';
import { onBoth, randomTensor, relativeError } from './compare.js';
import { registerWasmKernels, unregisterWasmKernels } from './register.js';

/** [m, k, n]: small and layer-like shapes, so that both product orders are exercised. */
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 7],
  [20, 196, 64],
  [20, 300, 40],
  [300, 20, 40],
  [40, 20, 300],
  [17, 64, 10],
  [64, 17, 1],
];
const FLAGS: [boolean, boolean][] = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];
const CASES = SHAPES.flatMap((s) => FLAGS.map((f) => [...s, ...f] as const));

describe('BatchMatMul on wasm', () => {
  it('exercises both product orders', () => {
    const orders = new Set(CASES.map(([m, k, n, ta, tb]) => productOrder(m, k, n, ta, tb)));
    expect(orders).toEqual(new Set(['direct', 'swapped']));
  });

  it('swaps the product when the right operand is the large one', () => {
    expect(productOrder(20, 3136, 512, false, false)).toBe('swapped');
    expect(productOrder(20, 512, 3136, false, true)).toBe('swapped');
    expect(productOrder(3136, 20, 512, true, false)).toBe('direct');
  });

  it.each(CASES)(
    'equals cpu: [%i x %i] x [%i x ...] transposeA=%s transposeB=%s',
    async (m, k, n, ta, tb) => {
      const { cpu, wasm } = await onBoth(() => {
        const rng = Rng.derive(21, m, k, n, Number(ta), Number(tb));
        const a = randomTensor(rng, ta ? [k, m] : [m, k]) as tf.Tensor2D;
        const b = randomTensor(rng, tb ? [n, k] : [k, n]) as tf.Tensor2D;
        return tf.matMul(a, b, ta, tb);
      });
      expect(wasm.shapes).toEqual([[m, n]]);
      expect(relativeError(wasm.values[0]!, cpu.values[0]!)).toBeLessThan(1e-5);
    },
  );

  it('handles rank 3 with batch 1, broadcasting, and batch > 1', async () => {
    const { cpu, wasm } = await onBoth(() => {
      const rng = new Rng(22);
      const a1 = randomTensor(rng, [1, 30, 12]) as tf.Tensor3D;
      const b1 = randomTensor(rng, [1, 40, 30]) as tf.Tensor3D;
      const b2 = randomTensor(rng, [12, 9]) as tf.Tensor2D;
      const a4 = randomTensor(rng, [4, 6, 5]) as tf.Tensor3D;
      const b4 = randomTensor(rng, [4, 7, 6]) as tf.Tensor3D;
      return [tf.matMul(a1, b1, true, true), tf.matMul(a1, b2), tf.matMul(a4, b4, true, true)];
    });
    expect(wasm.shapes).toEqual([
      [1, 12, 40],
      [1, 30, 9],
      [4, 5, 7],
    ]);
    wasm.values.forEach((v, i) => expect(relativeError(v, cpu.values[i]!)).toBeLessThan(1e-5));
  });

  it('gives dense-layer gradients equal to cpu', async () => {
    const { cpu, wasm } = await onBoth(() => {
      const rng = new Rng(23);
      const x = randomTensor(rng, [20, 300]);
      const w = randomTensor(rng, [300, 64]);
      const r = randomTensor(rng, [20, 64]);
      const f = (a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D), r));
      return tf.grads(f)([x, w]);
    });
    wasm.values.forEach((v, i) => expect(relativeError(v, cpu.values[i]!)).toBeLessThan(1e-5));
  });

  it('names the shapes when inner dimensions differ', async () => {
    await initBackend('wasm');
    const a = tf.zeros([3, 4]);
    const b = tf.zeros([5, 6]);
    expect(() =>
      tf.engine().runKernel('BatchMatMul', { a, b }, { transposeA: false, transposeB: false }),
    ).toThrow(/inner dimensions 4 and 5/);
    tf.dispose([a, b]);
  });
});

describe('registerWasmKernels / unregisterWasmKernels', () => {
  afterAll(() => registerWasmKernels());

  it('restore the built-in kernels and register ours again', async () => {
    await initBackend('wasm');
    const ours = tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc;
    unregisterWasmKernels();
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeUndefined();
    const builtin = tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc;
    expect(builtin).not.toBe(ours);
    registerWasmKernels();
    registerWasmKernels();
    expect(tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc).toBe(ours);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
  });
});
