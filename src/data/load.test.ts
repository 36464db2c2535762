import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FASHION_MNIST_NORMALIZATION } from './idxDatasets.js';
import { loadDataset } from './load.js';
import { MNIST_NORMALIZATION, quotas, readMnistPackage } from './mnist.js';
import { labelCounts } from './stats.js';
import type { Dataset } from './types.js';

const bytes = (a: Float32Array | Int32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

function meanStd(x: Float32Array): [number, number] {
  let s = 0;
  let s2 = 0;
  for (const v of x) {
    s += v;
    s2 += v * v;
  }
  const m = s / x.length;
  return [m, Math.sqrt(s2 / x.length - m * m)];
}

/** Accuracy on `test` of the nearest class mean of `train` (a check that labels fit images). */
function nearestCentroidAccuracy(train: Dataset, test: Dataset): number {
  const d = train.x.length / train.y.length;
  const sums = Array.from({ length: train.classes }, () => new Float64Array(d));
  const counts = labelCounts(
    train.y,
    train.y.map((_, i) => i),
    train.classes,
  );
  train.y.forEach((c, i) => {
    const s = sums[c]!;
    for (let k = 0; k < d; k++) s[k]! += train.x[i * d + k]!;
  });
  const centroids = sums.map((s, c) => s.map((v) => v / counts[c]!));
  let correct = 0;
  test.y.forEach((label, i) => {
    let best = -1;
    let bestDist = Number.POSITIVE_INFINITY;
    centroids.forEach((m, c) => {
      let dist = 0;
      for (let k = 0; k < d; k++) dist += (test.x[i * d + k]! - m[k]!) ** 2;
      if (dist < bestDist) [best, bestDist] = [c, dist];
    });
    if (best === label) correct++;
  });
  return correct / test.y.length;
}

describe('embedded mnist', async () => {
  const { train, test } = await loadDataset({ name: 'mnist' });
  const { counts } = await readMnistPackage();

  it('holds the 10,000 real digits split 8,000 / 2,000, stratified by class', () => {
    expect(counts.reduce((a, b) => a + b, 0)).toBe(10_000);
    expect(train.y.length).toBe(8000);
    expect(test.y.length).toBe(2000);
    expect(train.shape).toEqual([28, 28, 1]);
    expect(train.x.length).toBe(8000 * 784);
    expect(test.x.length).toBe(2000 * 784);
    const testCounts = labelCounts(
      test.y,
      test.y.map((_, i) => i),
      10,
    );
    const trainCounts = labelCounts(
      train.y,
      train.y.map((_, i) => i),
      10,
    );
    const q = quotas(counts, 0.2);
    expect(Array.from(testCounts)).toEqual(q);
    expect(Array.from(trainCounts)).toEqual(counts.map((n, c) => n - q[c]!));
    for (const c of trainCounts) expect(c).toBeGreaterThan(600);
    expect(Math.min(...train.y)).toBe(0);
    expect(Math.max(...train.y)).toBe(9);
  });

  it('normalises the training set to mean 0 and std 1 with the documented constants', () => {
    const [m, s] = meanStd(train.x);
    expect(Math.abs(m)).toBeLessThan(1e-3);
    expect(Math.abs(s - 1)).toBeLessThan(1e-3);
    expect(MNIST_NORMALIZATION.mean[0]).toBeCloseTo(0.1312, 4);
  });

  it('has labels that match the images (nearest class mean gets > 75% of the test set)', () => {
    expect(nearestCentroidAccuracy(train, test)).toBeGreaterThan(0.75);
  });

  it('keeps train and test images apart and gives the same split every time', async () => {
    const key = (ds: Dataset, i: number) =>
      Buffer.from(ds.x.buffer, ds.x.byteOffset + i * 784 * 4, 784 * 4).toString('base64');
    const trainKeys = new Set(Array.from(train.y, (_, i) => key(train, i)));
    const shared = Array.from(test.y, (_, i) => key(test, i)).filter((k) => trainKeys.has(k));
    expect(shared.length).toBeLessThan(5);
    const again = await loadDataset({ name: 'mnist' });
    expect(Buffer.compare(bytes(again.test.y), bytes(test.y))).toBe(0);
    expect(Buffer.compare(bytes(again.train.x), bytes(train.x))).toBe(0);
  });
});

describe('largest-remainder quotas', () => {
  it('hit the rounded total exactly', () => {
    expect(quotas([3, 3, 3], 0.5)).toEqual([2, 2, 1]);
    expect(quotas([10, 0, 5], 0.2).reduce((a, b) => a + b, 0)).toBe(3);
  });
});

const debianFashion = '/usr/share/datasets/fashion-mnist';
describe.skipIf(!existsSync(debianFashion))('Debian fashion-mnist', () => {
  it('loads 60,000 / 10,000 images, 6,000 per class, normalised to mean 0 / std 1', async () => {
    const { train, test } = await loadDataset({ name: 'fashion-mnist', dir: debianFashion });
    expect(train.y.length).toBe(60_000);
    expect(test.y.length).toBe(10_000);
    expect(train.shape).toEqual([28, 28, 1]);
    const counts = labelCounts(
      train.y,
      train.y.map((_, i) => i),
      10,
    );
    expect(Array.from(counts)).toEqual(new Array(10).fill(6000));
    const [m, s] = meanStd(train.x);
    expect(Math.abs(m)).toBeLessThan(2e-3);
    expect(Math.abs(s - 1)).toBeLessThan(2e-3);
    expect(FASHION_MNIST_NORMALIZATION.std[0]).toBeCloseTo(0.353, 3);
  });
});

describe('loadDataset', () => {
  it('names the allowed datasets when given an unknown one', async () => {
    await expect(loadDataset({ name: 'svhn' as 'mnist' })).rejects.toThrow(
      /unknown dataset 'svhn'; expected one of mnist, fashion-mnist, mnist-idx, cifar10, cifar100/,
    );
  });
});
