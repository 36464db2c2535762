import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../backend.js';
import { onBoth } from './compare.js';

const buffers = () => tf.engine().backend.numDataIds();

describe('Identity and Cast on wasm', () => {
  it('clone shares the buffer, and each tensor stays valid after the other is disposed', async () => {
    await initBackend('wasm');
    const before = buffers();
    const a = tf.tensor([1, 2, 3, 4], [2, 2]);
    const b = tf.clone(a);
    expect(buffers()).toBe(before + 1);
    a.dispose();
    expect(Array.from(b.dataSync())).toEqual([1, 2, 3, 4]);
    expect(b.shape).toEqual([2, 2]);
    b.dispose();
    expect(buffers()).toBe(before);
  });

  it('a float32 -> float32 cast shares the buffer; other casts convert as on cpu', async () => {
    await initBackend('wasm');
    const before = buffers();
    const a = tf.tensor([1.5, -2.5, 0, 3.25]);
    const same = tf.cast(a, 'float32');
    expect(buffers()).toBe(before + 1);
    tf.dispose([a, same]);
    expect(buffers()).toBe(before);
    const { cpu, wasm } = await onBoth(() => {
      const x = tf.tensor([1.5, -2.5, 0, 3.25, 7.9]);
      return [tf.cast(x, 'int32'), tf.cast(x, 'bool'), tf.cast(tf.cast(x, 'int32'), 'float32')];
    });
    expect(wasm.values.map((v) => Array.from(v))).toEqual(cpu.values.map((v) => Array.from(v)));
  });

  it('saved tensors of the backward pass are not copied', async () => {
    await initBackend('wasm');
    const x = tf.randomNormal([4, 8, 8, 3]);
    const w = tf.randomNormal([3, 3, 3, 5]);
    const before = buffers();
    const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.relu(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'))),
    )([x, w]);
    expect(buffers()).toBe(before + 2);
    tf.dispose([x, w, ...grads]);
  });
});
