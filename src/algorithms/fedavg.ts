import { z } from 'zod';
import { addDecayedWeights } from '../train/transforms.js';
import {
  averagingServer,
  type GlobalState,
  type NoState,
  noStateCodec,
  trainFromDownload,
} from './common.js';
import { defaultsOf, describeAlgorithm, sumOnlyUnlessWeighted } from './descriptor.js';
import { type BudgetedGlobal, denseDownload, downlinkBudgetServer } from './fedavg_downlink.js';
import type { Algorithm, AlgorithmContext, ServerPart } from './types.js';

const fedavgSchema = z
  .strictObject({
    name: z.literal('fedavg'),
    /** Weight client models by their number of samples (FedAvg's rule) or equally. */
    weighted: z.boolean().default(true),
    /** Downlink budget, a fraction of the dense download: W's SVD is truncated to meet it. */
    downlink: z.number().gt(0).lte(1).optional(),
    /** The same budget in bytes of one client's download. */
    downlinkBytes: z.number().int().positive().optional(),
  })
  .refine((v) => v.downlink === undefined || v.downlinkBytes === undefined, {
    path: ['downlinkBytes'],
    message: 'give downlink (a fraction) or downlinkBytes, not both',
  });

export type FedAvgOptions = Omit<z.output<typeof fedavgSchema>, 'name'>;
export const FEDAVG_DEFAULTS = defaultsOf(fedavgSchema);

export function fedavg(
  ctx: AlgorithmContext,
  opts: Partial<FedAvgOptions> = FEDAVG_DEFAULTS,
): Algorithm<GlobalState | BudgetedGlobal, NoState> {
  const { weighted, downlink, downlinkBytes } = { ...FEDAVG_DEFAULTS, ...opts };
  const budget =
    downlinkBytes !== undefined
      ? { bytes: downlinkBytes }
      : downlink !== undefined
        ? { fraction: downlink }
        : undefined;
  return {
    name: 'fedavg',
    hasGlobal: true,
    hasPersonal: false,
    // Both parts' states are a GlobalState (the budgeted one adds factors and hints).
    server: (budget
      ? downlinkBudgetServer(ctx, weighted, budget)
      : averagingServer(weighted)) as ServerPart<GlobalState | BudgetedGlobal>,
    client: {
      codec: noStateCodec,
      initClient: () => ({}),
      train: async (down, state, run) => ({
        upload: await trainFromDownload(ctx, budget ? denseDownload(ctx, down) : down, run, () =>
          addDecayedWeights(ctx.train.weightDecay),
        ),
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
  sumOnly: sumOnlyUnlessWeighted,
});
