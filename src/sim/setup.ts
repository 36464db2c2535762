/** Turns a validated config into a ready simulation: backend, data, model, algorithm, init. */
import type { Algorithm, AlgorithmContext } from '../algorithms/index.js';
import {
  apfl,
  ditto,
  fedavg,
  fedavgft,
  feddyn,
  fedper,
  fedprox,
  fedrep,
  fedslr,
  lgfedavg,
  local,
  perfedavg,
  scaffold,
} from '../algorithms/index.js';
import { federate } from '../data/clients.js';
import { loadDataset } from '../data/load.js';
import { createModel } from '../models/index.js';
import { initBackend } from '../tensor/backend.js';
import { disposeParams, toArrays } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import type { AlgorithmConfig, RunConfig } from './config.js';
import type { Simulation } from './simulate.js';

/** Key of the model-initialisation stream: Rng.derive(seed, INIT_STREAM). */
export const INIT_STREAM = 0x696e6974;

export function createAlgorithm(cfg: AlgorithmConfig, ctx: AlgorithmContext): Algorithm {
  switch (cfg.name) {
    case 'fedslr':
      return fedslr(ctx, cfg);
    case 'fedavg':
      return fedavg(ctx, cfg);
    case 'ditto':
      return ditto(ctx, cfg);
    case 'local':
      return local(ctx);
    case 'scaffold':
      return scaffold(ctx, cfg);
    case 'fedprox':
      return fedprox(ctx, cfg);
    case 'feddyn':
      return feddyn(ctx, cfg);
    case 'apfl':
      return apfl(ctx, cfg);
    case 'fedrep':
      return fedrep(ctx, cfg);
    case 'fedper':
      return fedper(ctx, cfg);
    case 'lgfedavg':
      return lgfedavg(ctx, cfg);
    case 'perfedavg':
      return perfedavg(ctx, cfg);
    case 'fedavg-ft':
      return fedavgft(ctx, cfg);
  }
}

/** Errors from loading data and reading split files are about the user's input: exit code 2. */
async function asInputError<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw Object.assign(err as Error, { exitCode: 2 });
  }
}

export interface SetupInfo {
  backend: string;
  trainSamples: number;
  testSamples: number;
}

export async function setup(config: RunConfig): Promise<{ sim: Simulation; info: SetupInfo }> {
  const backend = await initBackend(config.train.backend);
  const splits = await asInputError(() =>
    loadDataset({ name: config.data.dataset, dir: config.data.dir }),
  );
  const fed = await asInputError(() =>
    federate(splits, {
      clients: config.clients.count,
      seed: config.seed,
      partition: config.data.partition,
      testPerClient: config.data.testPerClient,
    }),
  );
  const model = createModel(config.model.name, {
    inputShape: splits.train.shape,
    classes: splits.train.classes,
    hidden: config.model.hidden,
  });
  const initTensors = model.init(Rng.derive(config.seed, INIT_STREAM));
  const init = toArrays(initTensors);
  disposeParams(initTensors);
  const ctx: AlgorithmContext = { model, numClients: config.clients.count, train: config.train };
  const sim: Simulation = {
    config,
    model,
    algorithm: createAlgorithm(config.algorithm, ctx),
    clients: fed.clients,
    init,
  };
  return {
    sim,
    info: {
      backend,
      trainSamples: fed.clients.reduce((s, c) => s + c.train.size, 0),
      testSamples: fed.clients.reduce((s, c) => s + c.test.size, 0),
    },
  };
}
