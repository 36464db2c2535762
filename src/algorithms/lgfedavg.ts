/**
 * LG-FedAvg (Liang et al. 2020): local representations, global head. Each client keeps its own
 * body; body and head are trained jointly, and only the head (the last dense layer(s)) is averaged.
 */

import { z } from 'zod';
import type { GlobalState } from './common.js';
import { defaultsOf, describeAlgorithm, sumOnlyUnlessWeighted } from './descriptor.js';
import { jointTrain } from './fedper.js';
import { type SplitClient, splitAlgorithm } from './split.js';
import type { Algorithm, AlgorithmContext } from './types.js';

const lgfedavgSchema = z.strictObject({
  name: z.literal('lgfedavg'),
  /** How many of the model's last dense layers form the head. */
  headLayers: z.number().int().positive().default(1),
  /** Weight client models by their number of samples or equally. */
  weighted: z.boolean().default(true),
});

export type LgFedAvgOptions = Omit<z.output<typeof lgfedavgSchema>, 'name'>;
export const LGFEDAVG_DEFAULTS = defaultsOf(lgfedavgSchema);

export function lgfedavg(
  ctx: AlgorithmContext,
  opts: LgFedAvgOptions = LGFEDAVG_DEFAULTS,
): Algorithm<GlobalState, SplitClient> {
  return splitAlgorithm(ctx, {
    name: 'lgfedavg',
    share: 'head',
    ...opts,
    train: (head, body, run) => jointTrain(ctx, head, body, run),
  });
}

export const lgfedavgAlgorithm = describeAlgorithm({
  summary: 'LG-FedAvg: local body, shared head',
  schema: lgfedavgSchema,
  create: lgfedavg,
  sumOnly: sumOnlyUnlessWeighted,
});
