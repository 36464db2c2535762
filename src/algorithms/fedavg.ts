import { z } from 'zod';
import { addDecayedWeights } from '../train/transforms.js';
import {
  averagingServer,
  type GlobalState,
  type NoState,
  noStateCodec,
  trainFromDownload,
} from './common.js';
import { defaultsOf, describeAlgorithm } from './descriptor.js';
import type { Algorithm, AlgorithmContext } from './types.js';

const fedavgSchema = z.strictObject({
  name: z.literal('fedavg'),
  /** Weight client models by their number of samples (FedAvg's rule) or equally. */
  weighted: z.boolean().default(true),
});

export type FedAvgOptions = Omit<z.output<typeof fedavgSchema>, 'name'>;
export const FEDAVG_DEFAULTS = defaultsOf(fedavgSchema);

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

export const fedavgAlgorithm = describeAlgorithm({
  summary: 'FedAvg (sample-weighted mean)',
  schema: fedavgSchema,
  create: fedavg,
});
