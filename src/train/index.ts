export * from './batches.js';
export * from './loop.js';
export * from './transforms.js';
