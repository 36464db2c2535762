import { describe, expect, it } from 'vitest';
import { Rng } from '../tensor/rng.js';
import {
  dirichletPartition,
  iidPartition,
  indicesByClass,
  type Partition,
  pathologicalPartition,
} from './partition.js';
import { labelCounts, partitionStats } from './stats.js';

const CLASSES = 10;
/** 5,000 labels: 500 of each class, in random order. */
const LABELS = (() => {
  const y = Int32Array.from({ length: 5000 }, (_, i) => i % CLASSES);
  return new Rng(123).shuffle(y) as Int32Array;
})();

function expectDisjoint(parts: Partition): void {
  const seen = new Set<number>();
  for (const p of parts) {
    for (const i of p) {
      expect(seen.has(i)).toBe(false);
      seen.add(i);
    }
  }
}

function expectCoversAll(parts: Partition, n: number): void {
  const all = parts.flatMap((p) => Array.from(p)).sort((a, b) => a - b);
  expect(all).toEqual(Array.from({ length: n }, (_, i) => i));
}

const same = (a: Partition, b: Partition) =>
  a.length === b.length &&
  a.every((p, i) => p.length === b[i]!.length && p.every((v, k) => v === b[i]![k]));

describe('iid partition', () => {
  it('uses every sample once, in near-equal parts with near-uniform labels', () => {
    const parts = iidPartition(LABELS.length, 7, new Rng(1));
    expect(parts).toHaveLength(7);
    expectCoversAll(parts, LABELS.length);
    const sizes = parts.map((p) => p.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    expect(partitionStats(LABELS, parts, CLASSES).meanLabelEntropy).toBeGreaterThan(
      0.98 * Math.log(CLASSES),
    );
  });

  it('is deterministic for a seed and differs for another seed', () => {
    expect(same(iidPartition(1000, 4, new Rng(3)), iidPartition(1000, 4, new Rng(3)))).toBe(true);
    expect(same(iidPartition(1000, 4, new Rng(3)), iidPartition(1000, 4, new Rng(4)))).toBe(false);
  });

  it('rejects bad client counts', () => {
    expect(() => iidPartition(10, 0, new Rng(1))).toThrow(
      /clients must be a positive integer, got 0/,
    );
    expect(() => iidPartition(10, 11, new Rng(1))).toThrow(
      /11 clients need at least as many samples/,
    );
  });
});

describe('dirichlet partition', () => {
  it('uses every sample exactly once and respects minSize', () => {
    for (const balance of [true, false]) {
      const parts = dirichletPartition(
        LABELS,
        CLASSES,
        20,
        { alpha: 0.3, minSize: 20, balance },
        new Rng(2),
      );
      expect(parts).toHaveLength(20);
      expectDisjoint(parts);
      expectCoversAll(parts, LABELS.length);
      for (const p of parts) expect(p.length).toBeGreaterThanOrEqual(20);
    }
  });

  it('skews labels more as alpha shrinks (mean per-client label entropy)', () => {
    const entropyAt = (alpha: number) => {
      let total = 0;
      for (let seed = 0; seed < 3; seed++) {
        const parts = dirichletPartition(LABELS, CLASSES, 20, { alpha, minSize: 5 }, new Rng(seed));
        total += partitionStats(LABELS, parts, CLASSES).meanLabelEntropy;
      }
      return total / 3;
    };
    const h = [100, 1, 0.3, 0.05].map(entropyAt);
    for (let i = 1; i < h.length; i++) expect(h[i]!).toBeLessThan(h[i - 1]!);
    expect(h[0]!).toBeGreaterThan(0.95 * Math.log(CLASSES));
    expect(h[3]!).toBeLessThan(0.5 * Math.log(CLASSES));
  });

  it('is deterministic for a seed and differs for another seed', () => {
    const run = (seed: number) =>
      dirichletPartition(LABELS, CLASSES, 10, { alpha: 0.5 }, new Rng(seed));
    expect(same(run(7), run(7))).toBe(true);
    expect(same(run(7), run(8))).toBe(false);
  });

  it('gives up after maxAttempts with a clear error instead of looping', () => {
    expect(() =>
      dirichletPartition(
        LABELS,
        CLASSES,
        50,
        { alpha: 0.01, minSize: 95, maxAttempts: 5 },
        new Rng(1),
      ),
    ).toThrow(/after 5 attempts the smallest client still had \d+ samples, below minSize 95/);
    expect(() =>
      dirichletPartition(LABELS, CLASSES, 50, { alpha: 1, minSize: 101 }, new Rng(1)),
    ).toThrow(/minSize 101 x 50 clients exceeds the 5000 samples/);
  });

  it('rejects bad alpha, labels and options', () => {
    const r = new Rng(1);
    expect(() => dirichletPartition(LABELS, CLASSES, 5, { alpha: 0 }, r)).toThrow(
      /alpha must be a finite number > 0, got 0/,
    );
    expect(() => dirichletPartition(LABELS, 5, 5, { alpha: 1 }, r)).toThrow(
      /label [5-9] at index \d+ is outside \[0, 5\)/,
    );
    expect(() => dirichletPartition(LABELS, CLASSES, 5, { alpha: 1, maxAttempts: 0 }, r)).toThrow(
      /maxAttempts must be a positive integer/,
    );
  });
});

describe('pathological partition', () => {
  it('gives every client exactly k classes, disjoint, using every sample', () => {
    for (const [clients, k] of [
      [20, 2],
      [10, 3],
      [5, 10],
    ] as const) {
      const parts = pathologicalPartition(LABELS, CLASSES, clients, k, new Rng(4));
      expectDisjoint(parts);
      expectCoversAll(parts, LABELS.length);
      for (const p of parts) {
        expect(labelCounts(LABELS, p, CLASSES).filter((c) => c > 0).length).toBe(k);
      }
    }
  });

  it('spreads each class over an equal number of clients, in equal shards', () => {
    const parts = pathologicalPartition(LABELS, CLASSES, 20, 2, new Rng(5));
    const holders = new Array(CLASSES).fill(0);
    for (const p of parts) {
      labelCounts(LABELS, p, CLASSES).forEach((c, cls) => {
        if (c > 0) holders[cls]++;
      });
    }
    expect(holders).toEqual(new Array(CLASSES).fill(4));
    for (const p of parts) expect(p.length).toBe(250);
  });

  it('leaves out classes nobody holds when clients * k < classes', () => {
    const parts = pathologicalPartition(LABELS, CLASSES, 2, 3, new Rng(6));
    expectDisjoint(parts);
    const used = parts.reduce((n, p) => n + p.length, 0);
    expect(used).toBe(6 * 500);
  });

  it('is deterministic for a seed and differs for another seed', () => {
    const run = (seed: number) => pathologicalPartition(LABELS, CLASSES, 10, 2, new Rng(seed));
    expect(same(run(1), run(1))).toBe(true);
    expect(same(run(1), run(2))).toBe(false);
  });

  it('rejects k outside [1, classes] and too many clients for a class', () => {
    expect(() => pathologicalPartition(LABELS, CLASSES, 5, 11, new Rng(1))).toThrow(
      /classesPerClient must be an integer in \[1, 10\], got 11/,
    );
    const tiny = Int32Array.from([0, 0, 0, 1]);
    expect(() => pathologicalPartition(tiny, 2, 4, 1, new Rng(1))).toThrow(
      /client \d got no samples/,
    );
  });
});

describe('indicesByClass', () => {
  it('groups indices by label in index order', () => {
    const groups = indicesByClass(Int32Array.from([2, 0, 2, 1, 0]), 3);
    expect(groups.map((g) => Array.from(g))).toEqual([[1, 4], [3], [0, 2]]);
  });
});

/**
 * What a Dirichlet split must give, replayed from the same random stream (shuffling a class's
 * samples draws as many numbers whatever they are): for each class c in order, proportions p are
 * drawn; with the balance cap, clients already holding n / clients samples get p_j = 0 and the
 * rest are renormalised; client j then takes floor(n_c S_j) - floor(n_c S_{j-1}) samples of c,
 * S_j = p_0 + ... + p_j, and the last client takes the rest.
 */
function expectedDirichletCounts(
  labels: Int32Array,
  clients: number,
  alpha: number,
  balance: boolean,
  seed: number,
): { counts: number[][]; capped: boolean[][]; raw: number[][] } {
  const rng = new Rng(seed);
  const perClass = indicesByClass(labels, CLASSES).map((a) => a.length);
  const cap = labels.length / clients;
  const sizes = new Array<number>(clients).fill(0);
  const counts: number[][] = [];
  const capped: boolean[][] = [];
  const raw: number[][] = [];
  for (const nc of perClass) {
    rng.shuffle(new Int32Array(nc));
    const p0 = rng.dirichlet(alpha, clients);
    const full = sizes.map((s) => balance && s >= cap);
    const kept = p0.map((v, j) => (full[j] ? 0 : v));
    const total = kept.reduce((a, b) => a + b, 0);
    const p = total > 0 ? kept.map((v) => v / total) : p0;
    let acc = 0;
    let prev = 0;
    const row = p.map((pj, j) => {
      acc += pj;
      const bound = j === clients - 1 ? nc : Math.floor(acc * nc);
      const take = bound - prev;
      prev = bound;
      return take;
    });
    row.forEach((k, j) => {
      sizes[j]! += k;
    });
    counts.push(row);
    capped.push(full);
    raw.push(p0);
  }
  return { counts, capped, raw };
}

/** counts[c][j]: samples of class c held by client j. */
function classCounts(parts: Partition, labels: Int32Array): number[][] {
  const out = Array.from({ length: CLASSES }, () => new Array<number>(parts.length).fill(0));
  parts.forEach((p, j) => {
    for (const i of p) out[labels[i]!]![j]! += 1;
  });
  return out;
}

describe('dirichlet partition: counts against the drawn proportions', () => {
  it('gives each client floor-cut shares of every class, as drawn (no cap)', () => {
    const seed = 5;
    const parts = dirichletPartition(
      LABELS,
      CLASSES,
      7,
      { alpha: 0.5, minSize: 0, balance: false },
      new Rng(seed),
    );
    const want = expectedDirichletCounts(LABELS, 7, 0.5, false, seed);
    expect(classCounts(parts, LABELS)).toEqual(want.counts);
    // Each share is within one sample of p_j n_c.
    want.raw.forEach((p, c) =>
      p.forEach((pj, j) => expect(Math.abs(want.counts[c]![j]! - pj * 500)).toBeLessThan(1)),
    );
  });

  it('gives no more of a class to a client that already holds n / clients samples (the cap)', () => {
    const seed = 9;
    const clients = 8;
    const parts = dirichletPartition(
      LABELS,
      CLASSES,
      clients,
      { alpha: 0.2, minSize: 0 },
      new Rng(seed),
    );
    const got = classCounts(parts, LABELS);
    const want = expectedDirichletCounts(LABELS, clients, 0.2, true, seed);
    expect(got).toEqual(want.counts);
    // The cap binds in this draw: some client was full while its raw share of a later class
    // would have given it samples; it got none.
    let bound = 0;
    want.capped.forEach((full, c) =>
      full.forEach((isFull, j) => {
        if (!isFull) return;
        expect(got[c]![j]).toBe(0);
        if (Math.floor(want.raw[c]![j]! * 500) > 0) bound++;
      }),
    );
    expect(bound).toBeGreaterThan(0);
    // Every client stays below the cap plus one class's worth of samples.
    for (const p of parts) expect(p.length).toBeLessThan(LABELS.length / clients + 500);
    expectDisjoint(parts);
    expectCoversAll(parts, LABELS.length);
  });
});

describe('partitioners at the edges of their inputs', () => {
  const ascending = (parts: Partition) =>
    parts.every((p) => p.every((v, i) => i === 0 || p[i - 1]! < v));

  it('return every client part in ascending index order', () => {
    expect(ascending(iidPartition(500, 7, new Rng(2)))).toBe(true);
    expect(ascending(dirichletPartition(LABELS, CLASSES, 7, { alpha: 0.5 }, new Rng(2)))).toBe(
      true,
    );
    expect(ascending(pathologicalPartition(LABELS, CLASSES, 7, 2, new Rng(2)))).toBe(true);
  });

  it('accept one client, one class, one attempt, and a minSize that every draw meets exactly', () => {
    expect(iidPartition(5, 1, new Rng(1)).map((p) => Array.from(p))).toEqual([[0, 1, 2, 3, 4]]);
    const ones = new Int32Array(20);
    expect(dirichletPartition(ones, 1, 2, { alpha: 1, minSize: 0 }, new Rng(1))).toHaveLength(2);
    const free = dirichletPartition(LABELS, CLASSES, 6, { alpha: 1, minSize: 0 }, new Rng(4));
    const smallest = Math.min(...free.map((p) => p.length));
    const tight = dirichletPartition(
      LABELS,
      CLASSES,
      6,
      { alpha: 1, minSize: smallest, maxAttempts: 1 },
      new Rng(4),
    );
    expect(same(tight, free)).toBe(true);
    // minSize x clients = n is allowed (and then fails only for want of an exact draw).
    expect(() =>
      dirichletPartition(
        LABELS,
        CLASSES,
        10,
        { alpha: 1, minSize: 500, maxAttempts: 1 },
        new Rng(1),
      ),
    ).toThrow(
      /^dirichlet partition: after 1 attempts .*Raise alpha, lower minSize, or use fewer clients\.$/,
    );
  });

  it('name the partitioner and the field in every rejection', () => {
    const r = new Rng(1);
    expect(() => iidPartition(10, 0, r)).toThrow(/^iid partition: clients must be/);
    expect(() => dirichletPartition(LABELS, 0, 5, { alpha: 1 }, r)).toThrow(
      /^dirichlet partition: classes must be a positive integer, got 0$/,
    );
    expect(() => dirichletPartition(LABELS, 2.5, 5, { alpha: 1 }, r)).toThrow(
      /classes must be a positive integer, got 2.5/,
    );
    const withTop = Int32Array.from([0, 1, 2, 3]);
    expect(() => dirichletPartition(withTop, 3, 2, { alpha: 1, minSize: 0 }, r)).toThrow(
      /^dirichlet partition: label 3 at index 3 is outside \[0, 3\)$/,
    );
    expect(() =>
      dirichletPartition(Int32Array.from([0, -1]), 3, 2, { alpha: 1, minSize: 0 }, r),
    ).toThrow(/label -1 at index 1/);
    for (const minSize of [-1, 1.5])
      expect(() => dirichletPartition(LABELS, CLASSES, 5, { alpha: 1, minSize }, r)).toThrow(
        new RegExp(`^dirichlet partition: minSize must be an integer >= 0, got ${minSize}$`),
      );
    expect(() => pathologicalPartition(LABELS, CLASSES, 5, 1.5, r)).toThrow(
      /^pathological partition: classesPerClient must be an integer in \[1, 10\], got 1.5$/,
    );
    expect(() => pathologicalPartition(LABELS, CLASSES, 5, 0, r)).toThrow(/got 0$/);
    expect(() => pathologicalPartition(Int32Array.from([0, 0, 0, 1]), 2, 4, 1, r)).toThrow(
      /^pathological partition: client \d got no samples .*use fewer clients or more classes per client$/,
    );
  });
});
