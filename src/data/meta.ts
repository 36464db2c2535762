/**
 * What fedslr knows of each named dataset without reading its files: a sample's shape [h, w, c],
 * the number of classes and the normalization its loader applies. A server that holds no data
 * builds its model from this; a client with its own files normalizes them the same way.
 */
import { CIFAR10_NORMALIZATION, CIFAR100_NORMALIZATION } from './cifar.js';
import { FASHION_MNIST_NORMALIZATION, MNIST_IDX_NORMALIZATION } from './idxDatasets.js';
import type { DatasetName } from './load.js';
import { MNIST_NORMALIZATION } from './mnist.js';
import type { Normalization } from './types.js';

export interface DatasetMeta {
  readonly shape: readonly [number, number, number];
  readonly classes: number;
  readonly normalization: Normalization;
}

const DATASET_META: Record<DatasetName, DatasetMeta> = {
  mnist: { shape: [28, 28, 1], classes: 10, normalization: MNIST_NORMALIZATION },
  'fashion-mnist': { shape: [28, 28, 1], classes: 10, normalization: FASHION_MNIST_NORMALIZATION },
  'mnist-idx': { shape: [28, 28, 1], classes: 10, normalization: MNIST_IDX_NORMALIZATION },
  cifar10: { shape: [32, 32, 3], classes: 10, normalization: CIFAR10_NORMALIZATION },
  cifar100: { shape: [32, 32, 3], classes: 100, normalization: CIFAR100_NORMALIZATION },
};

export function datasetMeta(name: DatasetName): DatasetMeta {
  return DATASET_META[name];
}
