import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/cli.js';
import { fmtDuration } from '../src/cli/progress.js';
import { tiny } from './tiny_config.js';

let out: string[];
let err: string[];
beforeEach(() => {
  out = [];
  err = [];
  vi.spyOn(console, 'log').mockImplementation((...a) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a) => void err.push(a.join(' ')));
});
afterEach(() => vi.restoreAllMocks());

describe('fedslr command', () => {
  it('run prints the final table and writes the run directory with its report', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedslr-cli-'));
    const config = join(dir, 'c.yaml');
    writeFileSync(config, JSON.stringify(tiny));
    expect(
      await main([
        'run',
        config,
        '--out',
        join(dir, 'run'),
        '--quiet',
        '--set',
        'algorithm.name=fedslr',
      ]),
    ).toBe(0);
    expect(out.join('\n')).toMatch(
      /fedslr, 1 rounds[\s\S]*global model acc[\s\S]*personal model acc/,
    );
    for (const f of [
      'config.json',
      'metrics.jsonl',
      'clients.jsonl',
      'summary.json',
      'report.html',
    ]) {
      expect(existsSync(join(dir, 'run', f)), f).toBe(true);
    }
    expect(readFileSync(join(dir, 'run', 'report.html'), 'utf8')).toContain('<svg');
  });

  it('compare writes the table and a report of all runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedslr-cli-'));
    const config = join(dir, 'c.json');
    writeFileSync(config, JSON.stringify(tiny));
    const progress: string[] = [];
    const stderr = vi
      .spyOn(process.stderr, 'write')
      .mockImplementation((s) => progress.push(String(s)) > 0);
    expect(
      await main(['compare', config, '--algorithms', 'fedavg,local', '--out', join(dir, 'cmp')]),
    ).toBe(0);
    stderr.mockRestore();
    // Before the second entry: what is left, at the first run's wall time.
    expect(progress.join('')).toMatch(
      /\[2\/2\]: local[^\n]*\n {2}this and the other entries left: about \d+s at the finished runs' mean wall time/,
    );
    for (const f of ['compare.md', 'compare.csv', 'compare.json', 'report.html'])
      expect(existsSync(join(dir, 'cmp', f)), f).toBe(true);
    // report --svg writes each chart on its own, the frontier among them for several runs.
    const svg = join(dir, 'svg');
    expect(
      await main(['report', join(dir, 'cmp'), '--out', join(dir, 'r.html'), '--svg', svg]),
    ).toBe(0);
    for (const id of ['accuracy', 'communication', 'frontier'])
      expect(readFileSync(join(svg, `${id}.svg`), 'utf8')).toMatch(/^<svg[\s\S]*<\/svg>$/);
    expect(readFileSync(join(dir, 'r.html'), 'utf8')).toContain('data-chart="frontier"');
    // Nothing left to do: --resume keeps both runs and rewrites the table and report.
    expect(await main(['compare', '--resume', join(dir, 'cmp'), '--quiet'])).toBe(0);
    expect(out.join('\n')).toMatch(/\| fedavg \|[\s\S]*\| local \|/);
    expect(await main(['compare', '--resume', join(dir, 'cmp'), '--out', join(dir, 'x')])).toBe(2);
    expect(err.join('\n')).toMatch(/drop --out/);
    // --algorithms on --resume adds the entries the comparison lacks.
    expect(
      await main([
        'compare',
        '--resume',
        join(dir, 'cmp'),
        '--algorithms',
        'local,fedprox',
        '--quiet',
      ]),
    ).toBe(0);
    expect(out.at(-2)).toMatch(/\| fedavg \|[\s\S]*\| local \|[\s\S]*\| fedprox \|/);
    expect(await main(['compare', '--resume', dir])).toBe(2);
    expect(err.join('\n')).toMatch(/not a comparison directory/);
  });

  it('exits 2 with the reason for bad configs and unknown commands, and prints help', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedslr-cli-'));
    const config = join(dir, 'bad.yaml');
    writeFileSync(config, 'rounds: -2\nalgorithm: { name: fedslr, mu: x }\n');
    expect(await main(['run', config, '--out', join(dir, 'r')])).toBe(2);
    expect(err.join('\n')).toMatch(/rounds: .*>=0[\s\S]*algorithm\.mu: .*expected number/);
    expect(await main(['run', join(dir, 'missing.yaml')])).toBe(2);
    expect(err.join('\n')).toMatch(/cannot read config file/);
    expect(await main(['frobnicate'])).toBe(2);
    expect(await main(['compare', config, '--algorithm', 'fedavg'])).toBe(2);
    expect(err.join('\n')).toMatch(
      /unknown option '--algorithm' \(did you mean '--algorithms'\?\)/,
    );
    expect(await main(['run', config, '--qiet'])).toBe(2);
    expect(err.join('\n')).toMatch(/unknown option '--qiet' \(did you mean '--quiet'\?\)/);
    expect(await main(['run'])).toBe(2);
    expect(err.join('\n')).toMatch(/expected one config file/);
    expect(await main(['--help'])).toBe(0);
    expect(await main(['run', '--help'])).toBe(0);
    expect(out.join('\n')).toMatch(/Usage: fedslr run <config/);
    expect(await main(['compare', '--help'])).toBe(0);
    expect(out.join('\n')).toMatch(/fedslr compare --resume DIR[\s\S]*compare\.json/);
  });

  it('exits 2 with the message alone when a data file is bad', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedslr-cli-'));
    const config = join(dir, 'split.json');
    const missing = join(dir, 'missing-split.json');
    writeFileSync(
      config,
      JSON.stringify({
        ...tiny,
        data: { ...tiny.data, partition: { kind: 'file', path: missing } },
      }),
    );
    expect(await main(['run', config, '--out', join(dir, 'r'), '--quiet'])).toBe(2);
    const text = err.join('\n');
    expect(text).toContain(`fedslr run: split file ${missing}: cannot read it (ENOENT)`);
    expect(text).not.toMatch(/\n\s+at /);
  });
});

describe('fmtDuration', () => {
  it('rounds to the unit it shows last, carrying into the next', () => {
    expect(fmtDuration(42)).toBe('42s');
    expect(fmtDuration(59.6)).toBe('1m00s');
    expect(fmtDuration(187)).toBe('3m07s');
    expect(fmtDuration(119.7)).toBe('2m00s');
    expect(fmtDuration(7199)).toBe('2h00m');
    expect(fmtDuration(7530)).toBe('2h06m');
    expect(fmtDuration(Number.NaN)).toBe('?');
  });
});
