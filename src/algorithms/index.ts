export * from './ditto.js';
export * from './fedavg.js';
export * from './fedslr.js';
export * from './local.js';
export * from './types.js';
