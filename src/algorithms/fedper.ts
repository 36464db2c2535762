/**
 * FedPer (Arivazhagan et al. 2019): base layers shared, personalisation layers (the head) kept on
 * each client; both are trained jointly every round, and only the base is averaged.
 */
import type { Params } from '../tensor/params.js';
import { addDecayedWeights } from '../train/transforms.js';
import type { GlobalState } from './common.js';
import { sgd } from './common.js';
import { type SplitClient, type SplitTrainResult, splitAlgorithm } from './split.js';
import type { Algorithm, AlgorithmContext, ClientRun } from './types.js';

export interface FedPerOptions {
  /** How many of the last dense layers form the personal head. */
  headLayers: number;
  weighted: boolean;
}

export const FEDPER_DEFAULTS: FedPerOptions = { headLayers: 1, weighted: true };

export function fedper(
  ctx: AlgorithmContext,
  opts: FedPerOptions = FEDPER_DEFAULTS,
): Algorithm<GlobalState, SplitClient> {
  return splitAlgorithm(ctx, {
    name: 'fedper',
    share: 'body',
    ...opts,
    train: (body, head, run) => jointTrain(ctx, body, head, run),
  });
}

/** E epochs of SGD on body and head together; returns them split again. */
export function jointTrain(
  ctx: AlgorithmContext,
  shared: Params,
  local: Params,
  run: ClientRun,
): SplitTrainResult {
  const r = sgd(ctx, run, { ...shared, ...local }, ctx.train.epochs, {
    transform: addDecayedWeights(ctx.train.weightDecay),
  });
  const sharedOut = Object.fromEntries(Object.keys(shared).map((k) => [k, r.params[k]!]));
  const localOut = Object.fromEntries(Object.keys(local).map((k) => [k, r.params[k]!]));
  return { shared: sharedOut, local: localOut, loss: r.loss, acc: r.acc };
}
