/**
 * FedAvg (McMahan et al. 2017): clients run local SGD from the global model; the server takes the
 * sample-weighted mean (option: unweighted).
 */
import { disposeParams, fromArrays, toArrays } from '../tensor/params.js';
import { addDecayedWeights } from '../train/transforms.js';
import { averagingServer, decodeWire, denseWire, sgd } from './common.js';
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
    clientTrain(down, state, run) {
      const start = fromArrays(decodeWire(down.params));
      const r = sgd(ctx, run, start, ctx.train.epochs, {
        transform: addDecayedWeights(ctx.train.weightDecay),
      });
      const params = toArrays(r.params);
      disposeParams(start, r.params);
      return {
        upload: {
          params: denseWire(params),
          numSamples: run.data.y.shape[0],
          trainLoss: r.loss,
          trainAcc: r.acc,
        },
        state,
      };
    },
    personalModel: () => null,
  };
}
