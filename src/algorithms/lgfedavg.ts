/**
 * LG-FedAvg (Liang et al. 2020): local representations, global head. Each client keeps its own
 * body; body and head are trained jointly, and only the head (the last dense layer(s)) is averaged.
 */

import type { GlobalState } from './common.js';
import { jointTrain } from './fedper.js';
import { type SplitClient, splitAlgorithm } from './split.js';
import type { Algorithm, AlgorithmContext } from './types.js';

export interface LgFedAvgOptions {
  /** How many of the last dense layers form the shared head. */
  headLayers: number;
  weighted: boolean;
}

export const LGFEDAVG_DEFAULTS: LgFedAvgOptions = { headLayers: 1, weighted: true };

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
