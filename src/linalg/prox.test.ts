import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../tensor/backend.js';
import { disposeParams } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { density, lowRankPays, numericalRank, proxL1, rankSummary, softThreshold } from './prox.js';

beforeAll(async () => {
  await initBackend('cpu');
});

describe('softThreshold', () => {
  it('equals sign(x) * max(|x| - tau, 0) element by element', () => {
    const rng = new Rng(3);
    const xs = Array.from({ length: 200 }, () => rng.normal());
    const before = tf.memory().numTensors;
    const t = tf.tensor1d(xs);
    const y = softThreshold(t, 0.4);
    const got = y.dataSync();
    xs.forEach((x, i) => {
      const want = Math.sign(x) * Math.max(Math.abs(x) - 0.4, 0);
      expect(got[i]).toBeCloseTo(want, 6);
    });
    expect(got.filter((v) => v === 0).length).toBe(xs.filter((x) => Math.abs(x) <= 0.4).length);
    tf.dispose([t, y]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects a negative or non-finite tau', () => {
    const t = tf.tensor1d([1]);
    expect(() => softThreshold(t, -1)).toThrow(/tau/);
    expect(() => softThreshold(t, Number.NaN)).toThrow(/tau/);
    t.dispose();
  });
});

describe('proxL1 and density', () => {
  it('thresholds only the named tensors and counts the zeros it makes', () => {
    const before = tf.memory().numTensors;
    const p = {
      w: tf.tensor2d([
        [0.5, -2],
        [0.1, 3],
      ]),
      b: tf.tensor1d([0.05, -0.05]),
    };
    const q = proxL1(p, 1, ['w']);
    expect(Array.from(q.w!.dataSync())).toEqual([0, -1, 0, 2]);
    expect(Array.from(q.b!.dataSync())).toEqual(Array.from(p.b.dataSync()));
    const d = density(q);
    expect(d.perTensor).toEqual({ w: 0.5, b: 1 });
    expect(d.nonZeros).toBe(4);
    expect(d.overall).toBeCloseTo(4 / 6, 12);
    const all = proxL1(p, 1);
    expect(density(all).overall).toBeCloseTo(2 / 6, 12);
    expect(() => proxL1(p, 1, ['nope'])).toThrow(/nope/);
    disposeParams(p, q, all);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('rank helpers', () => {
  it('sums ranks, counts numerical rank and decides when factors pay', () => {
    const s = rankSummary({ a: { rank: 2, fullRank: 4 }, b: { rank: 6, fullRank: 6 } });
    expect(s.rank).toBe(8);
    expect(s.fullRank).toBe(10);
    expect(s.ratio).toBeCloseTo(0.8, 12);
    expect(numericalRank([3, 1, 1e-9, 0], 4, 4)).toBe(2);
    expect(numericalRank([3, 1, 0.5], 4, 4, 0.75)).toBe(2);
    expect(lowRankPays(100, 100, 49)).toBe(true);
    expect(lowRankPays(100, 100, 50)).toBe(false);
  });
});
