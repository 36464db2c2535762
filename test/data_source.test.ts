import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/cli.js';
import { encodeIdx } from '../src/data/idx.js';
import { loadDataset } from '../src/data/load.js';
import { Rng } from '../src/tensor/rng.js';

/** A small random mnist-idx set (60 train, 30 test images) in `dir`. */
function writeIdxSet(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const rng = new Rng(7);
  const bytes = (n: number, max = 256) => Uint8Array.from({ length: n }, () => rng.int(max));
  writeFileSync(join(dir, 'train-images-idx3-ubyte'), encodeIdx([60, 28, 28], bytes(60 * 784)));
  writeFileSync(join(dir, 'train-labels-idx1-ubyte'), encodeIdx([60], bytes(60, 10)));
  writeFileSync(join(dir, 't10k-images-idx3-ubyte'), encodeIdx([30, 28, 28], bytes(30 * 784)));
  writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), encodeIdx([30], bytes(30, 10)));
}

const home = process.env['HOME'];
afterEach(() => {
  process.env['HOME'] = home;
  vi.restoreAllMocks();
});

describe('where the data was found', () => {
  it('a data.dir without the files: the run says where it read them and config.json records it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fedslr-data-'));
    // ~/.cache/fedslr/mnist is a default location searched after data.dir.
    process.env['HOME'] = root;
    const cache = join(root, '.cache', 'fedslr', 'mnist');
    writeIdxSet(cache);
    const empty = join(root, 'empty');
    mkdirSync(empty);
    expect((await loadDataset({ name: 'mnist-idx', dir: empty })).source).toBe(cache);

    const config = join(root, 'c.json');
    writeFileSync(
      config,
      JSON.stringify({
        rounds: 1,
        clients: { count: 2, sampling: { kind: 'count', k: 1 } },
        data: { dataset: 'mnist-idx', dir: empty, partition: { kind: 'iid' }, testPerClient: 10 },
        model: { name: 'mlp', hidden: [4] },
        train: { backend: 'wasm', epochs: 1, batchSize: 30 },
        runtime: { workers: 1 },
      }),
    );
    const stderr: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => stderr.push(String(s)) > 0);
    vi.spyOn(console, 'log').mockImplementation(() => {});
    const out = join(root, 'run');
    expect(await main(['run', config, '--out', out, '--quiet'])).toBe(0);
    expect(stderr.join('')).toContain(
      `data.dir '${empty}' does not hold mnist-idx's files; read them from ${cache}`,
    );
    const written = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(written.fedslr.dataSource).toBe(cache);
    expect(written.data.dir).toBe(empty);
  });
});
