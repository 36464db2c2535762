import { describe, expect, it } from 'vitest';
import { Rng } from '../tensor/rng.js';
import { dirichletPartition } from './partition.js';
import { labelCounts } from './stats.js';
import { proportionalTestSplit } from './testSplit.js';

const CLASSES = 10;
const trainLabels = new Rng(1).shuffle(
  Int32Array.from({ length: 4000 }, (_, i) => i % CLASSES),
) as Int32Array;
/** Test pools of 100 per class, except class 3 which has only 5 images. */
const testLabels = Int32Array.from(
  Array.from({ length: 1000 }, (_, i) => i % CLASSES).filter((c, i) => c !== 3 || i < 50),
);
const partition = dirichletPartition(trainLabels, CLASSES, 15, { alpha: 0.3 }, new Rng(2));

describe('proportional test split', () => {
  it('takes floor(share_c * K) images of each class, capped by the pool, no repeats', () => {
    for (const K of [100, 37]) {
      const tests = proportionalTestSplit(
        trainLabels,
        partition,
        testLabels,
        CLASSES,
        new Rng(3),
        K,
      );
      const pool = labelCounts(
        testLabels,
        testLabels.map((_, i) => i),
        CLASSES,
      );
      let capped = 0;
      tests.forEach((t, client) => {
        const trainCounts = labelCounts(trainLabels, partition[client]!, CLASSES);
        const n = partition[client]!.length;
        const got = labelCounts(testLabels, t, CLASSES);
        for (let c = 0; c < CLASSES; c++) {
          const want = Math.floor((trainCounts[c]! * K) / n);
          if (want > pool[c]!) capped++;
          expect(got[c]).toBe(Math.min(want, pool[c]!));
        }
        expect(new Set(t).size).toBe(t.length);
        expect(t.length).toBeLessThanOrEqual(K);
        expect(t.length).toBeGreaterThan(0);
      });
      expect(capped).toBeGreaterThan(0);
    }
  });

  it('uses exact integer shares (a uniform client over 100 classes gets one of each)', () => {
    const labels = Int32Array.from({ length: 300 }, (_, i) => i % 100);
    const [t] = proportionalTestSplit(
      labels,
      [Int32Array.from(labels.keys())],
      labels,
      100,
      new Rng(1),
    );
    expect(Array.from(labelCounts(labels, t!, 100))).toEqual(new Array(100).fill(1));
  });

  it('is deterministic for a seed, and clients draw different images', () => {
    const a = proportionalTestSplit(trainLabels, partition, testLabels, CLASSES, new Rng(4));
    const b = proportionalTestSplit(trainLabels, partition, testLabels, CLASSES, new Rng(4));
    const c = proportionalTestSplit(trainLabels, partition, testLabels, CLASSES, new Rng(5));
    expect(a.map((t) => Array.from(t))).toEqual(b.map((t) => Array.from(t)));
    expect(a.map((t) => Array.from(t))).not.toEqual(c.map((t) => Array.from(t)));
  });

  it('rejects a bad K and clients without training data', () => {
    expect(() =>
      proportionalTestSplit(trainLabels, partition, testLabels, CLASSES, new Rng(1), 0),
    ).toThrow(/perClient must be a positive integer, got 0/);
    expect(() =>
      proportionalTestSplit(trainLabels, [new Int32Array(0)], testLabels, CLASSES, new Rng(1)),
    ).toThrow(/client 0 has no training samples/);
  });
});
