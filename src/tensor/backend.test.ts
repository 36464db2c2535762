import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';

describe('initBackend', () => {
  it('initialises once when called concurrently, as a process hosting several clients does', async () => {
    const names = await Promise.all([
      initBackend('wasm', { threads: 1 }),
      initBackend('wasm', { threads: 1 }),
      initBackend('wasm', { threads: 1 }),
    ]);
    expect(names).toEqual(['wasm', 'wasm', 'wasm']);
    expect(tf.getBackend()).toBe('wasm');
    expect(await tf.sum(tf.tensor([1, 2, 3])).data()).toEqual(new Float32Array([6]));
  });

  it('runs the calls in the order made, and one failure does not block the next', async () => {
    const bad = initBackend('nonsense' as 'cpu');
    const cpu = initBackend('cpu');
    await expect(bad).rejects.toThrow(/expected one of/);
    expect(await cpu).toBe('cpu');
    expect(await initBackend('wasm', { threads: 1 })).toBe('wasm');
  });
});
