import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../cli/cli.js';
import type { ClientEval, EvalRecord } from '../sim/events.js';
import { summarize } from '../sim/stats.js';
import { Rng } from '../tensor/rng.js';
import {
  buildCharts,
  coincidingTraffic,
  MAX_RANK_PANELS,
  renderSvg,
  spreadLabels,
} from './charts.js';
import { parseCsv, parseMarkdownTable } from './compare.js';
import { seriesCsv } from './csv.js';
import { writeReport } from './index.js';
import { loadRuns } from './load.js';
import { buildSeries } from './series.js';

interface FixtureOptions {
  algorithm: 'fedslr' | 'fedavg';
  seed: number;
  clients?: number;
  rounds?: number;
  evalEvery?: number;
}

/** A run directory as the simulator writes it, with made-up but consistent numbers. */
function writeRun(
  dir: string,
  o: FixtureOptions,
): { records: EvalRecord[]; clients: ClientEval[] } {
  const clients = o.clients ?? 12;
  const rounds = o.rounds ?? 20;
  const evalEvery = o.evalEvery ?? 5;
  const rng = new Rng(o.seed);
  const n = Array.from({ length: clients }, () => 40 + rng.int(60));
  const skill = Array.from({ length: clients }, () => rng.uniform());
  const records: EvalRecord[] = [];
  const evals: ClientEval[] = [];
  const fedslr = o.algorithm === 'fedslr';
  for (let round = 0; round <= rounds; round += evalEvery) {
    const t = round / rounds;
    const acc = (base: number) =>
      skill.map((s) => Math.min(1, base + 0.5 * t + 0.15 * s + 0.03 * rng.normal()));
    const gAcc = acc(0.2);
    const gLoss = gAcc.map((a) => 2.3 * (1 - a));
    const ce: ClientEval = { round, n, global: { acc: gAcc, loss: gLoss } };
    const r: EvalRecord = {
      round,
      time_s: round * 0.8,
      global: summarize(gAcc, gLoss, n),
      down_params: round * 4 * (fedslr ? 30_000 : 100_000),
      down_bytes: round * 4 * (fedslr ? 120_400 : 400_200),
      up_params: round * 4 * 100_000,
      up_bytes: round * 4 * 400_200,
      dense_down_params: round * 4 * 100_000,
    };
    if (fedslr) {
      const pAcc = acc(0.35);
      const pLoss = pAcc.map((a) => 2.3 * (1 - a));
      ce.personal = { acc: pAcc, loss: pLoss };
      r.personal = summarize(pAcc, pLoss, n);
      r.ranks = {
        'conv1.kernel': { rank: Math.max(3, 25 - round), full: 25 },
        'fc1.kernel': { rank: Math.max(20, 512 - 25 * round), full: 512 },
        'fc2.kernel': { rank: 10, full: 10 },
      };
      r.rank_ratio = Object.values(r.ranks).reduce((s, v) => s + v.rank, 0) / 547;
      r.personal_density = 1 - 0.8 * t;
    }
    records.push(r);
    evals.push(ce);
  }
  mkdirSync(dir, { recursive: true });
  const config = {
    seed: o.seed,
    rounds,
    evalEvery,
    clients: { count: clients, sampling: { kind: 'fraction', q: 0.3 } },
    algorithm: fedslr
      ? {
          name: 'fedslr',
          alpha: 0.1,
          mu: 1e-4,
          lambda: 1e-3,
          personalEpochs: 1,
          personalInit: 'init',
        }
      : { name: 'fedavg', weighted: true },
    data: {
      dataset: 'mnist',
      partition: { kind: 'dirichlet', alpha: 0.3, minSize: 10 },
      testPerClient: 100,
    },
    model: { name: 'cnn' },
    train: {
      lr: 0.1,
      lrDecay: 0.998,
      weightDecay: 1e-3,
      batchSize: 20,
      epochs: 2,
      backend: 'wasm',
    },
    fedslr: { version: '0.1.0', backend: 'wasm', trainSamples: 8000, testSamples: 2000 },
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeFileSync(join(dir, 'metrics.jsonl'), records.map((r) => `${JSON.stringify(r)}\n`).join(''));
  writeFileSync(join(dir, 'clients.jsonl'), evals.map((r) => `${JSON.stringify(r)}\n`).join(''));
  const best = (m: 'global' | 'personal') =>
    records.reduce<{ value: number; round: number } | undefined>((b, r) => {
      const v = r[m]?.acc;
      return v !== undefined && (!b || v > b.value) ? { value: v, round: r.round } : b;
    }, undefined);
  const summary = {
    algorithm: o.algorithm,
    rounds,
    time_s: rounds * 0.8,
    seconds_per_round: 0.8,
    final: records[records.length - 1],
    best: { global_acc: best('global'), ...(fedslr ? { personal_acc: best('personal') } : {}) },
  };
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(summary, null, 2));
  return { records, clients: evals };
}

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let tmp: string;
let browser: Browser;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'fedslr-report-'));
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
});

