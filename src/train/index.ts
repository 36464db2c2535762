export * from './loop.js';
export * from './transforms.js';
