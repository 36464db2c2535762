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
    expect(() => proxL1({ w: t }, -1)).toThrow(/^proxL1: tau must be/);
    expect(() => softThreshold(t, -1)).toThrow(/^softThreshold: tau must be/);
    t.dispose();
  });

  it('is the identity at tau = 0', () => {
    const t = tf.tensor1d([0.25, -3, 0]);
    const y = softThreshold(t, 0);
    expect(Array.from(y.dataSync())).toEqual([0.25, -3, 0]);
    tf.dispose([t, y]);
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
    expect(() => proxL1(p, 1, ['nope'])).toThrow(/^proxL1: no parameter 'nope' \(have w, b\)$/);
    disposeParams(p, q, all);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('gives density 0, not NaN, for empty tensors and an empty set', () => {
    const p = { e: tf.tensor1d([]) };
    expect(density(p)).toEqual({ perTensor: { e: 0 }, nonZeros: 0, size: 0, overall: 0 });
    expect(density({}).overall).toBe(0);
    disposeParams(p);
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

  it('has ratio 1 without matrices', () => {
    expect(rankSummary({})).toEqual({ perTensor: {}, rank: 0, fullRank: 0, ratio: 1 });
  });

  it('scales the default tolerance with the largest value and the larger side', () => {
    // tol = max(rows, cols) * eps32 * top: 10 * 1.19e-7 * 1000 = 1.19e-3 here.
    expect(numericalRank([1000, 1.5e-3, 1e-3], 10, 10)).toBe(2);
    // The larger side (10), not the smaller (2): tol = 1.19e-6.
    expect(numericalRank([1, 1e-6], 10, 2)).toBe(1);
    expect(numericalRank([1, 1e-6], 2, 10)).toBe(1);
    // Strictly above the tolerance.
    expect(numericalRank([1, 0.5], 2, 2, 0.5)).toBe(1);
  });
});
