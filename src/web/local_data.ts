/**
 * A browser client's own data: an IDX pair (images and labels, gzipped or plain) a person picks.
 *
 * Pixels are scaled to [0, 1] and normalised with the mean and standard deviation of these
 * images (the page has no dataset-wide statistics; the server's demo shards use the dataset's).
 * The test set is `testCount` samples held out by a shuffle seeded with (task seed, client), the
 * rest is the training set, so the same files give the same split on every reload.
 */
import type { ClientData, ClientSamples } from '../data/clients.js';
import { isGzip, parseIdx } from '../data/idx_format.js';
import { Rng } from '../tensor/rng.js';

/** Key of the held-out split's stream: Rng.derive(seed, LOCAL_SPLIT_STREAM, client). */
export const LOCAL_SPLIT_STREAM = 0x6c6f6361;

export interface LocalFile {
  name: string;
  bytes: ArrayBuffer;
}

async function gunzipped(file: LocalFile): Promise<Uint8Array> {
  const raw = new Uint8Array(file.bytes);
  if (!isGzip(raw)) return raw;
  try {
    const stream = new Blob([raw]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (err) {
    throw new Error(`${file.name}: gzip data is corrupt (${(err as Error).message})`);
  }
}

export interface LocalDataOptions {
  client: number;
  seed: number;
  /** [height, width, channels] the run's model takes. */
  inputShape: readonly [number, number, number];
  classes: number;
  testCount: number;
}

/** The client's samples from an IDX images file and an IDX labels file. */
export async function localIdxData(
  images: LocalFile,
  labels: LocalFile,
  opts: LocalDataOptions,
): Promise<ClientData> {
  const img = parseIdx(await gunzipped(images), images.name);
  const lab = parseIdx(await gunzipped(labels), labels.name, 1);
  const [n, h, w, c = 1] = img.dims;
  const [H, W, C] = opts.inputShape;
  if (img.dims.length < 3 || img.dims.length > 4 || h !== H || w !== W || c !== C)
    throw new Error(
      `${images.name}: images of [${img.dims.slice(1).join(', ')}]; this run's model takes [${H}, ${W}${C === 1 ? '' : `, ${C}`}]`,
    );
  if (lab.dims[0] !== n)
    throw new Error(`${labels.name}: ${lab.dims[0]} labels for the ${n} images of ${images.name}`);
  const bad = lab.data.findIndex((l) => l >= opts.classes);
  if (bad >= 0)
    throw new Error(
      `${labels.name}: label ${lab.data[bad]} at index ${bad} is not one of this run's ${opts.classes} classes`,
    );
  return splitSamples(img.data, lab.data, [h, w, c], opts, images.name);
}

/**
 * The client's samples from `n` images of pixels in [0, 255] (`px`, [n, h, w, c] row-major) and
 * their labels: scaled to [0, 1] and normalised with these pixels' own mean and standard
 * deviation, a seeded `testCount` (at most a fifth) held out as the test set.
 */
export function splitSamples(
  px: ArrayLike<number>,
  labels: ArrayLike<number>,
  shape: [number, number, number],
  opts: LocalDataOptions,
  what: string,
): ClientData {
  const n = labels.length;
  const testCount = Math.min(opts.testCount, Math.floor(n / 5));
  if (n - testCount < 1) throw new Error(`${what}: ${n} images are too few to train on`);
  let mean = 0;
  for (let i = 0; i < px.length; i++) mean += px[i]! / 255;
  mean /= px.length;
  let sq = 0;
  for (let i = 0; i < px.length; i++) sq += (px[i]! / 255 - mean) ** 2;
  const std = Math.sqrt(sq / px.length) || 1;
  const order = Rng.derive(opts.seed, LOCAL_SPLIT_STREAM, opts.client).permutation(n);
  const d = shape[0] * shape[1] * shape[2];
  const take = (idx: ArrayLike<number>): ClientSamples => {
    const x = new Float32Array(idx.length * d);
    const y = new Int32Array(idx.length);
    for (let k = 0; k < idx.length; k++) {
      const i = idx[k]!;
      for (let j = 0; j < d; j++) x[k * d + j] = (px[i * d + j]! / 255 - mean) / std;
      y[k] = labels[i]!;
    }
    return { x, y, size: idx.length };
  };
  return {
    id: opts.client,
    shape,
    classes: opts.classes,
    test: take(order.slice(0, testCount)),
    train: take(order.slice(testCount)),
  };
}
