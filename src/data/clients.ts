/**
 * Per-client data and the one-call set-up the simulator uses: partition the training set, give
 * every client its test set, and copy each client's samples out into contiguous arrays.
 */
import { Rng } from '../tensor/rng.js';
import {
  type DirichletOptions,
  dirichletPartition,
  iidPartition,
  type Partition,
  pathologicalPartition,
} from './partition.js';
import { readSplitFile } from './partitionFile.js';
import { DEFAULT_TEST_PER_CLIENT, proportionalTestSplit } from './testSplit.js';
import { type Dataset, type DatasetSplits, sampleSize } from './types.js';

/** A client's samples, copied out of a dataset: `size` images in NHWC order and their labels. */
export interface ClientSamples {
  readonly x: Float32Array;
  readonly y: Int32Array;
  readonly size: number;
}

export interface ClientData {
  readonly id: number;
  readonly train: ClientSamples;
  readonly test: ClientSamples;
  readonly shape: readonly [number, number, number];
  readonly classes: number;
}

/** Copies the samples at `indices` of `ds` into new contiguous arrays. */
export function gather(ds: Dataset, indices: ArrayLike<number>): ClientSamples {
  const d = sampleSize(ds);
  const n = indices.length;
  const x = new Float32Array(n * d);
  const y = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const i = indices[k]!;
    if (!(i >= 0 && i < ds.y.length)) {
      throw new Error(
        `gather: index ${i} is outside dataset '${ds.name}' (${ds.y.length} samples)`,
      );
    }
    x.set(ds.x.subarray(i * d, (i + 1) * d), k * d);
    y[k] = ds.y[i]!;
  }
  return { x, y, size: n };
}

/** Builds every client's data from per-client train and test indices. */
export function buildClientData(
  splits: DatasetSplits,
  trainIndices: readonly Int32Array[],
  testIndices: readonly Int32Array[],
): ClientData[] {
  if (trainIndices.length !== testIndices.length) {
    throw new Error(
      `buildClientData: ${trainIndices.length} train index lists but ${testIndices.length} test lists`,
    );
  }
  return trainIndices.map((idx, id) => ({
    id,
    train: gather(splits.train, idx),
    test: gather(splits.test, testIndices[id]!),
    shape: splits.train.shape,
    classes: splits.train.classes,
  }));
}

export type PartitionSpec =
  | { readonly kind: 'iid' }
  | ({ readonly kind: 'dirichlet' } & DirichletOptions)
  | { readonly kind: 'pathological'; readonly classesPerClient: number }
  | { readonly kind: 'file'; readonly path: string };

export interface FederateOptions {
  readonly clients: number;
  readonly seed: number;
  readonly partition: PartitionSpec;
  /** K of the evaluation protocol: test images per client (default 100). */
  readonly testPerClient?: number;
}

export interface FederatedData {
  readonly train: Dataset;
  readonly test: Dataset;
  readonly trainIndices: Partition;
  readonly testIndices: Partition;
  /** True when the test indices came from the split file rather than the proportional rule. */
  readonly testFromFile: boolean;
  readonly clients: ClientData[];
}

/** Key of the random streams used here: `Rng.derive(seed, DATA_STREAM, 0 | 1)`. */
export const DATA_STREAM = 0x64617461;

/** Splits the training set according to `spec` (not `file`, which needs I/O: see `federate`). */
export function partitionTrain(
  spec: Exclude<PartitionSpec, { kind: 'file' }>,
  train: Dataset,
  clients: number,
  rng: Rng,
): Partition {
  switch (spec.kind) {
    case 'iid':
      return iidPartition(train.y.length, clients, rng);
    case 'dirichlet':
      return dirichletPartition(train.y, train.classes, clients, spec, rng);
    case 'pathological':
      return pathologicalPartition(train.y, train.classes, clients, spec.classesPerClient, rng);
    default: {
      const kind: never = spec;
      throw new Error(`partition: unknown kind ${JSON.stringify(kind)}`);
    }
  }
}

/**
 * Partitions the training set over `clients`, draws each client's test set (or takes both from
 * a split file), and copies every client's data out. Same splits, options and seed give the same
 * result.
 */
export async function federate(
  splits: DatasetSplits,
  opts: FederateOptions,
): Promise<FederatedData> {
  const { train, test } = splits;
  const spec = opts.partition;
  let trainIndices: Partition;
  let fileTest: Partition | undefined;
  if (spec.kind === 'file') {
    const split = await readSplitFile(spec.path, {
      nTrain: train.y.length,
      nTest: test.y.length,
      clients: opts.clients,
    });
    trainIndices = split.train;
    fileTest = split.test;
  } else {
    trainIndices = partitionTrain(spec, train, opts.clients, Rng.derive(opts.seed, DATA_STREAM, 0));
  }
  const testIndices =
    fileTest ??
    proportionalTestSplit(
      train.y,
      trainIndices,
      test.y,
      train.classes,
      Rng.derive(opts.seed, DATA_STREAM, 1),
      opts.testPerClient ?? DEFAULT_TEST_PER_CLIENT,
    );
  return {
    train,
    test,
    trainIndices,
    testIndices,
    testFromFile: fileTest !== undefined,
    clients: buildClientData(splits, trainIndices, testIndices),
  };
}
