import { addDecayedWeights, chain, proximalPull } from '../train/transforms.js';
import {
  averagingServer,
  type GlobalState,
  type NoState,
  noStateCodec,
  trainFromDownload,
} from './common.js';
import type { Algorithm, AlgorithmContext } from './types.js';

export interface FedProxOptions {
  /** Weight of the proximal term. */
  mu: number;
  /** Weight client models by their number of samples or equally. */
  weighted: boolean;
}

export const FEDPROX_DEFAULTS: FedProxOptions = { mu: 0.01, weighted: true };

export function fedprox(
  ctx: AlgorithmContext,
  opts: FedProxOptions = FEDPROX_DEFAULTS,
): Algorithm<GlobalState, NoState> {
  return {
    name: 'fedprox',
    hasGlobal: true,
    hasPersonal: false,
    server: averagingServer(opts.weighted),
    client: {
      codec: noStateCodec,
      initClient: () => ({}),
      train: async (down, state, run) => ({
        upload: trainFromDownload(ctx, down, run, (start) =>
          chain(proximalPull(opts.mu, start), addDecayedWeights(ctx.train.weightDecay)),
        ),
        state,
      }),
      personalModel: () => null,
    },
  };
}
