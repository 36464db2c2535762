import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../tensor/rng.js';
import { encodeIdx, parseIdx, readIdxFile } from './idx.js';
import { idxSearchDirs, MNIST_IDX_NORMALIZATION } from './idxDatasets.js';
import { loadDataset } from './load.js';
import { DataNotFoundError } from './locate.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fedslr-idx-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function randomBytes(n: number, seed: number, max = 256): Uint8Array {
  const rng = new Rng(seed);
  return Uint8Array.from({ length: n }, () => rng.int(max));
}

/** Writes a small MNIST-like IDX dataset; `gz` picks which files are gzipped. */
async function writeIdxSet(
  dir: string,
  nTrain: number,
  nTest: number,
  gz: (file: string) => boolean,
): Promise<{ trainPx: Uint8Array; trainY: Uint8Array; testPx: Uint8Array; testY: Uint8Array }> {
  await mkdir(dir, { recursive: true });
  const trainPx = randomBytes(nTrain * 28 * 28, 1);
  const trainY = randomBytes(nTrain, 2, 10);
  const testPx = randomBytes(nTest * 28 * 28, 3);
  const testY = randomBytes(nTest, 4, 10);
  const files: [string, Uint8Array][] = [
    ['train-images-idx3-ubyte', encodeIdx([nTrain, 28, 28], trainPx)],
    ['train-labels-idx1-ubyte', encodeIdx([nTrain], trainY)],
    ['t10k-images-idx3-ubyte', encodeIdx([nTest, 28, 28], testPx)],
    ['t10k-labels-idx1-ubyte', encodeIdx([nTest], testY)],
  ];
  for (const [name, bytes] of files) {
    if (gz(name)) await writeFile(join(dir, `${name}.gz`), gzipSync(bytes));
    else await writeFile(join(dir, name), bytes);
  }
  return { trainPx, trainY, testPx, testY };
}

describe('IDX parsing', () => {
  it('reads a plain and a gzipped file to the same dims and values', async () => {
    const data = randomBytes(3 * 4 * 5, 7);
    const bytes = encodeIdx([3, 4, 5], data);
    await writeFile(join(root, 'plain-idx3'), bytes);
    await writeFile(join(root, 'zipped-idx3.gz'), gzipSync(bytes));
    for (const name of ['plain-idx3', 'zipped-idx3.gz']) {
      const arr = await readIdxFile(join(root, name), 3);
      expect(arr.dims).toEqual([3, 4, 5]);
      expect(Array.from(arr.data)).toEqual(Array.from(data));
    }
  });

  it('rejects bad magic numbers, types, dimension counts and lengths, naming the file', () => {
    const good = encodeIdx([2, 3], new Uint8Array(6));
    const bad = (mutate: (b: Uint8Array) => Uint8Array) => () =>
      parseIdx(mutate(Uint8Array.from(good)), 'f.idx', 2);
    const setByte = (pos: number, v: number) => (b: Uint8Array) => {
      b[pos] = v;
      return b;
    };
    expect(bad(setByte(0, 1))).toThrow(/f\.idx: bad IDX magic number 0x01000802/);
    expect(bad(setByte(2, 0x0d))).toThrow(/f\.idx: IDX value type 0x0d is not supported/);
    expect(bad(setByte(3, 3))).toThrow(/f\.idx: expected an IDX file with 2 dimensions, got 3/);
    expect(bad((b) => b.subarray(0, b.length - 1))).toThrow(/f\.idx: .*need 18 bytes, file has 17/);
    expect(bad((b) => Uint8Array.from([...b, 0]))).toThrow(/file has 19/);
    expect(bad((b) => b.subarray(0, 6))).toThrow(/f\.idx: truncated IDX header/);
    expect(() => parseIdx(new Uint8Array(2), 'tiny', 1)).toThrow(/tiny: not an IDX file/);
  });

  it('reports corrupt gzip data with the file name', async () => {
    const path = join(root, 'corrupt.gz');
    await writeFile(path, Uint8Array.from([0x1f, 0x8b, 8, 0, 1, 2, 3]));
    await expect(readIdxFile(path)).rejects.toThrow(/corrupt\.gz: gzip data is corrupt/);
  });
});

