import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../tensor/rng.js';
import { dirichletPartition } from './partition.js';
import { parseSplit, readSplitFile, writeSplitFile } from './partitionFile.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fedslr-split-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const limits = { nTrain: 100, nTest: 20 };
const parse = (json: unknown, extra: Partial<{ clients: number }> = {}) =>
  parseSplit(json, { ...limits, ...extra }, 'split.json');
const toArrays = (parts: readonly Int32Array[] | undefined) => parts?.map((p) => Array.from(p));

describe('split files', () => {
  it('round-trips a generated partition with test sets exactly', async () => {
    const labels = Int32Array.from({ length: 100 }, (_, i) => i % 5);
    const train = dirichletPartition(labels, 5, 6, { alpha: 0.5, minSize: 3 }, new Rng(1));
    const test = train.map((_, c) => Int32Array.from([c, c + 1, 19]));
    const path = join(root, 'split.json');
    await writeSplitFile(path, { train, test });
    const back = await readSplitFile(path, { ...limits, clients: 6 });
    expect(toArrays(back.train)).toEqual(toArrays(train));
    expect(toArrays(back.test)).toEqual(toArrays(test));
    expect((await readdir(root)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('accepts a file without test sets and ignores other top-level keys', () => {
    const split = parse({ train: [[0, 5], [99]], note: 'mine', seed: 3 });
    expect(toArrays(split.train)).toEqual([[0, 5], [99]]);
    expect(split.test).toBeUndefined();
  });

  it('lets clients share indices', () => {
    expect(
      toArrays(
        parse({
          train: [
            [1, 2],
            [2, 3],
          ],
        }).train,
      ),
    ).toEqual([
      [1, 2],
      [2, 3],
    ]);
  });

  it.each([
    ['not an object', [[1]], /split\.json: expected a JSON object with "train"/],
    ['missing train', { test: [[1]] }, /split\.json: missing key "train"/],
    [
      'train not an array',
      { train: { a: 1 } },
      /"train" must be an array with one array of indices per client/,
    ],
    ['no clients', { train: [] }, /"train" lists no clients/],
    ['client not an array', { train: [[1], 5] }, /"train"\[1\] must be an array of indices/],
    ['empty client', { train: [[1], []] }, /"train"\[1\] is empty/],
    [
      'fractional index',
      { train: [[1, 2.5]] },
      /"train"\[0\]\[1\] must be an integer index, got 2\.5/,
    ],
    ['string index', { train: [['3']] }, /"train"\[0\]\[0\] must be an integer index, got "3"/],
    ['null index', { train: [[null]] }, /must be an integer index, got null/],
    ['negative index', { train: [[-1]] }, /"train"\[0\]\[0\] = -1 is out of range/],
    [
      'train index too large',
      { train: [[0], [100]] },
      /"train"\[1\]\[0\] = 100 is out of range: the train set has 100 samples \(indices 0\.\.99\)/,
    ],
    [
      'test index too large',
      { train: [[0]], test: [[20]] },
      /"test"\[0\]\[0\] = 20 is out of range: the test set has 20 samples/,
    ],
    ['duplicate in a client', { train: [[4, 7, 4]] }, /"train"\[0\] lists index 4 more than once/],
    [
      'duplicate in a test client',
      { train: [[1]], test: [[2, 2]] },
      /"test"\[0\] lists index 2 more than once/,
    ],
    [
      'test client count',
      { train: [[1], [2]], test: [[1]] },
      /"test" has 1 clients but "train" has 2/,
    ],
    ['test not an array', { train: [[1]], test: 'all' }, /"test" must be an array/],
  ])('rejects %s', (_, json, message) => {
    expect(() => parse(json)).toThrow(message);
  });

  it('rejects a client count that differs from the config', () => {
    expect(() => parse({ train: [[1], [2]] }, { clients: 3 })).toThrow(
      /split\.json: "train" has 2 clients but the config asks for 3/,
    );
  });

  it('names the file when it is missing or not JSON', async () => {
    const missing = join(root, 'nope.json');
    await expect(readSplitFile(missing, limits)).rejects.toThrow(
      new RegExp(`split file ${missing}: cannot read it \\(ENOENT\\)`),
    );
    const broken = join(root, 'broken.json');
    await writeFile(broken, '{"train": [[1,2]');
    await expect(readSplitFile(broken, limits)).rejects.toThrow(/broken\.json: not valid JSON/);
  });
});
