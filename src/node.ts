/**
 * fedslr for Node (`fedslr/node`): the isomorphic core plus the tfjs backends, data loaders, the
 * simulator (round loop, worker threads, client stores, checkpoints, run directories) and reports.
 */
export * from './data/index.js';
export * from './index.js';
export { writeReport, writeReportCsv } from './report/index.js';
export * from './sim/config.js';
export * from './sim/events.js';
export {
  type ExperimentEvent,
  type ExperimentOptions,
  resumeExperiment,
  runExperiment,
} from './sim/experiment.js';
export { InProcessFleet, type SimFleet } from './sim/fleet_local.js';
export { createFleet, WorkerPoolFleet } from './sim/pool.js';
export type { RunSummary } from './sim/rundir.js';
export { SecureAggregationFailed } from './sim/secure_round.js';
export { setup } from './sim/setup.js';
export { initialState, simulate, TooFewParticipants, TrainingDiverged } from './sim/simulate.js';
export { type ClientStore, DiskStore, MemoryStore } from './sim/store.js';
export { type BackendOptions, initBackend, wasmThreads } from './tensor/backend.js';
