import { describe, expect, it } from 'vitest';
import { renderSvg } from './charts.js';
import { frontierRows, frontierSpec } from './frontier.js';
import type { AccuracyRow, CommRow, Series } from './series.js';

const acc = (
  run: string,
  algorithm: string,
  model: 'global' | 'personal',
  a: number,
  p10: number,
  round = 10,
): AccuracyRow => ({
  run,
  algorithm,
  round,
  time_s: 0,
  model,
  acc: a,
  acc_weighted: a,
  acc_std: 0,
  acc_p10: p10,
  acc_p50: a,
  acc_p90: a,
  loss: 0,
});
const comm = (run: string, down_bytes: number, round = 10): CommRow => ({
  run,
  round,
  down_params: 0,
  down_bytes,
  up_params: 0,
  up_bytes: 0,
  dense_down_params: 0,
  dense_down_bytes: 0,
});
const series = (accuracy: AccuracyRow[], communication: CommRow[]): Series => ({
  accuracy,
  communication,
  clients: [],
  ranks: [],
  density: [],
  summary: [],
});

describe('accuracy against downlink', () => {
  // fedslr: a (1 MB, 0.80), b (2 MB, 0.85), c (3 MB, 0.84: dominated by b); fedavg: d (1 MB, 0.9).
  const s = series(
    [
      acc('a', 'fedslr', 'global', 0.8, 0.6),
      acc('a', 'fedslr', 'global', 0.1, 0.1, 5),
      acc('b', 'fedslr', 'global', 0.85, 0.5),
      acc('c', 'fedslr', 'global', 0.84, 0.7),
      acc('d', 'fedavg', 'global', 0.9, 0.4),
    ],
    [comm('a', 1e6), comm('a', 5e5, 5), comm('b', 2e6), comm('c', 3e6), comm('d', 1e6)],
  );

  it("takes each run's last evaluation and marks each algorithm's Pareto front", () => {
    const mean = frontierRows(s).filter((r) => r.measure === 'global, mean');
    expect(mean.map((r) => [r.run, r.downlink_MB, r.acc, r.pareto])).toEqual([
      ['a', 1, 0.8, true],
      ['b', 2, 0.85, true],
      ['c', 3, 0.84, false],
      // Another algorithm's better point does not dominate fedslr's.
      ['d', 1, 0.9, true],
    ]);
    const p10 = frontierRows(s).filter((r) => r.measure === 'global, p10');
    expect(p10.map((r) => r.pareto)).toEqual([true, false, true, true]);
  });

  it('has no chart for a single run', () => {
    expect(frontierSpec(series([acc('a', 'fedslr', 'global', 0.8, 0.6)], [comm('a', 1)]), {})).toBe(
      null,
    );
    expect(frontierSpec(s, {})).not.toBe(null);
  });

  it('labels a narrow accuracy range with distinct ticks', async () => {
    // A budget study's points lie within a few tenths of a point: whole percents would repeat.
    const close = series(
      [acc('a', 'fedslr', 'global', 0.8843, 0.79), acc('b', 'fedslr', 'global', 0.8828, 0.8)],
      [comm('a', 1e6), comm('b', 3e6)],
    );
    const svg = await renderSvg(frontierSpec(close, {})!);
    const ticks = [...svg.matchAll(/>(\d+(?:\.\d+)?%)</g)].map((m) => m[1]!);
    expect(ticks.length).toBeGreaterThan(4);
    // The panels' labels follow each other, each panel's in order: no label repeats its neighbour.
    expect(ticks.filter((t, i) => i > 0 && t === ticks[i - 1])).toEqual([]);
  });
});
