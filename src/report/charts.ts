/**
 * The report's charts: Vega-Lite specs built from the series, rendered to SVG strings in Node
 * (Vega's headless view, no canvas and no network), so the HTML needs no script to show them.
 */
import { parse, scheme, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { frontierSpec } from './frontier.js';
import { type CommRow, lastClientRows, type Series } from './series.js';

export interface Chart {
  /** Stable id: the HTML figure's `data-chart` and the test's handle. */
  id: string;
  title: string;
  /** What the chart shows and how to read it, in a sentence or two. */
  caption: string;
  spec: TopLevelSpec;
}

const WIDE = { width: 560, height: 260 };
const PANEL = { width: 360, height: 240 };

const CONFIG = {
  font: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
  view: { stroke: '#ddd' },
  axis: { gridColor: '#eee', labelColor: '#333', titleColor: '#333', titleFontWeight: 500 },
  legend: { labelLimit: 280, titleLimit: 280, titleFontWeight: 500 },
  header: { labelFontSize: 13, labelFontWeight: 600 },
} as const;

const MB = 1e6;

/** Rounds are integers: no 2.5 ticks. */
const ROUND = {
  field: 'round',
  type: 'quantitative',
  title: 'round',
  axis: { format: 'd', tickMinStep: 1 },
} as const;

/** Point markers on lines with few evaluations; with many they only clutter the line. */
function markers(rows: readonly { round: number }[], size: number): { size: number } | false {
  return new Set(rows.map((r) => r.round)).size <= 30 ? { size } : false;
}

/** Legend swatches as solid lines (the default takes the first layer's pale band). */
const LINE_LEGEND = { symbolType: 'stroke', symbolStrokeWidth: 3, symbolOpacity: 1 } as const;

function accuracyChart(s: Series, multi: boolean): Chart | null {
  if (s.accuracy.length === 0) return null;
  const color = multi
    ? { field: 'run', type: 'nominal', title: 'run', legend: LINE_LEGEND }
    : {
        field: 'model',
        type: 'nominal',
        title: 'model',
        scale: { domain: ['global', 'personal'] },
        legend: LINE_LEGEND,
      };
  const y = {
    field: 'acc',
    type: 'quantitative',
    title: 'accuracy',
    axis: { format: '.0%' },
    scale: { zero: false, domainMax: 1 },
  } as const;
  const layer = [
    {
      mark: { type: 'area', opacity: 0.15 },
      encoding: {
        x: ROUND,
        y: { ...y, field: 'acc_p10' },
        y2: { field: 'acc_p90' },
        color,
      },
    },
    {
      mark: { type: 'line', point: markers(s.accuracy, 30), strokeWidth: 2 },
      encoding: {
        x: ROUND,
        y,
        color,
      },
    },
  ];
  const spec = (
    multi
      ? {
          data: { values: s.accuracy },
          facet: { column: { field: 'model', type: 'nominal', title: null } },
          spec: { ...PANEL, layer },
          resolve: { scale: { y: 'shared' } },
          config: CONFIG,
        }
      : { data: { values: s.accuracy }, ...WIDE, layer, config: CONFIG }
  ) as TopLevelSpec;
  return {
    id: 'accuracy',
    title: 'Accuracy over rounds',
    caption:
      'Mean test accuracy over clients (each client on its own test set); the band spans the ' +
      '10th to 90th percentile of the clients. Global: the shared model; personal: each ' +
      "client's own model.",
    spec,
  };
}

function distributionChart(s: Series, multi: boolean): Chart | null {
  const rows = lastClientRows(s).map((r) => ({
    ...r,
    group: multi ? `${r.run} · ${r.model}` : r.model,
  }));
  if (rows.length === 0) return null;
  const rounds = [...new Set(rows.map((r) => r.round))];
  const y = { field: 'group', type: 'nominal', title: null, sort: null } as const;
  const x = {
    field: 'acc',
    type: 'quantitative',
    title: 'client accuracy',
    axis: { format: '.0%' },
    scale: { zero: false, domainMax: 1 },
  } as const;
  const spec = {
    data: { values: rows },
    width: WIDE.width,
    height: { step: 34 },
    layer: [
      {
        mark: {
          type: 'boxplot',
          extent: 'min-max',
          size: 22,
          opacity: 0.35,
          median: { color: '#222' },
        },
        encoding: { x, y, color: { field: 'model', type: 'nominal', legend: null } },
      },
      {
        mark: { type: 'tick', thickness: 1.5, size: 18, opacity: 0.8 },
        encoding: { x, y, color: { field: 'model', type: 'nominal', title: 'model' } },
      },
    ],
    config: CONFIG,
  } as TopLevelSpec;
  return {
    id: 'client-distribution',
    title: 'Per-client accuracy at the last evaluation',
    caption:
      `One tick per client (round ${rounds.join(', ')}); the box spans the quartiles, its ` +
      'whiskers the lowest and highest client. Personalization should lift the low end.',
    spec,
  };
}

/**
 * Colours for the lines of `count` weight matrices: Tableau's 10 or 20, and beyond 20 (ResNet-18
 * has 21) category20b's after them, so that up to 40 lines differ.
 */
function matrixColors(count: number): string[] {
  if (count <= 10) return scheme('tableau10') as string[];
  const twenty = scheme('tableau20') as string[];
  return count <= 20 ? twenty : [...twenty, ...(scheme('category20b') as string[])];
}

/**
 * Heights (in the y scale's units, 0..1) for labels at the ends of lines ending at `values`, in
 * the same order, at least `gap` apart and inside [0, 1]: lines that end together (several
 * matrices all at 100%) get a readable stack of labels instead of one blob.
 */
export function spreadLabels(values: readonly number[], gap: number): number[] {
  const order = values.map((v, i) => ({ v, i })).sort((a, b) => b.v - a.v || a.i - b.i);
  const pos = order.map((o) => Math.min(Math.max(o.v, 0), 1));
  for (let k = 1; k < pos.length; k++) pos[k] = Math.min(pos[k]!, pos[k - 1]! - gap);
  const last = pos.length - 1;
  if (last >= 0 && pos[last]! < 0) {
    pos[last] = 0;
    for (let k = last - 1; k >= 0; k--) pos[k] = Math.max(pos[k]!, pos[k + 1]! + gap);
  }
  const out = new Array<number>(values.length);
  order.forEach((o, k) => {
    out[o.i] = pos[k]!;
  });
  return out;
}

/** The rank charts' config: the legend moved right, clear of the end labels. */
const RANK_CONFIG = { ...CONFIG, legend: { ...CONFIG.legend, offset: 52 } } as const;

/** Pixels between stacked end labels (11 px text). */
const LABEL_GAP_PX = 13;

/** Runs drawn as side-by-side panels of per-matrix ranks; with more, one line per run. */
export const MAX_RANK_PANELS = 3;

const KEPT_Y = {
  field: 'kept',
  type: 'quantitative',
  title: 'kept rank / full rank',
  axis: { format: '.0%' },
  scale: { domainMin: 0, domainMax: 1 },
} as const;

/** Line layer plus de-overlapped end labels (rows with a `label_y` carry one), coloured by `color`. */
function linesWithEndLabels(
  rows: readonly { round: number }[],
  color: Record<string, unknown>,
): Record<string, unknown> {
  return {
    layer: [
      {
        mark: { type: 'line', point: markers(rows, 25), interpolate: 'step-after' },
        encoding: { x: ROUND, y: KEPT_Y, color },
      },
      {
        transform: [{ filter: 'isValid(datum.label_y)' }],
        mark: { type: 'text', align: 'left', baseline: 'middle', dx: 6, fontSize: 11 },
        encoding: {
          x: ROUND,
          y: { ...KEPT_Y, field: 'label_y' },
          color,
          text: { field: 'end' },
        },
      },
    ],
  };
}

/** Adds `label_y` (spread apart) to each group's last row; `group` keys one set of labels. */
function withEndLabels<T extends { round: number; kept: number }>(
  rows: readonly T[],
  group: (r: T) => string,
  text: (r: T) => string,
  height: number,
): (T & { label_y?: number; end?: string })[] {
  const lastRound = new Map<string, number>();
  for (const r of rows) lastRound.set(group(r), Math.max(lastRound.get(group(r)) ?? -1, r.round));
  const ends = rows.filter((r) => r.round === lastRound.get(group(r)));
  const out = rows.map((r) => ({ ...r }) as T & { label_y?: number; end?: string });
  for (const key of new Set(ends.map(group))) {
    const mine = out.filter((r) => group(r) === key && r.round === lastRound.get(key));
    const ys = spreadLabels(
      mine.map((r) => r.kept),
      LABEL_GAP_PX / height,
    );
    mine.forEach((r, i) => {
      r.label_y = ys[i]!;
      r.end = text(r);
    });
  }
  return out;
}

function rankChart(s: Series): Chart | null {
  if (s.ranks.length === 0) return null;
  const runs = [...new Set(s.ranks.map((r) => r.run))];
  if (runs.length > MAX_RANK_PANELS) return overallRankChart(s, runs);
  const multi = runs.length > 1;
  const size = multi ? PANEL : WIDE;
  const rows = withEndLabels(
    s.ranks.map((r) => ({
      ...r,
      kept: r.full > 0 ? r.rank / r.full : 0,
      label: `${r.matrix} (full ${r.full})`,
    })),
    (r) => r.run,
    (r) => `${r.rank}`,
    size.height,
  );
  const color = {
    field: 'label',
    type: 'nominal',
    title: 'matrix (full rank)',
    sort: null,
    scale: { range: matrixColors(new Set(rows.map((r) => r.matrix)).size) },
    legend: LINE_LEGEND,
  } as const;
  const layer = linesWithEndLabels(rows, color);
  const spec = (
    multi
      ? {
          data: { values: rows },
          facet: { column: { field: 'run', type: 'nominal', title: null } },
          spec: { ...size, ...layer },
          config: RANK_CONFIG,
        }
      : { data: { values: rows }, ...size, ...layer, config: RANK_CONFIG }
  ) as TopLevelSpec;
  return {
    id: 'ranks',
    title: 'Kept rank of the global model',
    caption:
      'Rank of each weight matrix of the global model after singular-value thresholding, as a ' +
      'share of its full rank (in the legend); the numbers at the right are the kept ranks at ' +
      'the last evaluation, in the order of the lines, stacked where lines end together. Lower ' +
      'rank: smaller downloads.',
    spec,
  };
}

/** Many runs: one line per run, the kept rank summed over all matrices / their full ranks. */
function overallRankChart(s: Series, runs: readonly string[]): Chart {
  const totals = new Map<string, { run: string; round: number; rank: number; full: number }>();
  for (const r of s.ranks) {
    const key = `${r.run}\u0000${r.round}`;
    const t = totals.get(key) ?? { run: r.run, round: r.round, rank: 0, full: 0 };
    t.rank += r.rank;
    t.full += r.full;
    totals.set(key, t);
  }
  const rows = withEndLabels(
    [...totals.values()].map((t) => ({ ...t, kept: t.full > 0 ? t.rank / t.full : 0 })),
    () => 'all',
    (r) => `${(100 * r.kept).toFixed(1)}%`,
    WIDE.height,
  );
  const color = {
    field: 'run',
    type: 'nominal',
    title: 'run',
    sort: runs,
    legend: LINE_LEGEND,
  } as const;
  return {
    id: 'ranks',
    title: 'Kept rank of the global model',
    caption:
      `${runs.length} runs, so one line each: the kept rank summed over the global model's ` +
      'weight matrices, as a share of their summed full ranks (report a few runs for the ' +
      'per-matrix panels); the numbers at the right are the shares at the last evaluation, ' +
      'stacked where lines end together. Lower rank: smaller downloads.',
    spec: {
      data: { values: rows },
      ...WIDE,
      ...linesWithEndLabels(rows, color),
      config: RANK_CONFIG,
    } as TopLevelSpec,
  };
}

function densityChart(s: Series): Chart | null {
  if (s.density.length === 0) return null;
  const spec = {
    data: { values: s.density },
    ...WIDE,
    mark: { type: 'line', point: markers(s.density, 30), strokeWidth: 2 },
    encoding: {
      x: ROUND,
      y: {
        field: 'personal_density',
        type: 'quantitative',
        title: 'non-zeros in the personal part',
        axis: { format: '.1%' },
      },
      color: { field: 'run', type: 'nominal', title: 'run', legend: LINE_LEGEND },
    },
    config: CONFIG,
  } as TopLevelSpec;
  return {
    id: 'density',
    title: 'Density of the personal parts',
    caption: 'Mean over clients of the fraction of non-zero entries in the sparse personal part.',
    spec,
  };
}

const TRAFFIC = ['downlink', 'uplink', 'dense downlink'] as const;

/** Two cumulative curves closer than this (relative to the larger) at every point draw as one. */
const COINCIDE = 0.01;

/**
 * Which of a run's traffic lines lie on top of each other, in words ("downlink, uplink and dense
 * downlink"), or undefined when none do.
 */
export function coincidingTraffic(rows: readonly CommRow[]): string | undefined {
  const values: Record<(typeof TRAFFIC)[number], number[]> = {
    downlink: rows.map((r) => r.down_bytes),
    uplink: rows.map((r) => r.up_bytes),
    'dense downlink': rows.map((r) => r.dense_down_bytes),
  };
  const same = (a: number[], b: number[]) =>
    a.every((x, i) => Math.abs(x - b[i]!) <= COINCIDE * Math.max(Math.abs(x), Math.abs(b[i]!)));
  const groups: string[][] = [];
  for (const t of TRAFFIC) {
    const g = groups.find((g) => same(values[g[0] as (typeof TRAFFIC)[number]], values[t]));
    if (g) g.push(t);
    else groups.push([t]);
  }
  const big = groups.find((g) => g.length > 1);
  if (!big) return undefined;
  return big.length === 2 ? `${big[0]} and ${big[1]}` : `${big[0]}, ${big[1]} and ${big[2]}`;
}

/** A caption sentence naming the runs whose traffic lines coincide, grouped by which lines. */
function coincideNote(s: Series): string {
  const runs = [...new Set(s.communication.map((r) => r.run))];
  const byLines = new Map<string, string[]>();
  for (const run of runs) {
    const lines = coincidingTraffic(s.communication.filter((r) => r.run === run));
    if (lines) byLines.set(lines, [...(byLines.get(lines) ?? []), run]);
  }
  const parts = [...byLines].map(([lines, which]) => {
    if (runs.length === 1) return `${lines} coincide (within 1%), so they show as one line`;
    const others = runs.filter((r) => !which.includes(r));
    const whose =
      which.length <= 4
        ? `in ${which.join(', ')}`
        : others.length <= 4
          ? `in ${which.length} of ${runs.length} runs (all but ${others.join(', ')})`
          : `in ${which.length} of ${runs.length} runs`;
    return `${lines} coincide (within 1%) ${whose}`;
  });
  return parts.length ? ` Here ${parts.join('; ')}.` : '';
}

function communicationChart(s: Series, multi: boolean): Chart | null {
  if (s.communication.length === 0) return null;
  const rows = s.communication.flatMap((r) => [
    { run: r.run, round: r.round, traffic: 'downlink', MB: r.down_bytes / MB },
    { run: r.run, round: r.round, traffic: 'uplink', MB: r.up_bytes / MB },
    { run: r.run, round: r.round, traffic: 'dense downlink', MB: r.dense_down_bytes / MB },
  ]);
  // Dense downlink dashed (and drawn last), so a line it coincides with shows through.
  const dash = {
    field: 'traffic',
    type: 'nominal',
    title: 'traffic',
    scale: {
      domain: [...TRAFFIC],
      range: [
        [1, 0],
        [1, 0],
        [6, 4],
      ],
    },
  } as const;
  const traffic = { ...dash, scale: { domain: [...TRAFFIC] } } as const;
  const spec = {
    data: { values: rows },
    ...WIDE,
    mark: { type: 'line', strokeWidth: 2 },
    encoding: {
      x: ROUND,
      y: { field: 'MB', type: 'quantitative', title: 'cumulative MB (all clients)' },
      color: multi ? { field: 'run', type: 'nominal', title: 'run' } : traffic,
      strokeDash: multi ? { ...dash, scale: { domain: [...TRAFFIC] } } : dash,
    },
    config: CONFIG,
  } as TopLevelSpec;
  return {
    id: 'communication',
    title: 'Communication',
    caption:
      'Cumulative bytes sent to clients (downlink) and back (uplink), as encoded on the wire, ' +
      `against what the same downloads would take as dense float32 models.${coincideNote(s)}`,
    spec,
  };
}

function frontierChart(s: Series): Chart | null {
  const spec = frontierSpec(s, CONFIG);
  if (!spec) return null;
  return {
    id: 'frontier',
    title: 'Accuracy against downlink',
    caption:
      "One point per run at its last evaluation: accuracy against the run's total downlink " +
      'bytes (as encoded on the wire). Filled circles joined by a line are the Pareto front of ' +
      'their algorithm (no run of it sent fewer bytes for more accuracy); hollow diamonds are ' +
      'dominated.',
    spec,
  };
}

/** The charts the series can fill; a chart with no data (e.g. ranks of FedAvg) is left out. */
export function buildCharts(s: Series): Chart[] {
  const multi = new Set(s.summary.map((r) => r.run)).size > 1;
  return [
    accuracyChart(s, multi),
    distributionChart(s, multi),
    rankChart(s),
    densityChart(s),
    communicationChart(s, multi),
    multi ? frontierChart(s) : null,
  ].filter((c): c is Chart => c !== null);
}

/** Renders a Vega-Lite spec to an SVG string (headless: no canvas, no DOM, no network). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
