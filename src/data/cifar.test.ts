import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../tensor/rng.js';
import { CIFAR10_NORMALIZATION, CIFAR100_NORMALIZATION, decodeCifar } from './cifar.js';
import { loadDataset } from './load.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fedslr-cifar-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Records with the given label bytes each followed by 3072 random pixel bytes. */
function records(labelBytes: number[][], rng: Rng): Uint8Array {
  const rec = labelBytes[0]!.length + 3072;
  const out = new Uint8Array(labelBytes.length * rec);
  labelBytes.forEach((lb, r) => {
    out.set(lb, r * rec);
    for (let p = 0; p < 3072; p++) out[r * rec + lb.length + p] = rng.int(256);
  });
  return out;
}

/** The normalised value the loader should give for record bytes `rec` at (row, col, channel). */
function expected(
  rec: Uint8Array,
  labelBytes: number,
  row: number,
  col: number,
  ch: number,
  norm: { mean: readonly number[]; std: readonly number[] },
): number {
  const v = rec[labelBytes + ch * 1024 + row * 32 + col]! / 255;
  return (v - norm.mean[ch]!) / norm.std[ch]!;
}

describe('CIFAR-10 binary', () => {
  it('reads five training batches and the test batch into NHWC, gzipped or not', async () => {
    const dir = join(root, 'cifar-10-batches-bin');
    await mkdir(dir);
    const rng = new Rng(5);
    const batches: Uint8Array[] = [];
    for (let b = 1; b <= 5; b++) {
      const bytes = records([[b], [(b + 3) % 10]], rng);
      batches.push(bytes);
      const name = `data_batch_${b}.bin`;
      if (b === 2) await writeFile(join(dir, `${name}.gz`), gzipSync(bytes));
      else await writeFile(join(dir, name), bytes);
    }
    const testBytes = records([[9], [0], [4]], rng);
    await writeFile(join(dir, 'test_batch.bin'), testBytes);

    const { train, test } = await loadDataset({
      name: 'cifar10',
      dir: root,
      searchDefaults: false,
    });
    expect(train.shape).toEqual([32, 32, 3]);
    expect(train.classes).toBe(10);
    expect(Array.from(train.y)).toEqual([1, 4, 2, 5, 3, 6, 4, 7, 5, 8]);
    expect(Array.from(test.y)).toEqual([9, 0, 4]);
    expect(train.x.length).toBe(10 * 3072);
    // Record 3 of the training set is the second record of batch 2 (the gzipped one).
    const rec = batches[1]!.subarray(3073, 2 * 3073);
    for (const [row, col, ch] of [
      [0, 0, 0],
      [5, 17, 1],
      [31, 31, 2],
    ] as const) {
      const got = train.x[3 * 3072 + (row * 32 + col) * 3 + ch]!;
      expect(got).toBeCloseTo(expected(rec, 1, row, col, ch, CIFAR10_NORMALIZATION), 5);
    }
  });

  it('rejects files that are not whole records, and bad labels, naming the file', () => {
    const rng = new Rng(1);
    const good = records([[3]], rng);
    expect(() =>
      decodeCifar('cifar10', [{ path: 'b.bin', bytes: good.subarray(0, 3000) }]),
    ).toThrow(/b\.bin: 3000 bytes is not a whole number of cifar10 records \(3073 bytes each\)/);
    expect(() => decodeCifar('cifar10', [{ path: 'c.bin', bytes: records([[10]], rng) }])).toThrow(
      /c\.bin: label 10 in record 0 is outside \[0, 10\)/,
    );
  });

  it('says where it looked and where to download the archive', async () => {
    await expect(
      loadDataset({ name: 'cifar10', dir: join(root, 'nothing'), searchDefaults: false }),
    ).rejects.toThrow(/https:\/\/www\.cs\.toronto\.edu\/~kriz\/cifar-10-binary\.tar\.gz/);
  });
});

describe('CIFAR-100 binary', () => {
  it('uses the fine labels (second byte) and 100 classes', async () => {
    const dir = join(root, 'c100');
    await mkdir(dir);
    const rng = new Rng(9);
    const trainBytes = records(
      [
        [1, 57],
        [19, 99],
        [0, 0],
      ],
      rng,
    );
    await writeFile(join(dir, 'train.bin'), trainBytes);
    await writeFile(join(dir, 'test.bin'), records([[4, 31]], rng));
    const { train, test } = await loadDataset({ name: 'cifar100', dir, searchDefaults: false });
    expect(train.classes).toBe(100);
    expect(Array.from(train.y)).toEqual([57, 99, 0]);
    expect(Array.from(test.y)).toEqual([31]);
    const rec = trainBytes.subarray(3074, 2 * 3074);
    const got = train.x[3072 + (10 * 32 + 20) * 3 + 2]!;
    expect(got).toBeCloseTo(expected(rec, 2, 10, 20, 2, CIFAR100_NORMALIZATION), 5);
  });

  it('rejects fine labels of 100 or more', () => {
    const bytes = records([[2, 100]], new Rng(2));
    expect(() => decodeCifar('cifar100', [{ path: 't.bin', bytes }])).toThrow(
      /t\.bin: label 100 in record 0 is outside \[0, 100\)/,
    );
  });
});
