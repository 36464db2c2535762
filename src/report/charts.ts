/**
 * The report's charts: Vega-Lite specs built from the series, rendered to SVG strings in Node
 * (Vega's headless view, no canvas and no network), so the HTML needs no script to show them.
 */
import { parse, scheme, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { frontierSpec } from './frontier.js';
import { lastClientRows, type Series } from './series.js';

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

function rankChart(s: Series, multi: boolean): Chart | null {
  if (s.ranks.length === 0) return null;
  const last = new Map<string, number>();
  for (const r of s.ranks) last.set(r.run, Math.max(last.get(r.run) ?? -1, r.round));
  const rows = s.ranks.map((r) => ({
    ...r,
    kept: r.full > 0 ? r.rank / r.full : 0,
    label: `${r.matrix} (full ${r.full})`,
    end: r.round === last.get(r.run) ? `${r.rank}` : '',
  }));
  const x = ROUND;
  const y = {
    field: 'kept',
    type: 'quantitative',
    title: 'kept rank / full rank',
    axis: { format: '.0%' },
    scale: { domainMin: 0, domainMax: 1 },
  } as const;
  const color = {
    field: 'label',
    type: 'nominal',
    title: 'matrix (full rank)',
    sort: null,
    scale: { range: matrixColors(new Set(rows.map((r) => r.matrix)).size) },
    legend: LINE_LEGEND,
  } as const;
  const layer = {
    layer: [
      {
        mark: { type: 'line', point: markers(rows, 25), interpolate: 'step-after' } as const,
        encoding: { x, y, color },
      },
      {
        transform: [{ filter: "datum.end !== ''" }],
        mark: { type: 'text', align: 'left', dx: 6, fontSize: 11 } as const,
        encoding: { x, y, color, text: { field: 'end' } },
      },
    ],
  };
  const spec = (
    multi
      ? {
          data: { values: rows },
          facet: { column: { field: 'run', type: 'nominal', title: null } },
          spec: { ...PANEL, ...layer },
          config: CONFIG,
        }
      : { data: { values: rows }, ...WIDE, ...layer, config: CONFIG }
  ) as TopLevelSpec;
  return {
    id: 'ranks',
    title: 'Kept rank of the global model',
    caption:
      'Rank of each weight matrix of the global model after singular-value thresholding, as a ' +
      'share of its full rank (in the legend); the number at the end of each line is the kept ' +
      'rank at the last evaluation. Lower rank: smaller downloads.',
    spec,
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

function communicationChart(s: Series, multi: boolean): Chart | null {
  if (s.communication.length === 0) return null;
  const rows = s.communication.flatMap((r) => [
    { run: r.run, round: r.round, traffic: 'downlink', MB: r.down_bytes / MB },
    { run: r.run, round: r.round, traffic: 'uplink', MB: r.up_bytes / MB },
    { run: r.run, round: r.round, traffic: 'dense downlink', MB: r.dense_down_bytes / MB },
  ]);
  const traffic = {
    field: 'traffic',
    type: 'nominal',
    title: 'traffic',
    scale: { domain: ['downlink', 'uplink', 'dense downlink'] },
  } as const;
  const spec = {
    data: { values: rows },
    ...WIDE,
    mark: { type: 'line', strokeWidth: 2 },
    encoding: {
      x: ROUND,
      y: { field: 'MB', type: 'quantitative', title: 'cumulative MB (all clients)' },
      color: multi ? { field: 'run', type: 'nominal', title: 'run' } : traffic,
      ...(multi ? { strokeDash: traffic } : {}),
    },
    config: CONFIG,
  } as TopLevelSpec;
  return {
    id: 'communication',
    title: 'Communication',
    caption:
      'Cumulative bytes sent to clients (downlink) and back (uplink), as encoded on the wire, ' +
      'against what the same downloads would take as dense float32 models.',
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
    rankChart(s, multi),
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
