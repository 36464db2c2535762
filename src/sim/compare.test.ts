import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type CompareRow,
  expandGrid,
  parseAlgorithmList,
  resumeCompare,
  runCompare,
  runDirName,
} from './compare.js';
import { parseConfig } from './config.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const config = parseConfig({
  seed: 1,
  rounds: 2,
  evalEvery: 1,
  clients: { count: 4, sampling: { kind: 'count', k: 2 } },
  algorithm: { name: 'fedslr', mu: 0.01 },
  data: { dataset: 'mnist', partition: { kind: 'dirichlet', alpha: 0.5 }, testPerClient: 50 },
  model: { name: 'mlp', hidden: [16] },
  train: { batchSize: 20, epochs: 1, backend: 'wasm' },
});

describe('parseAlgorithmList', () => {
  it("keeps the config's options for its own algorithm and defaults for others", () => {
    const [a, b, c] = parseAlgorithmList(
      'fedslr, fedavg,fedslr:ablation=sparse-only:lambda=0',
      config.algorithm,
    );
    expect(a).toEqual({ label: 'fedslr', algorithm: config.algorithm });
    expect(b!.algorithm).toEqual({ name: 'fedavg', weighted: true });
    expect(c!.algorithm).toMatchObject({
      name: 'fedslr',
      mu: 0.01,
      lambda: 0,
      ablation: 'sparse-only',
    });
  });

  it('names the bad entry and what is wrong', () => {
    expect(() => parseAlgorithmList('fedavg,fedsrl', config.algorithm)).toThrow(
      /'fedsrl' is not valid/,
    );
    expect(() => parseAlgorithmList('fedprox:mux=1', config.algorithm)).toThrow(
      /'fedprox:mux=1' is not valid: .*mux/,
    );
    expect(() => parseAlgorithmList('fedprox:mu', config.algorithm)).toThrow(
      /expected name:key=value/,
    );
    expect(() => parseAlgorithmList('fedavg,fedavg', config.algorithm)).toThrow(/listed twice/);
  });

  it('suggests the closest algorithm name and option for a typo, as run does', () => {
    expect(() => parseAlgorithmList('fedavg,fedsrl', config.algorithm)).toThrow(
      /'fedsrl' is not valid: name: 'fedsrl' is not one of fedslr, .* \(did you mean 'fedslr'\?\)/,
    );
    expect(() => parseAlgorithmList('fedprox:mux=1', config.algorithm)).toThrow(
      /'fedprox:mux=1' is not valid: unknown key 'mux' \(did you mean 'mu'\?\); allowed: name, mu, weighted/,
    );
    expect(() => parseAlgorithmList(' , ', config.algorithm)).toThrow(/at least one/);
  });
});

describe('expandGrid', () => {
  const bytes = parseConfig({
    algorithm: { name: 'fedslr', svt: { mode: 'bytes', fraction: 0.5 } },
  }).algorithm;

  it('crosses each entry with the grid axes that are its options, one labelled entry per point', () => {
    const list = expandGrid(
      'fedslr,fedslr:svt.mode=absolute,fedavg',
      ['algorithm.svt.fraction=0.2,0.4', 'algorithm.downlink=0.2,0.4'],
      bytes,
    );
    expect(list.split(',')).toEqual([
      'fedslr:svt.fraction=0.2',
      'fedslr:svt.fraction=0.4',
      'fedslr:svt.mode=absolute',
      'fedavg:downlink=0.2',
      'fedavg:downlink=0.4',
    ]);
    const entries = parseAlgorithmList(list, bytes);
    expect(entries[1]!.algorithm).toMatchObject({ svt: { mode: 'bytes', fraction: 0.4 } });
    expect(entries[2]!.algorithm).toMatchObject({ svt: { mode: 'absolute' } });
    expect(entries[4]!.algorithm).toEqual({ name: 'fedavg', weighted: true, downlink: 0.4 });
    expect(runDirName(entries[0]!.label)).toBe('fedslr_svt.fraction_0.2');
  });

  it('~ as a value unsets the option: the dense reference within an axis', () => {
    const list = expandGrid(
      'fedslr,fedavg',
      ['algorithm.svt.fraction=0.3', 'algorithm.downlink=~,0.5'],
      bytes,
    );
    expect(list).toBe('fedslr:svt.fraction=0.3,fedavg:downlink=~,fedavg:downlink=0.5');
    expect(runDirName('fedavg:downlink=~')).toBe('fedavg_downlink_unset');
    expect(parseAlgorithmList(list, bytes)[1]!.algorithm).toEqual({
      name: 'fedavg',
      weighted: true,
    });
  });

  it('takes the cartesian product of several axes', () => {
    const list = expandGrid(
      'fedslr',
      ['algorithm.svt.fraction=0.2,0.4', 'algorithm.personalEpochs=1,2'],
      bytes,
    );
    expect(list.split(',')).toHaveLength(4);
    expect(list).toContain('fedslr:svt.fraction=0.4:personalEpochs=2');
  });

  it('says which axis fits no entry, and refuses keys outside the algorithm section', () => {
    expect(() => expandGrid('fedavg', ['algorithm.svt.fraction=0.2'], bytes)).toThrow(
      /--grid algorithm\.svt\.fraction: not a valid option of any entry/,
    );
    expect(() => expandGrid('fedslr', ['rounds=5,10'], bytes)).toThrow(
      /varies only the algorithm section/,
    );
    expect(() =>
      parseAlgorithmList(expandGrid('fedslr', ['algorithm.svt.fraction=0.2,7'], bytes), bytes),
    ).toThrow(/'fedslr:svt\.fraction=7' is not valid: svt\.fraction/);
  });
});

