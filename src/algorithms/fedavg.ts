import { addDecayedWeights } from '../train/transforms.js';
import { averagingServer, trainFromDownload } from './common.js';
import { denseDownload, downlinkBudgetServer } from './fedavg_downlink.js';
import type { Algorithm, AlgorithmContext } from './types.js';

export interface FedAvgOptions {
  /** Weight client models by their number of samples (FedAvg's rule) or equally. */
  weighted: boolean;
  /** Downlink budget, a fraction of the dense download: W's SVD is truncated to meet it. */
  downlink?: number;
  /** The same budget in bytes of one client's download. */
  downlinkBytes?: number;
}

export const FEDAVG_DEFAULTS: FedAvgOptions = { weighted: true };

export function fedavg(ctx: AlgorithmContext, opts: FedAvgOptions = FEDAVG_DEFAULTS): Algorithm {
  const budget =
    opts.downlinkBytes !== undefined
      ? { bytes: opts.downlinkBytes }
      : opts.downlink !== undefined
        ? { fraction: opts.downlink }
        : undefined;
  return {
    name: 'fedavg',
    hasGlobal: true,
    hasPersonal: false,
    ...(budget ? downlinkBudgetServer(ctx, opts.weighted, budget) : averagingServer(opts.weighted)),
    initClient: () => ({ tensors: {} }),
    clientTrain: (down, state, run) => ({
      upload: trainFromDownload(ctx, budget ? denseDownload(ctx, down) : down, run, () =>
        addDecayedWeights(ctx.train.weightDecay),
      ),
      state,
    }),
    personalModel: () => null,
  };
}
