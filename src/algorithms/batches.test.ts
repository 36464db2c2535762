/** The epoch loss and accuracy sums of APFL and Per-FedAvg. */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../tensor/backend.js';
import { EpochStats } from './batches.js';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('EpochStats', () => {
  it('gives the loss and accuracy per sample of the steps added, and frees their scalars', async () => {
    const before = tf.memory().numTensors;
    const stats = new EpochStats();
    // Two batches: 3 samples with loss sum 1.5 and 2 correct, 1 sample with loss 0.5, none correct.
    stats.add(tf.scalar(1.5), tf.scalar(2), 3);
    stats.add(tf.scalar(0.5), tf.scalar(0), 1);
    expect(await stats.result()).toEqual({ loss: 0.5, acc: 0.5 });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('forgets and frees the previous epoch when the next one starts', async () => {
    const before = tf.memory().numTensors;
    const stats = new EpochStats();
    stats.add(tf.scalar(9), tf.scalar(1), 2);
    stats.newEpoch();
    expect(tf.memory().numTensors).toBe(before);
    stats.add(tf.scalar(3), tf.scalar(4), 4);
    expect(await stats.result()).toEqual({ loss: 0.75, acc: 1 });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('reports NaN when no step was added', async () => {
    expect(await new EpochStats().result()).toEqual({ loss: Number.NaN, acc: Number.NaN });
  });
});
