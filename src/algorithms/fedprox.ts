import { z } from 'zod';
import { addDecayedWeights, chain, proximalPull } from '../train/transforms.js';
import {
  averagingServer,
  type GlobalState,
  type NoState,
  noStateCodec,
  trainFromDownload,
} from './common.js';
import { defaultsOf, describeAlgorithm, sumOnlyUnlessWeighted } from './descriptor.js';
import type { Algorithm, AlgorithmContext } from './types.js';

const fedproxSchema = z.strictObject({
  name: z.literal('fedprox'),
  /** Weight of the proximal term (mu/2)||w - W^t||^2. */
  mu: z.number().nonnegative().default(0.01),
  /** Weight client models by their number of samples or equally. */
  weighted: z.boolean().default(true),
});

export type FedProxOptions = Omit<z.output<typeof fedproxSchema>, 'name'>;
export const FEDPROX_DEFAULTS = defaultsOf(fedproxSchema);

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
        upload: await trainFromDownload(ctx, down, run, (start) =>
          chain(proximalPull(opts.mu, start), addDecayedWeights(ctx.train.weightDecay)),
        ),
        state,
      }),
      personalModel: () => null,
    },
  };
}

export const fedproxAlgorithm = describeAlgorithm({
  summary: 'FedProx',
  schema: fedproxSchema,
  create: fedprox,
  sumOnly: sumOnlyUnlessWeighted,
});