describe('IDX datasets', () => {
  it('loads mnist-idx from data.dir, mixing gzipped and plain files, normalised', async () => {
    const dir = join(root, 'mixed');
    const raw = await writeIdxSet(dir, 12, 5, (f) => f.startsWith('train'));
    const { train, test } = await loadDataset({ name: 'mnist-idx', dir, searchDefaults: false });
    expect(train.shape).toEqual([28, 28, 1]);
    expect(train.y.length).toBe(12);
    expect(test.y.length).toBe(5);
    expect(Array.from(train.y)).toEqual(Array.from(raw.trainY));
    expect(Array.from(test.y)).toEqual(Array.from(raw.testY));
    const { mean, std } = MNIST_IDX_NORMALIZATION;
    for (const k of [0, 100, 28 * 28 * 12 - 1]) {
      expect(train.x[k]).toBeCloseTo((raw.trainPx[k]! / 255 - mean[0]!) / std[0]!, 5);
    }
    expect(test.x[17]).toBeCloseTo((raw.testPx[17]! / 255 - mean[0]!) / std[0]!, 5);
  });

  it('finds files in the dataset subfolder of data.dir', async () => {
    await writeIdxSet(join(root, 'parent', 'fashion-mnist'), 4, 2, () => true);
    const { train } = await loadDataset({
      name: 'fashion-mnist',
      dir: join(root, 'parent'),
      searchDefaults: false,
    });
    expect(train.y.length).toBe(4);
    expect(train.name).toBe('fashion-mnist');
  });

  it('rejects label files whose count differs from the images, naming both files', async () => {
    const dir = join(root, 'mismatch');
    await writeIdxSet(dir, 6, 2, () => false);
    await writeFile(join(dir, 'train-labels-idx1-ubyte'), encodeIdx([5], new Uint8Array(5)));
    await expect(loadDataset({ name: 'mnist-idx', dir, searchDefaults: false })).rejects.toThrow(
      /train-labels-idx1-ubyte: has 5 labels but .*train-images-idx3-ubyte has 6 images/,
    );
  });

  it('rejects labels outside 0..9', async () => {
    const dir = join(root, 'badlabel');
    await writeIdxSet(dir, 3, 2, () => false);
    await writeFile(join(dir, 't10k-labels-idx1-ubyte'), encodeIdx([2], Uint8Array.from([1, 12])));
    await expect(loadDataset({ name: 'mnist-idx', dir, searchDefaults: false })).rejects.toThrow(
      /t10k-labels-idx1-ubyte: label 12 at index 1 is outside \[0, 10\)/,
    );
  });

  it('searches data.dir, ./data, ~/.cache/fedslr and the Debian folder, in that order', () => {
    expect(idxSearchDirs('fashion-mnist', { dir: '/some/where' })).toEqual([
      '/some/where',
      '/some/where/fashion-mnist',
      resolve('data', 'fashion-mnist'),
      join(homedir(), '.cache', 'fedslr', 'fashion-mnist'),
      '/usr/share/datasets/fashion-mnist',
    ]);
    expect(idxSearchDirs('mnist-idx')).toEqual([
      resolve('data', 'mnist'),
      join(homedir(), '.cache', 'fedslr', 'mnist'),
    ]);
  });

  it('names every place searched, what each lacked, and how to get the files', async () => {
    const partial = join(root, 'partial');
    await writeIdxSet(partial, 2, 2, () => true);
    await rm(join(partial, 't10k-images-idx3-ubyte.gz'));
    await rm(join(partial, 't10k-labels-idx1-ubyte.gz'));
    const err = await loadDataset({
      name: 'fashion-mnist',
      dir: partial,
      searchDefaults: false,
    }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DataNotFoundError);
    const msg = (err as Error).message;
    expect(msg).toContain(`${partial} (missing t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)`);
    expect(msg).toContain(`${join(partial, 'fashion-mnist')} (no such directory)`);
    expect(msg).toContain('apt-get install dataset-fashion-mnist');
    expect(msg).toContain('~/.cache/fedslr/fashion-mnist');
    expect((err as DataNotFoundError).searched).toEqual([partial, join(partial, 'fashion-mnist')]);
  });

  const defaultMnistDirs = idxSearchDirs('mnist-idx');
  it.skipIf(defaultMnistDirs.some((d) => existsSync(d)))(
    'lists the default locations in the error when nothing is found',
    async () => {
      const empty = join(root, 'empty');
      await mkdir(empty);
      const err = await loadDataset({ name: 'mnist-idx', dir: empty }).then(
        () => null,
        (e: unknown) => e as Error,
      );
      expect(err).toBeInstanceOf(DataNotFoundError);
      for (const d of [empty, ...defaultMnistDirs]) expect(err?.message).toContain(`${d} (`);
      expect(err?.message).toContain('https://storage.googleapis.com/cvdf-datasets/mnist/');
    },
  );
});
