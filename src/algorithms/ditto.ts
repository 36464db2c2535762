/**
 * Ditto (Li et al. 2021): the global model is trained as in FedAvg; each client also keeps a
 * personal model v_i, trained every round it is drawn on f_i(v) + (lambda/2)||v - W^t||^2.
 */
import { z } from 'zod';
import { decodeParams } from '../codec/params.js';
import { denseParams } from '../codec/wire.js';
import { disposeParams, fromArrays, readArrays } from '../tensor/params.js';
import { addDecayedWeights, chain, proximalPull } from '../train/transforms.js';
import { averagingServer, type GlobalState, sgd } from './common.js';
import { defaultsOf, describeAlgorithm, sumOnlyUnlessWeighted } from './descriptor.js';
import { type PersonalState, personalCodec } from './local.js';
import type { Algorithm, AlgorithmContext } from './types.js';

const dittoSchema = z.strictObject({
  name: z.literal('ditto'),
  /** Strength of the pull of the personal model towards the global one. */
  lambda: z.number().nonnegative().default(0.1),
  /** Personal epochs per round (default: the global local epochs). */
  personalEpochs: z.number().int().nonnegative().optional(),
  /** Weight client models by their number of samples or equally. */
  weighted: z.boolean().default(true),
});

export type DittoOptions = Omit<z.output<typeof dittoSchema>, 'name'>;
export const DITTO_DEFAULTS = defaultsOf(dittoSchema);

export function ditto(
  ctx: AlgorithmContext,
  opts: DittoOptions = DITTO_DEFAULTS,
): Algorithm<GlobalState, PersonalState> {
  const wd = ctx.train.weightDecay;
  return {
    name: 'ditto',
    hasGlobal: true,
    hasPersonal: true,
    server: averagingServer(opts.weighted),
    client: {
      codec: personalCodec,
      initClient: (_client, init) => ({ personal: init }),
      async train(down, state, run) {
        const global = fromArrays(decodeParams(down.params));
        const g = await sgd(ctx, run, global, ctx.train.epochs, {
          transform: addDecayedWeights(wd),
        });
        const v0 = fromArrays(state.personal);
        const v = await sgd(ctx, run, v0, opts.personalEpochs ?? ctx.train.epochs, {
          transform: chain(proximalPull(opts.lambda, global), addDecayedWeights(wd)),
        });
        const upload = await readArrays(g.params);
        const personal = await readArrays(v.params);
        disposeParams(global, g.params, v0, v.params);
        return {
          upload: {
            round: down.round,
            params: denseParams(upload),
            numSamples: run.data.y.shape[0],
            trainLoss: g.loss,
            trainAcc: g.acc,
          },
          state: { personal },
        };
      },
      personalModel: (state) => state.personal,
    },
  };
}

export const dittoAlgorithm = describeAlgorithm({
  summary: 'Ditto: FedAvg + personal models pulled towards the global one',
  schema: dittoSchema,
  create: ditto,
  sumOnly: sumOnlyUnlessWeighted,
});
