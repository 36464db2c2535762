/**
 * Accuracy against downlink bytes, one point per run at its last evaluation: the trade-off a
 * compression budget buys. For each accuracy (global and personal model, mean and 10th
 * percentile over clients) a run is on its algorithm's Pareto front when no run of the same
 * algorithm had at most its bytes and at least its accuracy, one of them strictly.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { Series } from './series.js';

export interface FrontierRow {
  run: string;
  algorithm: string;
  /** Total downlink of the run, MB. */
  downlink_MB: number;
  measure: string;
  acc: number;
  pareto: boolean;
}

const MEASURES = [
  ['global', 'acc', 'global, mean'],
  ['global', 'acc_p10', 'global, p10'],
  ['personal', 'acc', 'personal, mean'],
  ['personal', 'acc_p10', 'personal, p10'],
] as const;

/** The points of the chart, with their Pareto marks. */
export function frontierRows(s: Series): FrontierRow[] {
  const lastRound = new Map<string, number>();
  for (const r of s.accuracy) lastRound.set(r.run, Math.max(lastRound.get(r.run) ?? -1, r.round));
  const bytes = new Map<string, number>();
  for (const c of s.communication)
    if (c.round === lastRound.get(c.run)) bytes.set(c.run, c.down_bytes);
  const rows: FrontierRow[] = [];
  for (const [model, field, measure] of MEASURES) {
    for (const r of s.accuracy) {
      if (r.model !== model || r.round !== lastRound.get(r.run) || !bytes.has(r.run)) continue;
      rows.push({
        run: r.run,
        algorithm: r.algorithm,
        downlink_MB: bytes.get(r.run)! / 1e6,
        measure,
        acc: r[field],
        pareto: false,
      });
    }
  }
  for (const p of rows) {
    p.pareto = !rows.some(
      (q) =>
        q !== p &&
        q.measure === p.measure &&
        q.algorithm === p.algorithm &&
        q.downlink_MB <= p.downlink_MB &&
        q.acc >= p.acc &&
        (q.downlink_MB < p.downlink_MB || q.acc > p.acc),
    );
  }
  return rows;
}

/** The chart, or null unless at least two runs have an accuracy and a downlink. */
export function frontierSpec(s: Series, config: object): TopLevelSpec | null {
  const rows = frontierRows(s);
  if (new Set(rows.map((r) => r.run)).size < 2) return null;
  const x = { field: 'downlink_MB', type: 'quantitative', title: 'downlink, MB (whole run)' };
  const y = {
    field: 'acc',
    type: 'quantitative',
    title: 'accuracy',
    axis: { format: '%' },
    scale: { zero: false },
  };
  const color = { field: 'algorithm', type: 'nominal', title: 'algorithm' };
  return {
    data: { values: rows },
    facet: {
      field: 'measure',
      type: 'nominal',
      title: null,
      sort: MEASURES.map((m) => m[2]),
    },
    columns: 2,
    spec: {
      width: 330,
      height: 220,
      layer: [
        {
          transform: [{ filter: 'datum.pareto' }],
          mark: { type: 'line', strokeWidth: 1.5, interpolate: 'step-after' },
          encoding: { x, y, color, order: { field: 'downlink_MB' } },
        },
        {
          mark: { type: 'point', size: 70, strokeWidth: 1.5 },
          encoding: {
            x,
            y,
            color,
            fill: {
              condition: { test: 'datum.pareto', field: 'algorithm', type: 'nominal' },
              value: 'white',
            },
            shape: {
              field: 'pareto',
              type: 'nominal',
              scale: { domain: [true, false], range: ['circle', 'diamond'] },
              // The caption says what the two shapes mean.
              legend: null,
            },
            tooltip: [{ field: 'run' }, x, { ...y, format: '.2%' }],
          },
        },
      ],
    },
    resolve: { scale: { y: 'independent' } },
    config,
  } as TopLevelSpec;
}
