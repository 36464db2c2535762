import { addDecayedWeights, chain, proximalPull } from '../train/transforms.js';
import { averagingServer, trainFromDownload } from './common.js';
import type { Algorithm, AlgorithmContext } from './types.js';

export interface FedProxOptions {
  /** Weight of the proximal term. */
  mu: number;
  /** Weight client models by their number of samples or equally. */
  weighted: boolean;
}

export const FEDPROX_DEFAULTS: FedProxOptions = { mu: 0.01, weighted: true };

export function fedprox(ctx: AlgorithmContext, opts: FedProxOptions = FEDPROX_DEFAULTS): Algorithm {
  return {
    name: 'fedprox',
    hasGlobal: true,
    hasPersonal: false,
    ...averagingServer(opts.weighted),
    initClient: () => ({ tensors: {} }),
    clientTrain: (down, state, run) => ({
      upload: trainFromDownload(ctx, down, run, (start) =>
        chain(proximalPull(opts.mu, start), addDecayedWeights(ctx.train.weightDecay)),
      ),
      state,
    }),
    personalModel: () => null,
  };
}
