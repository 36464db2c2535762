/**
 * An end-to-end check of the training loop on real data (slow next to train.test.ts's unit
 * tests, so the mutation run leaves it out: vitest.mutation.config.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createModel } from '../models/index.js';
import { initBackend } from '../tensor/backend.js';
import { disposeParams } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { disposeData, evaluate, toTensors, trainLocal } from './loop.js';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('training on real MNIST digits', () => {
  it('lowers the cnn loss on held-out digits in two epochs', async () => {
    const { loadDataset } = await import('../data/load.js');
    const { train, test } = await loadDataset({ name: 'mnist' });
    const take = (ds: typeof train, n: number) =>
      toTensors(ds.x.subarray(0, n * 784), ds.y.subarray(0, n), [28, 28, 1]);
    const d = take(train, 600);
    const heldOut = take(test, 300);
    const cnn = createModel('cnn', { inputShape: [28, 28, 1], classes: 10 });
    const w = cnn.init(new Rng(1));
    const before = await evaluate(cnn, w, heldOut);
    const live = tf.memory().numTensors;
    const r = await trainLocal(w, {
      model: cnn,
      data: d,
      epochs: 2,
      batchSize: 20,
      lr: 0.1,
      rng: new Rng(2),
    });
    expect(tf.memory().numTensors).toBe(live + Object.keys(w).length);
    const after = await evaluate(cnn, r.params, heldOut);
    expect(before.loss).toBeGreaterThan(2);
    expect(after.loss).toBeLessThan(0.6 * before.loss);
    expect(after.acc).toBeGreaterThan(0.75);
    disposeParams(w, r.params);
    disposeData(d);
    disposeData(heldOut);
  });
});
