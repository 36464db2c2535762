/**
 * Data layer: datasets, partitioners, per-client test splits and client views.
 */
export * from './arrays.js';
export * from './cifar.js';
export * from './clients.js';
export * from './idx.js';
export * from './idxDatasets.js';
export * from './load.js';
export * from './locate.js';
export * from './meta.js';
export * from './mnist.js';
export * from './own.js';
export * from './partition.js';
export * from './partitionFile.js';
export * from './stats.js';
export * from './testSplit.js';
export * from './types.js';