afterAll(async () => {
  await browser?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

interface PageCheck {
  errors: string[];
  requests: string[];
  charts: { id: string; svgs: number; marks: number; width: number }[];
}

/** Opens `file` in Chromium offline; collects console errors, network requests and chart marks. */
async function openReport(file: string, screenshot: string): Promise<PageCheck> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => {
    if (!r.url().startsWith('file:')) requests.push(r.url());
  });
  await page.goto(`file://${file}`);
  const charts = await page.$$eval('figure.chart', (figs) =>
    figs.map((f) => {
      const svgs = f.querySelectorAll('svg');
      // Vega's SVG renderer wraps each mark in <g class="mark-... role-mark">; count drawn items.
      const marks = f.querySelectorAll(
        'g.role-mark > path, g.role-mark > line, g.role-mark > rect, g.role-mark > g',
      );
      const box = svgs[0]?.getBoundingClientRect();
      return {
        id: f.getAttribute('data-chart') ?? '',
        svgs: svgs.length,
        marks: marks.length,
        width: box ? box.width : 0,
      };
    }),
  );
  await page.screenshot({ path: screenshot, fullPage: true });
  await page.close();
  return { errors, requests, charts };
}

describe('fedslr report', () => {
  it('renders every chart of a FedSLR run as inline SVG with marks, offline and without errors', async () => {
    const run = join(tmp, 'fedslr-run');
    writeRun(run, { algorithm: 'fedslr', seed: 1 });
    const out = join(tmp, 'single.html');
    await writeReport([run], out);
    const html = readFileSync(out, 'utf8');
    expect(html).not.toMatch(/<script|<link |src="http|href="http/);
    const check = await openReport(out, join(tmp, 'single.png'));
    expect(check.errors).toEqual([]);
    expect(check.requests).toEqual([]);
    expect(check.charts.map((c) => c.id)).toEqual([
      'accuracy',
      'client-distribution',
      'ranks',
      'density',
      'communication',
    ]);
    for (const c of check.charts) {
      expect(c.svgs, c.id).toBe(1);
      expect(c.marks, c.id).toBeGreaterThan(0);
      expect(c.width, c.id).toBeGreaterThan(100);
    }
    // The tables carry the run's own numbers.
    const summary = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8'));
    expect(html).toContain(`${(summary.final.personal.acc * 100).toFixed(2)}%`);
    expect(html).toContain('<td>algorithm.lambda</td><td>0.001</td>');
  });

  it('overlays several runs and shows the compare table beside them', async () => {
    const parent = join(tmp, 'compare-out');
    writeRun(join(parent, 'a-fedslr'), { algorithm: 'fedslr', seed: 2 });
    writeRun(join(parent, 'b-fedavg'), { algorithm: 'fedavg', seed: 3 });
    writeFileSync(
      join(parent, 'compare.md'),
      '# Comparison\n\nmnist, cnn, 12 clients.\nAccuracies in %.\n\n| run | personal acc |\n|---|---|\n| a-fedslr | 91.2% |\n| b-fedavg | – |\n',
    );
    // compare.csv lists the runs in its own order (b first); the report follows it.
    writeFileSync(
      join(parent, 'compare.csv'),
      `label,run_dir\nb,${join(parent, 'b-fedavg')}\na,${join(parent, 'a-fedslr')}\n`,
    );
    const out = join(tmp, 'multi.html');
    // The directory that holds the runs stands for all of them.
    await writeReport([parent], out);
    const html = readFileSync(out, 'utf8');
    expect(html).toContain('<h2>Comparison</h2>');
    expect(html.indexOf('<th>b-fedavg</th>')).toBeGreaterThan(0);
    expect(html.indexOf('<th>b-fedavg</th>')).toBeLessThan(html.indexOf('<th>a-fedslr</th>'));
    expect(html).toContain('<td>a-fedslr</td><td>91.2%</td>');
    expect(html).toContain('<p class="note">mnist, cnn, 12 clients. Accuracies in %.</p>');
    expect(html).toContain('From <code>compare-out/compare.md</code>');
    expect(html).toMatch(
      /<tr class="differs"><td>algorithm.name<\/td><td>fedavg<\/td><td>fedslr<\/td>/,
    );
    const check = await openReport(out, join(tmp, 'multi.png'));
    expect(check.errors).toEqual([]);
    // The five of a run, and accuracy against downlink, which needs several runs.
    expect(check.charts.map((c) => c.id)).toContain('frontier');
    expect(check.charts.length).toBe(6);
    for (const c of check.charts) expect(c.marks, c.id).toBeGreaterThan(0);
    // Both runs appear in the legend of the overlaid accuracy chart.
    const accuracy = html.slice(
      html.indexOf('data-chart="accuracy"'),
      html.indexOf('data-chart="client'),
    );
    expect(accuracy).toContain('>a-fedslr</text>');
    expect(accuracy).toContain('>b-fedavg</text>');
  });

  it('leaves out the charts a FedAvg run has no data for, and says why', async () => {
    const run = join(tmp, 'fedavg-only');
    writeRun(run, { algorithm: 'fedavg', seed: 4 });
    const out = join(tmp, 'fedavg.html');
    await writeReport([run], out);
    const html = readFileSync(out, 'utf8');
    const ids = [...html.matchAll(/data-chart="([^"]+)"/g)].map((m) => m[1]);
    expect(ids).toEqual(['accuracy', 'client-distribution', 'communication']);
    expect(html).toContain('fedavg keeps no low-rank global model');
  });
});

