import { describe, expect, it } from 'vitest';
import { lowRankProduct, plantedSvd } from './planted.js';
import { gramSvd } from './svd.js';
import { type BudgetItem, chooseRanks, keptRank, truncateSvd } from './svt_budget.js';

// A planted spectrum: s_i = 2^-i/2 for 12 values (energies halve), in a 40 x 30 matrix.
const S = Array.from({ length: 12 }, (_, i) => 2 ** (-i / 2));
const energyShare = (r: number) =>
  S.slice(0, r).reduce((a, x) => a + x * x, 0) / S.reduce((a, x) => a + x * x, 0);

describe('keptRank on planted spectra', () => {
  const svd = gramSvd(plantedSvd(40, 30, S, 3).a, 40, 30);

  it('relative keeps the values above the fraction of the largest one', () => {
    // s_i / s_0 = 2^-i/2: above 0.3 for i <= 3 (0.354), not i = 4 (0.25).
    expect(keptRank(svd, { mode: 'relative', fraction: 0.3 })).toBe(4);
    expect(keptRank(svd, { mode: 'relative', fraction: 0.6 })).toBe(2);
  });

  it('energy keeps the smallest rank holding the fraction of the squared spectrum', () => {
    for (const f of [0.5, 0.8, 0.9, 0.99]) {
      const r = keptRank(svd, { mode: 'energy', fraction: f });
      expect(energyShare(r)).toBeGreaterThanOrEqual(f);
      expect(energyShare(r - 1)).toBeLessThan(f);
    }
    expect(keptRank(svd, { mode: 'energy', fraction: 1 })).toBe(12);
  });

  it('rank caps at a count or a fraction of full rank, never past the non-zero values', () => {
    expect(keptRank(svd, { mode: 'rank', rank: 5 })).toBe(5);
    expect(keptRank(svd, { mode: 'rank', rank: 0 })).toBe(0);
    expect(keptRank(svd, { mode: 'rank', rank: 20 })).toBe(12);
    expect(keptRank(svd, { mode: 'rank', fraction: 0.2 })).toBe(6); // floor(0.2 * 30)
    expect(keptRank(svd, { mode: 'rank', fraction: 1 })).toBe(12); // only 12 are non-zero
  });

  it('refuses fractions outside (0, 1]', () => {
    expect(() => keptRank(svd, { mode: 'energy', fraction: 0 })).toThrow(/fraction/);
    expect(() => keptRank(svd, { mode: 'relative', fraction: 1 })).toThrow(/fraction/);
    expect(() => keptRank(svd, { mode: 'rank', fraction: 1.5 })).toThrow(/fraction/);
  });
});

describe('truncateSvd', () => {
  const p = plantedSvd(40, 30, S, 5);
  const svd = gramSvd(p.a, 40, 30);

  it('hard truncation is the planted rank-r part (Eckart-Young)', () => {
    const t = truncateSvd(p.a, svd, 3);
    const want = lowRankProduct(p.u, p.v, S.slice(0, 3), 40, 30);
    expect(t.rank).toBe(3);
    expect(Array.from(t.values)).toEqual(S.slice(0, 3).map((x) => expect.closeTo(x, 6)));
    for (let i = 0; i < want.length; i++) expect(t.matrix[i]).toBeCloseTo(want[i]!, 6);
  });

  it('soft truncation shrinks every kept value by the threshold and drops the ones it zeroes', () => {
    const t = truncateSvd(p.a, svd, 12, 0.3);
    expect(t.rank).toBe(4);
    const want = lowRankProduct(
      p.u,
      p.v,
      S.slice(0, 4).map((x) => x - 0.3),
      40,
      30,
    );
    for (let i = 0; i < want.length; i++) expect(t.matrix[i]).toBeCloseTo(want[i]!, 6);
  });

  it('keeping every non-zero value unshrunk returns the input itself', () => {
    expect(truncateSvd(p.a, svd, 12).matrix).toBe(p.a);
    expect(truncateSvd(p.a, svd, 30).matrix).toBe(p.a);
  });
});

describe('chooseRanks', () => {
  // Costs like the wire's: factors cost r (R + C) while smaller than dense R C, else dense.
  const item = (s: number[], rows: number, cols: number, extra = 7): BudgetItem => ({
    s,
    maxRank: s.length,
    cost: (r) => extra + Math.min(r * (rows + cols), rows * cols),
  });
  const spectra = [
    Array.from({ length: 20 }, (_, i) => 3 * 0.8 ** i),
    Array.from({ length: 10 }, (_, i) => 1 / (i + 1)),
    Array.from({ length: 30 }, (_, i) => 0.5 * 0.95 ** i),
  ];
  const items = [item(spectra[0]!, 40, 20), item(spectra[1]!, 10, 30), item(spectra[2]!, 60, 30)];
  const cost = (ranks: number[]) => ranks.reduce((a, r, j) => a + items[j]!.cost(r), 0);
  const whole = cost([20, 10, 30]);

  it('never exceeds the budget, and no single further step fits', () => {
    for (const share of [0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1]) {
      const budget = Math.floor(share * whole);
      const ranks = chooseRanks(items, budget);
      expect(cost(ranks)).toBeLessThanOrEqual(budget);
      ranks.forEach((r, j) => {
        if (r >= spectra[j]!.length) return;
        let next = r + 1;
        while (next < spectra[j]!.length && items[j]!.cost(next + 1) === items[j]!.cost(next))
          next++;
        expect(cost(ranks) - items[j]!.cost(r) + items[j]!.cost(next)).toBeGreaterThan(budget);
      });
    }
  });

  it('keeps everything when the budget allows it and spends it on the most energy share per cost', () => {
    expect(chooseRanks(items, whole)).toEqual([20, 10, 30]);
    // Shares of each matrix's energy per unit of cost: the first value of 1/(i+1) holds 64.5% of
    // its spectrum for 40, the first of 3 * 0.8^i 36% for 60, the first of 0.5 * 0.95^i 9.8% for
    // 90. A budget of 40 + 60 above rank 0 buys the first two.
    const tight = chooseRanks(items, items[0]!.cost(1) + items[1]!.cost(1) + items[2]!.cost(0));
    expect(tight).toEqual([1, 1, 0]);
  });

  it('chooses the same ranks when one matrix is scaled: energies are compared as shares', () => {
    // Scaling a layer by c and the next by 1/c leaves a ReLU network's function unchanged, so the
    // choice must not depend on a matrix's scale. With absolute energy, scaling the third
    // spectrum by 10 would make its values outbid the others.
    const scaled = [
      items[0]!,
      items[1]!,
      item(
        spectra[2]!.map((x) => 10 * x),
        60,
        30,
      ),
    ];
    for (const share of [0.1, 0.3, 0.5, 0.8]) {
      const budget = Math.floor(share * whole);
      expect(chooseRanks(scaled, budget)).toEqual(chooseRanks(items, budget));
    }
  });

  it('says when even rank 0 everywhere costs more than the budget', () => {
    expect(() => chooseRanks(items, 20)).toThrow(/below the smallest possible cost, 21/);
  });
});
