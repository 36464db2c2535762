/**
 * A browser client's own IDX files: parsed (gzipped or not), normalised, split by a seeded
 * shuffle the same way on every reload; files that do not fit the run are refused by name.
 */
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { encodeIdx } from '../data/idx_format.js';
import { localIdxData } from './local_data.js';

const n = 30;
const pixels = Uint8Array.from({ length: n * 4 }, (_, i) => (i * 37) % 256);
const labels = Uint8Array.from({ length: n }, (_, i) => i % 3);
// A copy of exactly these bytes: zlib's Buffer is a view on a larger pooled ArrayBuffer whose
// uninitialised tail would follow the gzip data (and Buffer's slice() does not copy).
const file = (name: string, bytes: Uint8Array) => ({
  name,
  bytes: new Uint8Array(bytes).buffer as ArrayBuffer,
});
const images = file('images.idx', encodeIdx([n, 2, 2], pixels));
const labelsFile = file('labels.idx', encodeIdx([n], labels));
const opts = { client: 2, seed: 9, inputShape: [2, 2, 1] as const, classes: 3, testCount: 100 };

describe('local IDX data', () => {
  it('holds out a fifth (at most testCount) by a seeded shuffle, normalised to mean 0 and std 1', async () => {
    const d = await localIdxData(images, labelsFile, opts);
    expect([d.train.size, d.test.size]).toEqual([24, 6]);
    expect(d.shape).toEqual([2, 2, 1]);
    const all = [...d.train.x, ...d.test.x];
    const mean = all.reduce((a, b) => a + b, 0) / all.length;
    const std = Math.sqrt(all.reduce((a, b) => a + (b - mean) ** 2, 0) / all.length);
    expect(mean).toBeCloseTo(0, 5);
    expect(std).toBeCloseTo(1, 5);
    // Every sample is in exactly one split, with its own label.
    const key = (x: Float32Array, i: number) => Array.from(x.subarray(i * 4, i * 4 + 4)).join();
    const seen = new Map<string, number>();
    for (const s of [d.train, d.test])
      for (let i = 0; i < s.size; i++) seen.set(key(s.x, i), s.y[i]!);
    expect(seen.size).toBe(n);
    // The same files give the same split; gzipped ones too; another seed another split.
    const gz = await localIdxData(
      file('i.gz', gzipSync(encodeIdx([n, 2, 2], pixels))),
      labelsFile,
      opts,
    );
    expect(gz).toEqual(d);
    const other = await localIdxData(images, labelsFile, { ...opts, seed: 10 });
    expect(other.test.y).not.toEqual(d.test.y);
    expect((await localIdxData(images, labelsFile, { ...opts, testCount: 2 })).test.size).toBe(2);
  });

  it('refuses files that do not fit the run, naming the file', async () => {
    await expect(
      localIdxData(images, labelsFile, { ...opts, inputShape: [28, 28, 1] }),
    ).rejects.toThrow("images.idx: images of [2, 2]; this run's model takes [28, 28]");
    await expect(localIdxData(images, labelsFile, { ...opts, classes: 2 })).rejects.toThrow(
      "labels.idx: label 2 at index 2 is not one of this run's 2 classes",
    );
    const short = file('short.idx', encodeIdx([n - 1], labels.subarray(1)));
    await expect(localIdxData(images, short, opts)).rejects.toThrow(
      'short.idx: 29 labels for the 30 images of images.idx',
    );
    await expect(
      localIdxData(file('bad.gz', new Uint8Array([0x1f, 0x8b, 1])), labelsFile, opts),
    ).rejects.toThrow(/bad.gz: gzip data is corrupt/);
  });
});
