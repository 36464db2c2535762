/**
 * fedslr's isomorphic core, the package's main entry: tensors, linear algebra, models, training,
 * wire codecs, the algorithms, the protocol (messages and checks), the runtime (the client-fleet
 * seam, client hosts, tasks) and the secure-aggregation core. It runs in Node and in browsers: no `node:` import is reachable from it (test/entry.test.ts bundles it for the
 * browser). The simulator, data loaders, client stores, reports and CLI are in `fedslr/node`.
 */
export * from './algorithms/index.js';
export * from './codec/messages.js';
export * from './codec/params.js';
export * from './codec/state.js';
export * from './codec/wire.js';
export * from './codec/wire_size.js';
export * from './linalg/matrix_view.js';
export * from './linalg/prox.js';
export * from './linalg/svt.js';
export * from './linalg/svt_budget.js';
export * from './models/index.js';
export * from './protocol/checks.js';
export * from './protocol/messages.js';
export * from './runtime/client_loop.js';
export type * from './runtime/fleet.js';
export * from './runtime/host.js';
export * from './runtime/task.js';
export * from './secagg/index.js';
export * from './tensor/params.js';
export { Rng } from './tensor/rng.js';
export * from './train/index.js';
