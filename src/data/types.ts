/**
 * The in-memory dataset type shared by every loader, partitioner and the simulator.
 */

/** Per-channel normalisation applied to pixel values scaled to [0, 1]: x = (v - mean) / std. */
export interface Normalization {
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

/**
 * One split (train or test) of an image dataset.
 * `x` holds `N * h * w * c` normalised values in NHWC order; `y` holds `N` labels in
 * `[0, classes)`.
 */
export interface Dataset {
  readonly name: string;
  readonly x: Float32Array;
  readonly y: Int32Array;
  readonly shape: readonly [number, number, number];
  readonly classes: number;
  readonly normalization: Normalization;
}

export interface DatasetSplits {
  readonly train: Dataset;
  readonly test: Dataset;
  /** The directory the files were read from (absent for data embedded in a package). */
  readonly source?: string;
}

/** Number of samples in a dataset. */
export function datasetSize(ds: Dataset): number {
  return ds.y.length;
}

/** Values per sample (h * w * c). */
export function sampleSize(ds: Pick<Dataset, 'shape'>): number {
  return ds.shape[0] * ds.shape[1] * ds.shape[2];
}

/**
 * Normalises `n` samples of interleaved (HWC) pixel values in [0, 1] into a new Float32Array.
 * `pixel(i)` gives the raw value of flat element `i`, already scaled to [0, 1].
 */
export function normalizeInto(
  out: Float32Array,
  channels: number,
  norm: Normalization,
  pixel: (i: number) => number,
): Float32Array {
  if (norm.mean.length !== channels || norm.std.length !== channels) {
    throw new Error(
      `normalization: expected ${channels} mean/std values, got ${norm.mean.length}/${norm.std.length}`,
    );
  }
  const mean = Float64Array.from(norm.mean);
  const inv = Float64Array.from(norm.std, (s) => 1 / s);
  for (let i = 0; i < out.length; i++) {
    const ch = i % channels;
    out[i] = (pixel(i) - mean[ch]!) * inv[ch]!;
  }
  return out;
}
