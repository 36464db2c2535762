/**
 * A network client's own data (`fedslr join --data FILE`), in one of three forms:
 *
 * - an IDX pair (idx.ts, gzipped or not): FILE holds the images, unsigned bytes [N, H, W] or
 *   [N, H, W, C]; the labels [N] are in the file of the same name with `labels` for its last
 *   `images` and `idx1` for `idx3` (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz),
 *   gzipped or not whichever the images are;
 * - a `.npy` pair (arrays.ts), named the same way (my-images.npy, my-labels.npy): images of
 *   uint8 (0..255) or float (0..1) pixels, labels of any integer type;
 * - one `.safetensors` file (arrays.ts) with the tensors `images` and `labels`, as for `.npy`.
 *
 * Pixels are scaled to [0, 1] and normalized as the run's dataset is (meta.ts), so the model sees
 * what it would see in a simulation. The images' [H, W, C] must be the model's input shape and
 * every label in [0, classes). The client's test set is `testFile` (any of the three forms) or,
 * without one, a held-out share of each class: floor(share * n_c) of the n_c samples of class c,
 * drawn from the stream (task seed, OWN_TEST_STREAM, client id).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Rng } from '../tensor/rng.js';
import { type NumericArray, parseNpy, parseSafetensors } from './arrays.js';
import { type ClientData, type ClientSamples, gather } from './clients.js';
import { readIdxFile } from './idx.js';
import { indicesByClass } from './partition.js';
import { type Dataset, type Normalization, normalizeInto } from './types.js';

/** Key of the held-out test draw: Rng.derive(seed, OWN_TEST_STREAM, client). */
export const OWN_TEST_STREAM = 0x6f776e74;

/** Share of each class held out for testing when a client has no test file. */
export const DEFAULT_TEST_SHARE = 0.2;

export interface OwnDataOptions {
  /** The images file of an IDX or .npy pair, or a .safetensors file. */
  file: string;
  /** The test set, in the same forms; without it a share of `file` is held out. */
  testFile?: string;
  /** Share of each class held out for testing (0 < share < 1) when there is no `testFile`. */
  testShare: number;
}

/** What the run expects of a client's data, and where its random draw comes from. */
export interface OwnDataTarget {
  client: number;
  seed: number;
  /** The model's input shape [h, w, c]. */
  shape: readonly [number, number, number];
  classes: number;
  normalization: Normalization;
}

/**
 * The labels file of an images file: the same name with `labels` for its last `images` (and
 * `idx1` for `idx3`, as in MNIST's names).
 */
export function labelsFileOf(file: string): string {
  const name = basename(file);
  const at = name.lastIndexOf('images');
  if (at < 0)
    throw new Error(
      `${file}: the images file's name must contain 'images', and its labels be the same name with 'labels' (e.g. train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz, or my-images.npy and my-labels.npy)`,
    );
  const labels = `${name.slice(0, at)}labels${name.slice(at + 'images'.length)}`;
  return join(dirname(file), labels.replace('idx3', 'idx1'));
}

async function readArray(path: string): Promise<NumericArray> {
  if (path.endsWith('.npy')) return parseNpy(new Uint8Array(await readFile(path)), path);
  const idx = await readIdxFile(path);
  return { dims: idx.dims, type: 'u1', length: idx.data.length, at: (i) => idx.data[i]! };
}

/** The images and labels arrays of a file (or pair), with the file each came from. */
async function readPair(
  file: string,
): Promise<{ images: NumericArray; labels: NumericArray; imagesFrom: string; labelsFrom: string }> {
  if (file.endsWith('.safetensors')) {
    const tensors = parseSafetensors(new Uint8Array(await readFile(file)), file);
    const get = (name: string) => {
      const t = tensors.get(name);
      if (!t)
        throw new Error(
          `${file}: no tensor '${name}' (it has ${[...tensors.keys()].join(', ') || 'none'}); expected 'images' and 'labels'`,
        );
      return t;
    };
    const from = (name: string) => `${file} '${name}'`;
    return {
      images: get('images'),
      labels: get('labels'),
      imagesFrom: from('images'),
      labelsFrom: from('labels'),
    };
  }
  const named = labelsFileOf(file);
  // Either of the pair may be gzipped (IDX).
  const other = named.endsWith('.gz') ? named.slice(0, -3) : `${named}.gz`;
  const labelsFile = [named, other].find((f) => existsSync(f));
  if (!labelsFile)
    throw new Error(
      `${file}: no labels file beside it (expected ${named}${named.endsWith('.npy') ? '' : ` or ${basename(other)}`})`,
    );
  return {
    images: await readArray(file),
    labels: await readArray(labelsFile),
    imagesFrom: file,
    labelsFrom: labelsFile,
  };
}

