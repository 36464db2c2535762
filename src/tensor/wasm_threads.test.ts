import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend, wasmThreads } from './backend.js';
import { prepareWasmThreads } from './wasm_threads.js';

describe('threaded wasm backend in Node', () => {
  it('runs XNNPACK on the threads asked for, on shared memory', async () => {
    expect(await initBackend('wasm', { threads: 2 })).toBe('wasm');
    expect(wasmThreads()).toEqual({ threads: 2 });
    const heap = (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8;
    expect(heap.buffer).toBeInstanceOf(SharedArrayBuffer);
    // A product large enough to be split over both threads, against the cpu backend.
    const a = tf.randomUniform([300, 200], -1, 1, 'float32', 1);
    const b = tf.randomUniform([200, 250], -1, 1, 'float32', 2);
    const ours = tf.matMul(a, b).dataSync();
    await initBackend('cpu');
    const ref = tf.matMul(tf.tensor(a.dataSync(), a.shape), tf.tensor(b.dataSync(), b.shape));
    const r = ref.dataSync();
    let err = 0;
    for (let i = 0; i < r.length; i++) err = Math.max(err, Math.abs(ours[i]! - r[i]!));
    expect(err).toBeLessThan(1e-4);
    // The backend keeps its threads when selected again.
    await initBackend('wasm', { threads: 1 });
    expect(wasmThreads().threads).toBe(2);
  });

  it('refuses thread counts it cannot give, with the reason', () => {
    const set = () => {};
    expect(prepareWasmThreads(1, set)).toEqual({ reason: expect.stringMatching(/2\.\.8, got 1/) });
    expect(prepareWasmThreads(9, set)).toEqual({ reason: expect.stringMatching(/got 9/) });
  });
});
