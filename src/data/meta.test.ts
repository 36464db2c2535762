/**
 * A dataset's metadata, known without reading it, is what its loader gives: the sample shape,
 * the classes and the normalization (a served run's server builds its model from it).
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeCifar } from './cifar.js';
import { loadDataset } from './load.js';
import { datasetMeta } from './meta.js';
import type { Dataset } from './types.js';

const metaOf = (ds: Dataset) => ({
  shape: ds.shape,
  classes: ds.classes,
  normalization: ds.normalization,
});

describe('dataset metadata', () => {
  it("is the embedded mnist's and CIFAR's as their loaders decode them", async () => {
    expect(datasetMeta('mnist')).toEqual(metaOf((await loadDataset({ name: 'mnist' })).train));
    // One record of each CIFAR: its label bytes and 32 x 32 x 3 pixels.
    for (const [name, labelBytes] of [
      ['cifar10', 1],
      ['cifar100', 2],
    ] as const) {
      const bytes = new Uint8Array(labelBytes + 32 * 32 * 3);
      expect(datasetMeta(name)).toEqual(metaOf(decodeCifar(name, [{ path: name, bytes }])));
    }
  });

  const debianFashion = '/usr/share/datasets/fashion-mnist';
  it.skipIf(!existsSync(debianFashion))("is Fashion-MNIST's as its files are read", async () => {
    const { train } = await loadDataset({ name: 'fashion-mnist', dir: debianFashion });
    expect(datasetMeta('fashion-mnist')).toEqual(metaOf(train));
  });
});
