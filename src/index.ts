/** The public API of fedslr. */
export * from './algorithms/index.js';
export * from './codec/wire.js';
export * from './data/index.js';
export * from './linalg/matrix_view.js';
export * from './linalg/prox.js';
export * from './linalg/svt.js';
export * from './models/index.js';
export { writeReport, writeReportCsv } from './report/index.js';
export * from './secagg/index.js';
export * from './sim/config.js';
export * from './sim/events.js';
export { runExperiment } from './sim/experiment.js';
export { setup } from './sim/setup.js';
export { initialState, simulate } from './sim/simulate.js';
export { type BackendOptions, initBackend, wasmThreads } from './tensor/backend.js';
export * from './tensor/params.js';
export { Rng } from './tensor/rng.js';
export * from './train/index.js';