/** One file's (or pair's) samples as a dataset, checked against `target`. */
export async function readLabelled(file: string, target: OwnDataTarget): Promise<Dataset> {
  const { images, labels, imagesFrom, labelsFrom } = await readPair(file);
  const [h, w, c] = target.shape;
  const expected = `N x ${h} x ${w}${c === 1 ? ' (x 1)' : ` x ${c}`} images for the run's model`;
  const dims = images.dims.length === 3 ? [...images.dims, 1] : images.dims;
  if (dims.length !== 4 || dims[1] !== h || dims[2] !== w || dims[3] !== c)
    throw new Error(
      `${imagesFrom}: images of shape [${images.dims.join(', ')}]; expected ${expected}`,
    );
  const n = dims[0]!;
  if (n === 0) throw new Error(`${imagesFrom}: no images`);
  const scale = images.type === 'u1' ? 1 / 255 : images.type[0] === 'f' ? 1 : 0;
  if (!scale)
    throw new Error(
      `${imagesFrom}: pixels of type ${images.type}; expected unsigned bytes (0..255) or floats (0..1)`,
    );
  const labelDims =
    labels.dims.length === 2 && labels.dims[1] === 1 ? [labels.dims[0]] : labels.dims;
  if (labelDims.length !== 1 || labelDims[0] !== n)
    throw new Error(
      `${labelsFrom}: labels of shape [${labels.dims.join(', ')}]; expected [${n}], one per image`,
    );
  if (labels.type[0] === 'f')
    throw new Error(`${labelsFrom}: labels of type ${labels.type}; expected integers`);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const label = labels.at(i);
    if (!(label >= 0 && label < target.classes))
      throw new Error(
        `${labelsFrom}: label ${label} of sample ${i} is outside [0, ${target.classes}), the run's classes`,
      );
    y[i] = label;
  }
  const x = normalizeInto(new Float32Array(images.length), c, target.normalization, (i) => {
    const v = images.at(i) * scale;
    if (!Number.isFinite(v))
      throw new Error(`${imagesFrom}: value ${v} at index ${i} is not finite`);
    return v;
  });
  return {
    name: basename(file),
    x,
    y,
    shape: [h, w, c],
    classes: target.classes,
    normalization: target.normalization,
  };
}

/**
 * Splits `labels`' indices into train and a held-out test share of each class, drawn from `rng`;
 * both ascending.
 */
export function holdOut(
  labels: Int32Array,
  classes: number,
  share: number,
  rng: Rng,
): { train: Int32Array; test: Int32Array } {
  if (!(share > 0 && share < 1))
    throw new Error(`test share: expected 0 < share < 1, got ${share}`);
  const test: number[] = [];
  for (const pool of indicesByClass(labels, classes)) {
    const shuffled = Int32Array.from(pool);
    rng.shuffle(shuffled);
    test.push(...shuffled.subarray(0, Math.floor(share * pool.length)));
  }
  const held = new Set(test);
  const train = labels.map((_, i) => i).filter((i) => !held.has(i));
  return { train, test: Int32Array.from(test).sort() };
}

/** The client's data from its own files, shaped and split as `target` and `opts` say. */
export async function readOwnData(
  opts: OwnDataOptions,
  target: OwnDataTarget,
): Promise<ClientData> {
  const all = await readLabelled(opts.file, target);
  let train: ClientSamples;
  let test: ClientSamples;
  if (opts.testFile !== undefined) {
    const testSet = await readLabelled(opts.testFile, target);
    train = gather(
      all,
      all.y.map((_, i) => i),
    );
    test = gather(
      testSet,
      testSet.y.map((_, i) => i),
    );
  } else {
    const rng = Rng.derive(target.seed, OWN_TEST_STREAM, target.client);
    const split = holdOut(all.y, target.classes, opts.testShare, rng);
    if (split.train.length === 0)
      throw new Error(
        `${opts.file}: holding out ${opts.testShare} of each class leaves no training sample`,
      );
    train = gather(all, split.train);
    test = gather(all, split.test);
  }
  return { id: target.client, train, test, shape: all.shape, classes: target.classes };
}