/** The comparison of FedSLR, FedDyn and FedSLR without SVT, run once for the tests that read it. */
let first:
  | Promise<{
      out: string;
      rows: CompareRow[];
      started: string[];
      estimates: (number | undefined)[];
    }>
  | undefined;
function firstComparison() {
  first ??= (async () => {
    const out = mkdtempSync(join(tmpdir(), 'fedslr-compare-'));
    dirs.push(out);
    const entries = parseAlgorithmList(
      'fedslr,feddyn,fedslr:ablation=sparse-only',
      config.algorithm,
    );
    const started: string[] = [];
    const estimates: (number | undefined)[] = [];
    const rows = await runCompare(config, entries, {
      outDir: out,
      onStart: ({ entry, estimate_s }) => {
        started.push(entry.label);
        estimates.push(estimate_s);
      },
    });
    return { out, rows, started, estimates };
  })();
  return first;
}

describe('runCompare', () => {
  it('runs each algorithm on the same setup and writes compare.md and compare.csv', async () => {
    const { out, rows, started, estimates } = await firstComparison();
    expect(started).toEqual(['fedslr', 'feddyn', 'fedslr:ablation=sparse-only']);
    // What is left, at the mean wall time of the runs finished before each start.
    expect(estimates[0]).toBeUndefined();
    expect(estimates[1]).toBeCloseTo(2 * rows[0]!.time_s, 10);
    expect(estimates[2]).toBeCloseTo((rows[0]!.time_s + rows[1]!.time_s) / 2, 10);
    for (const d of ['fedslr', 'feddyn', 'fedslr_ablation_sparse-only'])
      expect(existsSync(join(out, d, 'summary.json'))).toBe(true);
    const saved = JSON.parse(readFileSync(join(out, 'fedslr', 'config.json'), 'utf8'));
    expect(saved.algorithm.mu).toBe(0.01);

    const [slr, dyn, sparseOnly] = rows;
    // Same split, seed and schedule: FedSLR without SVT has FedDyn's global model exactly.
    expect(sparseOnly!.global_acc_final).toBe(dyn!.global_acc_final);
    expect(slr!.personal_density).toBeGreaterThan(0);
    expect(dyn!.personal_acc_final).toBeUndefined();
    for (const r of rows) {
      expect(r.rounds).toBe(2);
      expect(r.down_bytes).toBeGreaterThan(4 * 2 * 2 * (r.down_params_per_client ?? 0));
      expect(r.up_bytes).toBeGreaterThan(0);
    }
    expect(dyn!.down_vs_dense).toBeCloseTo(1, 10);

    const csv = readFileSync(join(out, 'compare.csv'), 'utf8').trim().split('\n');
    expect(csv).toHaveLength(4);
    const header = csv[0]!.split(',');
    const col = (row: number, name: string) => csv[row]!.split(',')[header.indexOf(name)]!;
    expect(col(2, 'label')).toBe('feddyn');
    expect(Number(col(2, 'global_acc_final'))).toBe(dyn!.global_acc_final);
    expect(col(2, 'personal_acc_final')).toBe('');
    expect(Number(col(1, 'down_bytes'))).toBe(slr!.down_bytes);

    const md = readFileSync(join(out, 'compare.md'), 'utf8');
    const table = md.split('\n').filter((l) => l.startsWith('| '));
    expect(table).toHaveLength(4);
    expect(table[2]).toContain(`| feddyn | ${(100 * dyn!.global_acc_final!).toFixed(2)} |`);
    expect(md).toContain('mnist, mlp [16], 4 clients (2 per round), 2 rounds, seed 1');
  });

  it('refuses a non-empty output directory before running anything', async () => {
    const { out } = await firstComparison();
    const started: string[] = [];
    await expect(
      runCompare(config, parseAlgorithmList('fedavg', config.algorithm), {
        outDir: out,
        onStart: ({ entry }) => started.push(entry.label),
      }),
    ).rejects.toThrow(/not empty/);
    expect(started).toEqual([]);
  });

  it('records a run whose training diverges and goes on with the next; resume does not retry it', async () => {
    const out = mkdtempSync(join(tmpdir(), 'fedslr-compare-'));
    dirs.push(out);
    // A server step of 1e30 sends the global model to infinity after round 1.
    const entries = parseAlgorithmList('scaffold:serverLr=1e30,fedavg', config.algorithm);
    const diverged: string[] = [];
    const rows = await runCompare(config, entries, {
      outDir: out,
      onDiverged: ({ entry }, err) => diverged.push(`${entry.label}: round ${err.round}`),
    });
    expect(diverged).toEqual(['scaffold:serverLr=1e30: round 2']);
    expect(rows.map((r) => [r.label, r.rounds, r.diverged_round])).toEqual([
      ['scaffold:serverLr=1e30', 1, 2],
      ['fedavg', 2, undefined],
    ]);
    expect(rows[0]!.global_acc_final).toBeGreaterThan(0);
    // The model and SCAFFOLD's control variate, as downloaded in the last round that ran.
    expect(rows[0]!.down_params_per_client).toBe(2 * rows[1]!.down_params_per_client!);
    expect(rows[0]!.diverged_reason).toMatch(/training diverged in round 2: client \d+'s loss is/);
    const md = readFileSync(join(out, 'compare.md'), 'utf8');
    expect(md).toContain('| scaffold:serverLr=1e30 (diverged in round 2) |');
    expect(md).toMatch(
      /scaffold:serverLr=1e30: training diverged in round 2: .*last evaluation, at round 1\./,
    );
    const csv = readFileSync(join(out, 'compare.csv'), 'utf8').trim().split('\n');
    const header = csv[0]!.split(',');
    expect(csv[1]!.split(',')[header.indexOf('diverged_round')]).toBe('2');
    expect(csv[2]!.split(',')[header.indexOf('diverged_round')]).toBe('');

    const started: string[] = [];
    const again = await resumeCompare(out, [], {
      onStart: ({ entry }) => started.push(entry.label),
    });
    expect(started).toEqual([]);
    expect(again).toEqual(rows);
  });

  it('resumes an interrupted comparison: keeps finished runs, continues the interrupted one', async () => {
    // A copy of the first comparison, interrupted during feddyn's second round: fedslr finished,
    // feddyn has only its round-1 checkpoint, the sparse-only run never started.
    const first = await firstComparison();
    const out = mkdtempSync(join(tmpdir(), 'fedslr-compare-'));
    dirs.push(out);
    cpSync(first.out, out, { recursive: true });
    const state = JSON.parse(readFileSync(join(out, 'compare.json'), 'utf8'));
    state.rows = state.rows.slice(0, 1);
    writeFileSync(join(out, 'compare.json'), JSON.stringify(state));
    rmSync(join(out, 'feddyn', 'checkpoints', 'round-000002'), { recursive: true });
    rmSync(join(out, 'feddyn', 'summary.json'));
    rmSync(join(out, 'fedslr_ablation_sparse-only'), { recursive: true });

    const started: string[] = [];
    const resumed = await resumeCompare(out, [], {
      onStart: ({ entry }) => started.push(entry.label),
    });
    expect(started).toEqual(['feddyn', 'fedslr:ablation=sparse-only']);
    // run_dir is absolute: the copy's rows name their own directory.
    const same = (r: CompareRow) => ({ ...r, time_s: 0, run_dir: basename(r.run_dir) });
    expect(resumed.map(same)).toEqual(first.rows.map(same));
    const csv = readFileSync(join(out, 'compare.csv'), 'utf8').trim().split('\n');
    expect(csv.map((l) => l.split(',')[0])).toEqual([
      'label',
      'fedslr',
      'feddyn',
      'fedslr:ablation=sparse-only',
    ]);

    // More rounds continue every run; other changes are refused by name.
    const longer = await resumeCompare(out, ['rounds=3'], {});
    expect(longer.map((r) => r.rounds)).toEqual([3, 3, 3]);
    // --algorithms on a resume adds only what the comparison lacks.
    const added: string[] = [];
    const grown = await resumeCompare(
      out,
      ['rounds=3'],
      { onStart: ({ entry }) => added.push(entry.label) },
      'feddyn,fedprox:mu=0.5',
    );
    expect(added).toEqual(['fedprox:mu=0.5']);
    expect(grown.map((r) => r.label)).toEqual([
      'fedslr',
      'feddyn',
      'fedslr:ablation=sparse-only',
      'fedprox:mu=0.5',
    ]);
    expect(grown.slice(0, 3)).toEqual(longer);
    await expect(resumeCompare(out, ['seed=2', 'train.lr=0.5'], {})).rejects.toThrow(
      /differing keys: seed, train.lr/,
    );
    await expect(resumeCompare(join(out, 'feddyn'), [], {})).rejects.toThrow(
      /not a comparison directory/,
    );
  });
});