describe('report series and CSV', () => {
  it('holds every evaluation, client and matrix of the runs, and round-trips through CSV', () => {
    const dir = join(tmp, 'csv-run');
    const { records, clients } = writeRun(dir, {
      algorithm: 'fedslr',
      seed: 5,
      clients: 7,
      rounds: 10,
    });
    const s = buildSeries(loadRuns([dir]));
    expect(s.accuracy.length).toBe(records.length * 2);
    expect(s.clients.length).toBe(clients.length * 2 * 7);
    expect(s.ranks.length).toBe(records.length * 3);
    const csv = seriesCsv(s);
    const acc = parseCsv(csv['accuracy.csv']!);
    const col = (name: string) => acc[0]!.indexOf(name);
    const last = records[records.length - 1]!;
    const row = acc.find(
      (r) => r[col('round')] === String(last.round) && r[col('model')] === 'personal',
    )!;
    expect(Number(row[col('acc_p90')])).toBe(last.personal!.acc_p90);
    const comm = parseCsv(csv['communication.csv']!);
    expect(comm.length).toBe(records.length + 1);
    expect(Number(comm.at(-1)![comm[0]!.indexOf('dense_down_bytes')])).toBe(
      last.dense_down_params * 4,
    );
    const cl = parseCsv(csv['client_accuracy.csv']!);
    const c3 = cl.find((r) => r[1] === String(last.round) && r[2] === 'global' && r[3] === '3')!;
    expect(Number(c3[5])).toBe(clients.at(-1)!.global!.acc[3]);
  });

  it('reads an infinite loss (written as null, as JSON.stringify does) as a loss that is not a number', () => {
    const dir = join(tmp, 'infinite-loss');
    writeRun(dir, { algorithm: 'fedslr', seed: 9, clients: 4, rounds: 4 });
    // biome-ignore lint/suspicious/noExplicitAny: a record as JSON.parse returns it
    const editLastLine = (file: string, edit: (record: any) => void) => {
      const path = join(dir, file);
      const lines = readFileSync(path, 'utf8').trim().split('\n');
      const last = JSON.parse(lines.at(-1)!);
      edit(last);
      lines[lines.length - 1] = JSON.stringify(last);
      writeFileSync(path, `${lines.join('\n')}\n`);
    };
    editLastLine('metrics.jsonl', (r) => {
      r.personal.loss = Number.POSITIVE_INFINITY;
    });
    editLastLine('clients.jsonl', (r) => {
      r.personal.loss[2] = Number.POSITIVE_INFINITY;
    });
    expect(readFileSync(join(dir, 'metrics.jsonl'), 'utf8')).toContain('"loss":null');

    const [run] = loadRuns([dir]);
    expect(run!.records.at(-1)!.personal!.loss).toBeNaN();
    expect(run!.records.at(-1)!.global!.loss).toBeGreaterThan(0);
    expect(run!.clients.at(-1)!.personal!.loss[2]).toBeNaN();
    const acc = parseCsv(seriesCsv(buildSeries([run!]))['accuracy.csv']!);
    const col = (name: string) => acc[0]!.indexOf(name);
    const last = acc.filter((r) => r[col('model')] === 'personal').at(-1)!;
    expect(last[col('loss')]).toBe('NaN');
  });

  it('reads a federation evaluation that left clients out (null) and leaves them out of the series', () => {
    const dir = join(tmp, 'missing-clients');
    writeRun(dir, { algorithm: 'fedslr', seed: 11, clients: 4, rounds: 4, evalEvery: 2 });
    const path = join(dir, 'clients.jsonl');
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    const last = JSON.parse(lines.at(-1)!);
    last.n[1] = null;
    last.global.acc[1] = null;
    last.global.loss[1] = null;
    last.personal.acc[1] = null;
    last.personal.loss[1] = null;
    lines[lines.length - 1] = JSON.stringify(last);
    writeFileSync(path, `${lines.join('\n')}\n`);

    const [run] = loadRuns([dir]);
    expect(run!.clients.at(-1)!.n[1]).toBeNull();
    expect(run!.clients.at(-1)!.personal!.acc[1]).toBeNull();
    const s = buildSeries([run!]);
    const lastRound = run!.clients.at(-1)!.round;
    const rows = s.clients.filter((r) => r.round === lastRound);
    expect(rows.map((r) => `${r.model} ${r.client}`)).toEqual([
      'global 0',
      'global 2',
      'global 3',
      'personal 0',
      'personal 2',
      'personal 3',
    ]);
    // Earlier evaluations keep every client.
    expect(s.clients.filter((r) => r.round === 0)).toHaveLength(8);
  });

  it('writes CSV files from the CLI next to the report', async () => {
    const dir = join(tmp, 'cli-run');
    writeRun(dir, { algorithm: 'fedslr', seed: 6 });
    const csvDir = join(tmp, 'cli-csv');
    expect(await main(['report', dir, '--csv', csvDir])).toBe(0);
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toContain('data-chart="ranks"');
    for (const f of [
      'accuracy',
      'client_accuracy',
      'ranks',
      'density',
      'communication',
      'summary',
    ]) {
      expect(parseCsv(readFileSync(join(csvDir, `${f}.csv`), 'utf8')).length, f).toBeGreaterThan(1);
    }
  });

  it('quotes CSV cells that hold commas, quotes or newlines', () => {
    const s = buildSeries([]);
    s.density.push({ run: 'a,"b"\nc', round: 1, personal_density: 0.5 });
    expect(parseCsv(seriesCsv(s)['density.csv']!)).toEqual([
      ['run', 'round', 'personal_density'],
      ['a,"b"\nc', '1', '0.5'],
    ]);
  });

  it('reads the first pipe table of a Markdown file', () => {
    expect(parseMarkdownTable('text\n\n| a | b \\| c |\n|:--|--:|\n| 1 | 2 |\n\nmore')).toEqual([
      ['a', 'b | c'],
      ['1', '2'],
    ]);
  });

  it('draws no chart for a series without data', () => {
    expect(buildCharts(buildSeries([]))).toEqual([]);
  });

  /** The y pixel of each text mark (the end labels) of a rendered chart, with its text. */
  const textMarks = (svg: string) =>
    [
      ...svg.matchAll(
        /aria-roledescription="text mark"[^>]*translate\([\d.-]+,([\d.-]+)\)[^>]*>([^<]*)</g,
      ),
    ].map((m) => ({ y: Number(m[1]), text: m[2]! }));

  it('stacks the end labels of rank lines that end together instead of overlapping them', async () => {
    expect(spreadLabels([1, 1, 1, 1], 0.05)).toEqual(
      [1, 0.95, 0.9, 0.85].map((v) => expect.closeTo(v, 9)),
    );
    expect(spreadLabels([0.2, 0.9, 0.5], 0.05)).toEqual([0.2, 0.9, 0.5]);
    expect(spreadLabels([0, 0.01], 0.05)).toEqual([0, 0.05].map((v) => expect.closeTo(v, 9)));
    const s = buildSeries([]);
    for (const [matrix, full] of [
      ['conv1', 5],
      ['conv2', 160],
      ['fc1', 512],
      ['fc2', 10],
    ] as const)
      for (const round of [5, 10]) s.ranks.push({ run: 'r', round, matrix, rank: full, full });
    const labels = textMarks(await renderSvg(buildCharts(s).find((c) => c.id === 'ranks')!.spec));
    expect(labels.map((l) => l.text)).toEqual(['5', '160', '512', '10']);
    const ys = labels.map((l) => l.y).sort((a, b) => a - b);
    for (let i = 1; i < ys.length; i++) expect(ys[i]! - ys[i - 1]!).toBeGreaterThanOrEqual(12);
  });

  it(`draws one overall kept-rank line per run when more than ${MAX_RANK_PANELS} runs have ranks`, async () => {
    const s = buildSeries([]);
    for (let run = 0; run < 9; run++)
      for (const round of [5, 10])
        for (const [matrix, full] of [
          ['a', 10],
          ['b', 30],
        ] as const)
          s.ranks.push({ run: `run${run}`, round, matrix, rank: run < 3 ? full : 4, full });
    const chart = buildCharts(s).find((c) => c.id === 'ranks')!;
    expect(JSON.stringify(chart.spec)).not.toContain('facet');
    expect(chart.caption).toMatch(/^9 runs, so one line each/);
    const svg = await renderSvg(chart.spec);
    expect([...svg.matchAll(/aria-roledescription="line mark"/g)].length).toBe(9);
    const labels = textMarks(svg);
    // Three runs at 100%, six at 8 / 40 = 20.0%: nine labels, none on top of another.
    expect(labels.map((l) => l.text).sort()).toEqual([
      ...Array(3).fill('100.0%'),
      ...Array(6).fill('20.0%'),
    ]);
    const ys = labels.map((l) => l.y).sort((a, b) => a - b);
    for (let i = 1; i < ys.length; i++) expect(ys[i]! - ys[i - 1]!).toBeGreaterThanOrEqual(12);
  });

  it('says which traffic lines coincide, and nothing when they differ', () => {
    const row = (run: string, round: number, down: number, up: number, dense: number) => ({
      run,
      round,
      down_params: down / 4,
      down_bytes: down,
      up_params: up / 4,
      up_bytes: up,
      dense_down_params: dense / 4,
      dense_down_bytes: dense,
    });
    const dense = [row('d', 1, 1000, 1002, 1000), row('d', 2, 2000, 2004, 2000)];
    expect(coincidingTraffic(dense)).toBe('downlink, uplink and dense downlink');
    const lowRank = [row('f', 1, 100, 1002, 1000), row('f', 2, 150, 2004, 2000)];
    expect(coincidingTraffic(lowRank)).toBe('uplink and dense downlink');
    expect(coincidingTraffic([row('x', 1, 100, 500, 1000)])).toBeUndefined();
    const s = buildSeries([]);
    s.communication.push(...dense);
    expect(buildCharts(s).find((c) => c.id === 'communication')!.caption).toMatch(
      /Here downlink, uplink and dense downlink coincide \(within 1%\), so they show as one line\.$/,
    );
    s.communication.push(...lowRank);
    expect(buildCharts(s).find((c) => c.id === 'communication')!.caption).toMatch(
      /Here downlink, uplink and dense downlink coincide \(within 1%\) in d; uplink and dense downlink coincide \(within 1%\) in f\.$/,
    );
    s.communication.splice(0, s.communication.length, row('x', 1, 100, 500, 1000));
    expect(buildCharts(s).find((c) => c.id === 'communication')!.caption).not.toMatch(/coincide/);
  });

  it("gives each of ResNet-18's 21 weight matrices its own colour", async () => {
    const s = buildSeries([]);
    for (let m = 0; m < 21; m++) {
      for (const round of [1, 2]) {
        s.ranks.push({ run: 'r', round, matrix: `layer${m}.kernel`, rank: 10 + m, full: 64 });
      }
    }
    const chart = buildCharts(s).find((c) => c.id === 'ranks')!;
    const svg = await renderSvg(chart.spec);
    const lines = [...svg.matchAll(/aria-roledescription="line mark" d="[^"]*" stroke="(#\w+)"/g)];
    expect(lines.length).toBe(21);
    const strokes = new Set(lines.map((m) => m[1]));
    expect(strokes.size).toBe(21);
  });
});

describe('report input errors', () => {
  const run = async (...args: string[]) => {
    const errs: string[] = [];
    const orig = console.error;
    console.error = (...a: unknown[]) => errs.push(a.join(' '));
    try {
      return { code: await main(['report', ...args]), err: errs.join('\n') };
    } finally {
      console.error = orig;
    }
  };

  it('names a path that does not exist', async () => {
    const p = join(tmp, 'nowhere');
    const r = await run(p);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`'${p}' does not exist`);
  });

  it('names a directory that is not a run directory', async () => {
    const p = join(tmp, 'empty-dir');
    mkdirSync(p);
    writeFileSync(join(p, 'notes.txt'), 'hi');
    const r = await run(p);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`'${p}' is not a run directory`);
    expect(r.err).toContain('config.json');
  });

  it('names a run without evaluations', async () => {
    const p = join(tmp, 'no-evals');
    writeRun(p, { algorithm: 'fedslr', seed: 7 });
    writeFileSync(join(p, 'metrics.jsonl'), '');
    const r = await run(p);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`run '${p}' has no evaluations yet`);
  });

  it('leaves out the runs of a comparison that never evaluated, and names them on the page', async () => {
    const parent = join(tmp, 'compare-diverged');
    writeRun(join(parent, 'fedslr'), { algorithm: 'fedslr', seed: 9 });
    // A run that diverged before its first evaluation keeps only its config.
    mkdirSync(join(parent, 'perfedavg'), { recursive: true });
    writeFileSync(join(parent, 'perfedavg', 'config.json'), '{"evalEvery": 5}');
    const out = join(tmp, 'diverged.html');
    const r = await run(parent, '--out', out);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const html = readFileSync(out, 'utf8');
    expect(html).toContain('<th>fedslr</th>');
    expect(html).not.toContain('<th>perfedavg</th>');
    expect(html).toContain(
      '<p class="note">perfedavg: no evaluation recorded (the run has not reached its first one',
    );
  });

  it('refuses a comparison none of whose runs has evaluated', async () => {
    const parent = join(tmp, 'compare-nothing');
    mkdirSync(join(parent, 'a'), { recursive: true });
    writeFileSync(join(parent, 'a', 'config.json'), '{}');
    const r = await run(parent);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`'${parent}': none of its runs has an evaluation yet`);
  });

  it('names the file, line and field of a malformed record', async () => {
    const p = join(tmp, 'bad-line');
    writeRun(p, { algorithm: 'fedslr', seed: 8 });
    const lines = readFileSync(join(p, 'metrics.jsonl'), 'utf8').split('\n');
    const bad = JSON.parse(lines[1]!);
    bad.global.acc = 'high';
    lines[1] = JSON.stringify(bad);
    writeFileSync(join(p, 'metrics.jsonl'), lines.join('\n'));
    const r = await run(p);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${join(p, 'metrics.jsonl')} line 2: global.acc:`);
  });

  it('asks for a run directory when given none', async () => {
    const r = await run('--out', join(tmp, 'x.html'));
    expect(r.code).toBe(2);
    expect(r.err).toContain('expected at least one run directory');
  });
});
