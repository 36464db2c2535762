/**
 * FedAvg with local fine-tuning: FedAvg trains the global model; before every evaluation each
 * client fine-tunes a copy of it on its own training data for a few epochs (same lr schedule,
 * batch size and weight decay), and is evaluated with the result.
 */
import { z } from 'zod';
import { disposeParams, fromArrays, readArrays } from '../tensor/params.js';
import { addDecayedWeights } from '../train/transforms.js';
import { type GlobalState, type NoState, sgd } from './common.js';
import { defaultsOf, describeAlgorithm, sumOnlyUnlessWeighted } from './descriptor.js';
import { fedavg } from './fedavg.js';
import type { Algorithm, AlgorithmContext } from './types.js';

const fedavgftSchema = z.strictObject({
  name: z.literal('fedavg-ft'),
  /** Fine-tuning epochs before evaluation. */
  ftEpochs: z.number().int().nonnegative().default(1),
  /** Weight client models by their number of samples or equally. */
  weighted: z.boolean().default(true),
});

export type FedAvgFtOptions = Omit<z.output<typeof fedavgftSchema>, 'name'>;
export const FEDAVGFT_DEFAULTS = defaultsOf(fedavgftSchema);

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
      async personalModel(_state, global, run) {
        if (!global) throw new Error('fedavg-ft: fine-tuning needs the global model');
        const start = fromArrays(global);
        const r = await sgd(ctx, run, start, opts.ftEpochs, {
          transform: addDecayedWeights(ctx.train.weightDecay),
        });
        const tuned = await readArrays(r.params);
        disposeParams(start, r.params);
        return tuned;
      },
    },
  };
}

export const fedavgftAlgorithm = describeAlgorithm({
  summary: 'FedAvg, then `ftEpochs` of local fine-tuning before each evaluation',
  schema: fedavgftSchema,
  create: fedavgft,
  sumOnly: sumOnlyUnlessWeighted,
});
