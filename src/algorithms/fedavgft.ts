/**
 * FedAvg with local fine-tuning: FedAvg trains the global model; before every evaluation each
 * client fine-tunes a copy of it on its own training data for a few epochs (same lr schedule,
 * batch size and weight decay), and is evaluated with the result.
 */
import { disposeParams, fromArrays, toArrays } from '../tensor/params.js';
import { addDecayedWeights } from '../train/transforms.js';
import { type GlobalState, type NoState, sgd } from './common.js';
import { fedavg } from './fedavg.js';
import type { Algorithm, AlgorithmContext } from './types.js';

export interface FedAvgFtOptions {
  /** Fine-tuning epochs before evaluation. */
  ftEpochs: number;
  weighted: boolean;
}

export const FEDAVGFT_DEFAULTS: FedAvgFtOptions = { ftEpochs: 1, weighted: true };

export function fedavgft(
  ctx: AlgorithmContext,
  opts: FedAvgFtOptions = FEDAVGFT_DEFAULTS,
): Algorithm<GlobalState, NoState> {
  const base = fedavg(ctx, { weighted: opts.weighted });
  return {
    ...base,
    name: 'fedavg-ft',
    hasPersonal: true,
    client: {
      ...base.client,
      personalModel(_state, global, run) {
        if (!global) throw new Error('fedavg-ft: fine-tuning needs the global model');
        const start = fromArrays(global);
        const r = sgd(ctx, run, start, opts.ftEpochs, {
          transform: addDecayedWeights(ctx.train.weightDecay),
        });
        const tuned = toArrays(r.params);
        disposeParams(start, r.params);
        return tuned;
      },
    },
  };
}
