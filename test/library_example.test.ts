import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { trainAndReport } from '../examples/library.js';

describe("README's library example (examples/library.ts)", () => {
  it('type-checks against the public API', async () => {
    // Asynchronously: tsc takes long on a busy machine, and a blocked test worker misses vitest's calls.
    const output = await new Promise<string>((resolve) => {
      execFile(
        process.execPath,
        ['node_modules/typescript/bin/tsc', '-p', 'examples/tsconfig.json'],
        (err, stdout, stderr) => resolve(`${err ? `exit ${err.code}\n` : ''}${stdout}${stderr}`),
      );
    });
    expect(output).toBe('');
  }, 300_000);

  it('runs on a tiny config, reporting rounds and evaluations, and is what the README shows', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'fedslr-lib-')), 'run');
    const lines = await trainAndReport(
      {
        rounds: 2,
        evalEvery: 2,
        clients: { count: 3, sampling: { kind: 'count', k: 2 } },
        data: { dataset: 'mnist', partition: { kind: 'iid' }, testPerClient: 20 },
        model: { name: 'mlp', hidden: [8] },
        train: { backend: 'wasm', epochs: 1, batchSize: 100 },
        runtime: { workers: 1 },
      },
      out,
    );
    expect(lines[0]).toMatch(/^round 1: train loss \d+\.\d{3}$/);
    expect(lines[1]).toMatch(/^round 2: train loss /);
    expect(lines[2]).toMatch(/^after 2 rounds: global 0\.\d+, personal 0\.\d+$/);
    expect(lines[3]).toMatch(/^done: 2 rounds in \d+\.\d s$/);
    expect(existsSync(join(out, 'metrics.jsonl'))).toBe(true);
    const code = readFileSync('examples/library.ts', 'utf8');
    const body = code.slice(code.indexOf('import {'));
    expect(readFileSync('README.md', 'utf8')).toContain(body);
  });
});
