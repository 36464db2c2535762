/**
 * FedRep (Collins et al. 2021): a shared representation (the body) and a personal head. Every
 * round a client first trains its head with the body frozen, then the body with the new head
 * frozen; only the body goes back to the server, which averages it.
 */
import { z } from 'zod';
import { addDecayedWeights } from '../train/transforms.js';
import type { GlobalState } from './common.js';
import { sgd } from './common.js';
import { defaultsOf, describeAlgorithm, sumOnlyUnlessWeighted } from './descriptor.js';
import { type SplitClient, splitAlgorithm } from './split.js';
import type { Algorithm, AlgorithmContext } from './types.js';

const fedrepSchema = z.strictObject({
  name: z.literal('fedrep'),
  /** How many of the model's last dense layers form the head. */
  headLayers: z.number().int().positive().default(1),
  /** Epochs over the head per round (body frozen). */
  headEpochs: z.number().int().nonnegative().default(1),
  /** Epochs over the body per round (head frozen); default: the run's local epochs. */
  bodyEpochs: z.number().int().nonnegative().optional(),
  /** Weight client models by their number of samples or equally. */
  weighted: z.boolean().default(true),
});

export type FedRepOptions = Omit<z.output<typeof fedrepSchema>, 'name'>;
export const FEDREP_DEFAULTS = defaultsOf(fedrepSchema);

export function fedrep(
  ctx: AlgorithmContext,
  opts: FedRepOptions = FEDREP_DEFAULTS,
): Algorithm<GlobalState, SplitClient> {
  const transform = addDecayedWeights(ctx.train.weightDecay);
  return splitAlgorithm(ctx, {
    name: 'fedrep',
    share: 'body',
    headLayers: opts.headLayers,
    weighted: opts.weighted,
    async train(body, head, run) {
      const h = await sgd(ctx, run, head, opts.headEpochs, {
        compose: (p) => ({ ...body, ...p }),
        transform,
      });
      const b = await sgd(ctx, run, body, opts.bodyEpochs ?? ctx.train.epochs, {
        compose: (p) => ({ ...p, ...h.params }),
        transform,
      });
      return { shared: b.params, local: h.params, loss: b.loss, acc: b.acc };
    },
  });
}

export const fedrepAlgorithm = describeAlgorithm({
  summary:
    'FedRep: head epochs (body frozen), then body epochs (head frozen); only the body is shared',
  schema: fedrepSchema,
  create: fedrep,
  sumOnly: sumOnlyUnlessWeighted,
});
