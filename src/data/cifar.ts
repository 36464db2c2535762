/**
 * CIFAR-10 and CIFAR-100 in their official binary format (the "binary version" archives from
 * https://www.cs.toronto.edu/~kriz/cifar.html, extracted).
 *
 * - `cifar10`: `cifar-10-batches-bin/data_batch_1.bin` ... `data_batch_5.bin` and `test_batch.bin`;
 *   each record is 1 label byte then 3072 pixel bytes.
 * - `cifar100`: `cifar-100-binary/train.bin` and `test.bin`; each record is a coarse label byte, a
 *   fine label byte, then 3072 pixel bytes. We use the 100 fine labels.
 *
 * Pixels are stored channel-major (1024 red, 1024 green, 1024 blue, each 32x32 row-major); we
 * convert to NHWC. Files may also be gzipped (`.bin.gz`).
 */

import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { isGzip } from './idx.js';
import { type FileWanted, locateFiles, type SearchOptions, searchDirs, withGz } from './locate.js';
import { type Dataset, type DatasetSplits, type Normalization, normalizeInto } from './types.js';

const SIDE = 32;
const PLANE = SIDE * SIDE;
const PIXELS = 3 * PLANE;

/** Per-channel (R, G, B) mean and std of each training set's pixel values scaled to [0, 1]. */
export const CIFAR10_NORMALIZATION: Normalization = {
  mean: [0.4914, 0.4822, 0.4465],
  std: [0.247, 0.2435, 0.2616],
};
export const CIFAR100_NORMALIZATION: Normalization = {
  mean: [0.5071, 0.4865, 0.4409],
  std: [0.2673, 0.2564, 0.2762],
};

interface CifarInfo {
  readonly subdir: string;
  readonly classes: number;
  /** Bytes before the pixels in each record, and which of them is the label. */
  readonly labelBytes: number;
  readonly labelOffset: number;
  readonly trainFiles: readonly string[];
  readonly testFiles: readonly string[];
  readonly normalization: Normalization;
  readonly archive: string;
}

const CIFAR: Record<'cifar10' | 'cifar100', CifarInfo> = {
  cifar10: {
    subdir: 'cifar-10-batches-bin',
    classes: 10,
    labelBytes: 1,
    labelOffset: 0,
    trainFiles: [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`),
    testFiles: ['test_batch.bin'],
    normalization: CIFAR10_NORMALIZATION,
    archive: 'cifar-10-binary.tar.gz',
  },
  cifar100: {
    subdir: 'cifar-100-binary',
    classes: 100,
    labelBytes: 2,
    labelOffset: 1,
    trainFiles: ['train.bin'],
    testFiles: ['test.bin'],
    normalization: CIFAR100_NORMALIZATION,
    archive: 'cifar-100-binary.tar.gz',
  },
};

export type CifarName = keyof typeof CIFAR;

export function isCifarDataset(name: string): name is CifarName {
  return Object.hasOwn(CIFAR, name);
}

/** The directories searched for a CIFAR dataset, in order. */
export function cifarSearchDirs(name: CifarName, opts: SearchOptions = {}): string[] {
  return searchDirs(CIFAR[name].subdir, opts);
}

/**
 * Decodes CIFAR binary records into a Dataset. `files` are the decompressed file contents with
 * their paths (for errors).
 */
export function decodeCifar(
  name: CifarName,
  files: readonly { path: string; bytes: Uint8Array }[],
): Dataset {
  const info = CIFAR[name];
  const record = info.labelBytes + PIXELS;
  let n = 0;
  for (const f of files) {
    if (f.bytes.length === 0 || f.bytes.length % record !== 0) {
      throw new Error(
        `${f.path}: ${f.bytes.length} bytes is not a whole number of ${name} records ` +
          `(${record} bytes each)`,
      );
    }
    n += f.bytes.length / record;
  }
  const y = new Int32Array(n);
  const x = new Float32Array(n * PIXELS);
  let i = 0;
  for (const f of files) {
    const count = f.bytes.length / record;
    for (let r = 0; r < count; r++, i++) {
      const base = r * record;
      const label = f.bytes[base + info.labelOffset]!;
      if (label >= info.classes) {
        throw new Error(`${f.path}: label ${label} in record ${r} is outside [0, ${info.classes})`);
      }
      y[i] = label;
      const px = base + info.labelBytes;
      const out = i * PIXELS;
      for (let p = 0; p < PLANE; p++) {
        x[out + 3 * p] = f.bytes[px + p]!;
        x[out + 3 * p + 1] = f.bytes[px + PLANE + p]!;
        x[out + 3 * p + 2] = f.bytes[px + 2 * PLANE + p]!;
      }
    }
  }
  normalizeInto(x, 3, info.normalization, (k) => x[k]! / 255);
  return {
    name,
    x,
    y,
    shape: [SIDE, SIDE, 3],
    classes: info.classes,
    normalization: info.normalization,
  };
}

async function readMaybeGzip(path: string): Promise<Uint8Array> {
  const raw = new Uint8Array(await readFile(path));
  if (!isGzip(raw)) return raw;
  try {
    return new Uint8Array(gunzipSync(raw));
  } catch (e) {
    throw new Error(`${path}: gzip data is corrupt (${(e as Error).message})`);
  }
}

/** Loads a CIFAR dataset's official train and test splits. */
export async function loadCifar(name: CifarName, opts: SearchOptions = {}): Promise<DatasetSplits> {
  const info = CIFAR[name];
  const wanted: FileWanted[] = [...info.trainFiles, ...info.testFiles].map((f) => ({
    key: f,
    names: withGz(f),
  }));
  const howToGet =
    `To get them: download https://www.cs.toronto.edu/~kriz/${info.archive} and extract it ` +
    `into ~/.cache/fedslr/ (giving ~/.cache/fedslr/${info.subdir}/), or set data.dir.`;
  const paths = await locateFiles(name, wanted, cifarSearchDirs(name, opts), howToGet);
  const read = async (files: readonly string[]) =>
    Promise.all(
      files.map(async (f) => ({ path: paths[f]!, bytes: await readMaybeGzip(paths[f]!) })),
    );
  return {
    train: decodeCifar(name, await read(info.trainFiles)),
    test: decodeCifar(name, await read(info.testFiles)),
    source: dirname(paths[info.trainFiles[0]!]!),
  };
}
