import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../tensor/backend.js';
import { benchServer } from './server.js';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('bench server', () => {
  it('times consecutive FedSLR server steps and keeps the planted rank in the low regime', async () => {
    const before = tf.memory().numTensors;
    const r = await benchServer('mlp', 10, 'low', 3, 2);
    expect(r.round_s).toHaveLength(2);
    expect(r.round_s.every((s) => s > 0)).toBe(true);
    expect(r.warm_s).toBe(r.round_s[1]);
    // mlp 784-200-200-10: planted ranks 20, 20 and 1 of 200, 200 and 10.
    expect(r.matrices).toBe(3);
    expect(r.rank_ratio).toBeCloseTo(41 / 410, 12);
    const full = await benchServer('mlp', 10, 'full', 3, 1);
    expect(full.rank_ratio).toBeGreaterThan(0.9);
    expect(full.warm_s).toBeNull();
    expect(tf.memory().numTensors).toBe(before);
  });
});
