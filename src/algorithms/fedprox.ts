/**
 * FedProx (Li et al. 2020): FedAvg whose clients minimise f_i(w) + (mu/2)||w - W^t||^2, the
 * proximal term keeping local models near the round's global model.
 */
import { disposeParams, fromArrays, toArrays } from '../tensor/params.js';
import { addDecayedWeights, chain, proximalPull } from '../train/transforms.js';
import { averagingServer, decodeWire, denseWire, sgd } from './common.js';
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
    clientTrain(down, state, run) {
      const start = fromArrays(decodeWire(down.params));
      const r = sgd(ctx, run, start, ctx.train.epochs, {
        transform: chain(proximalPull(opts.mu, start), addDecayedWeights(ctx.train.weightDecay)),
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
