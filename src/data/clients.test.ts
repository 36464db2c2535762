import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../tensor/rng.js';
import { buildClientData, federate, gather } from './clients.js';
import { writeSplitFile } from './partitionFile.js';
import { labelCounts } from './stats.js';
import type { Dataset, DatasetSplits } from './types.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fedslr-clients-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A 2x2x1 dataset where every value of sample i is i + label / 10, so rows are recognisable. */
function synthetic(n: number, seed: number): Dataset {
  const rng = new Rng(seed);
  const y = Int32Array.from({ length: n }, () => rng.int(4));
  const x = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) x.fill(i + y[i]! / 10, i * 4, (i + 1) * 4);
  return {
    name: 'toy',
    x,
    y,
    shape: [2, 2, 1],
    classes: 4,
    normalization: { mean: [0], std: [1] },
  };
}
const splits: DatasetSplits = { train: synthetic(400, 1), test: synthetic(200, 2) };

describe('client views', () => {
  it('gather copies the chosen samples into contiguous arrays', () => {
    const s = gather(splits.train, [7, 2, 399]);
    expect(s.size).toBe(3);
    expect(Array.from(s.y)).toEqual([7, 2, 399].map((i) => splits.train.y[i]));
    expect(Array.from(s.x.subarray(4, 8))).toEqual(Array.from(splits.train.x.subarray(8, 12)));
    expect(s.x.buffer).not.toBe(splits.train.x.buffer);
    expect(() => gather(splits.train, [400])).toThrow(
      /index 400 is outside dataset 'toy' \(400 samples\)/,
    );
  });

  it('buildClientData pairs each client with its train and test samples', () => {
    const clients = buildClientData(
      splits,
      [Int32Array.of(0, 1), Int32Array.of(5)],
      [Int32Array.of(3), Int32Array.of(4, 6)],
    );
    expect(clients.map((c) => [c.id, c.train.size, c.test.size])).toEqual([
      [0, 2, 1],
      [1, 1, 2],
    ]);
    expect(clients[1]!.test.x[4]).toBe(splits.test.x[6 * 4]);
    expect(() => buildClientData(splits, [Int32Array.of(0)], [])).toThrow(
      /1 train index lists but 0 test lists/,
    );
  });
});

describe('federate', () => {
  it('partitions, draws proportional test sets of about K, and copies data out', async () => {
    const fed = await federate(splits, {
      clients: 8,
      seed: 11,
      partition: { kind: 'dirichlet', alpha: 0.5, minSize: 5 },
      testPerClient: 40,
    });
    expect(fed.clients).toHaveLength(8);
    expect(fed.testFromFile).toBe(false);
    expect(fed.trainIndices.reduce((n, p) => n + p.length, 0)).toBe(400);
    fed.clients.forEach((c, i) => {
      expect(c.train.size).toBe(fed.trainIndices[i]!.length);
      expect(c.test.size).toBe(fed.testIndices[i]!.length);
      expect(c.test.size).toBeGreaterThan(40 - 4);
      expect(c.test.size).toBeLessThanOrEqual(40);
      // Classes absent from a client's training data are absent from its test set.
      const trainCounts = labelCounts(
        c.train.y,
        c.train.y.map((_, k) => k),
        4,
      );
      const testCounts = labelCounts(
        c.test.y,
        c.test.y.map((_, k) => k),
        4,
      );
      trainCounts.forEach((n, cls) => {
        if (n === 0) expect(testCounts[cls]).toBe(0);
      });
    });
  });

  it('gives identical data for the same seed and different data for another', async () => {
    const opts = { clients: 5, partition: { kind: 'iid' as const } };
    const a = await federate(splits, { ...opts, seed: 1 });
    const b = await federate(splits, { ...opts, seed: 1 });
    const c = await federate(splits, { ...opts, seed: 2 });
    const key = (f: typeof a) =>
      JSON.stringify([f.trainIndices, f.testIndices].map((p) => p.map((q) => Array.from(q))));
    expect(key(a)).toBe(key(b));
    expect(key(a)).not.toBe(key(c));
  });

  it('replays a split file, taking its test sets when it has them', async () => {
    const path = join(root, 'split.json');
    const train = [Int32Array.of(0, 1, 2), Int32Array.of(3, 4)];
    const test = [Int32Array.of(9), Int32Array.of(8, 7)];
    await writeSplitFile(path, { train, test });
    const fed = await federate(splits, { clients: 2, seed: 0, partition: { kind: 'file', path } });
    expect(fed.testFromFile).toBe(true);
    expect(fed.testIndices.map((t) => Array.from(t))).toEqual([[9], [8, 7]]);
    expect(Array.from(fed.clients[1]!.train.y)).toEqual([3, 4].map((i) => splits.train.y[i]));

    await writeSplitFile(path, { train });
    const drawn = await federate(splits, {
      clients: 2,
      seed: 0,
      partition: { kind: 'file', path },
    });
    expect(drawn.testFromFile).toBe(false);
    expect(drawn.testIndices[0]!.length).toBeGreaterThan(0);
    await expect(
      federate(splits, { clients: 3, seed: 0, partition: { kind: 'file', path } }),
    ).rejects.toThrow(/"train" has 2 clients but the config asks for 3/);
  });

  it('supports the pathological partition', async () => {
    const fed = await federate(splits, {
      clients: 4,
      seed: 3,
      partition: { kind: 'pathological', classesPerClient: 2 },
    });
    for (const c of fed.clients) {
      expect(
        labelCounts(
          c.train.y,
          c.train.y.map((_, k) => k),
          4,
        ).filter((n) => n > 0).length,
      ).toBe(2);
    }
  });
});
