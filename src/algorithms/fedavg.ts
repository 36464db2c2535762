import { addDecayedWeights } from '../train/transforms.js';
import { averagingServer, trainFromDownload } from './common.js';
import type { Algorithm, AlgorithmContext } from './types.js';

export interface FedAvgOptions {
  /** Weight client models by their number of samples (FedAvg's rule) or equally. */
  weighted: boolean;
}

export const FEDAVG_DEFAULTS: FedAvgOptions = { weighted: true };

export function fedavg(ctx: AlgorithmContext, opts: FedAvgOptions = FEDAVG_DEFAULTS): Algorithm {
  return {
    name: 'fedavg',
    hasGlobal: true,
    hasPersonal: false,
    ...averagingServer(opts.weighted),
    initClient: () => ({ tensors: {} }),
    clientTrain: (down, state, run) => ({
      upload: trainFromDownload(ctx, down, run, () => addDecayedWeights(ctx.train.weightDecay)),
      state,
    }),
    personalModel: () => null,
  };
}
