import { addDecayedWeights } from '../train/transforms.js';
import {
  averagingServer,
  type GlobalState,
  type NoState,
  noStateCodec,
  trainFromDownload,
} from './common.js';
import type { Algorithm, AlgorithmContext } from './types.js';

export interface FedAvgOptions {
  /** Weight client models by their number of samples (FedAvg's rule) or equally. */
  weighted: boolean;
}

export const FEDAVG_DEFAULTS: FedAvgOptions = { weighted: true };

export function fedavg(
  ctx: AlgorithmContext,
  opts: FedAvgOptions = FEDAVG_DEFAULTS,
): Algorithm<GlobalState, NoState> {
  return {
    name: 'fedavg',
    hasGlobal: true,
    hasPersonal: false,
    server: averagingServer(opts.weighted),
    client: {
      codec: noStateCodec,
      initClient: () => ({}),
      train: async (down, state, run) => ({
        upload: trainFromDownload(ctx, down, run, () => addDecayedWeights(ctx.train.weightDecay)),
        state,
      }),
      personalModel: () => null,
    },
  };
}
