/** Purely local training: every client trains its own model on its own data, nothing is shared. */
import { disposeParams, fromArrays, toArrays } from '../tensor/params.js';
import { addDecayedWeights } from '../train/transforms.js';
import { sgd } from './common.js';
import type { Algorithm, AlgorithmContext } from './types.js';

export function local(ctx: AlgorithmContext): Algorithm {
  return {
    name: 'local',
    hasGlobal: false,
    hasPersonal: true,
    initServer: () => ({ tensors: {} }),
    download: (_server, round) => ({ round, params: {} }),
    aggregate: (server) => ({ server, stats: {} }),
    initClient: (_client, init) => ({ tensors: { personal: init } }),
    clientTrain(_down, state, run) {
      const start = fromArrays(state.tensors['personal']!);
      const r = sgd(ctx, run, start, ctx.train.epochs, {
        transform: addDecayedWeights(ctx.train.weightDecay),
      });
      const personal = toArrays(r.params);
      disposeParams(start, r.params);
      return {
        upload: { params: {}, numSamples: run.data.y.shape[0], trainLoss: r.loss, trainAcc: r.acc },
        state: { tensors: { personal } },
      };
    },
    personalModel: (state) => state.tensors['personal']!,
  };
}
