/**
 * FedPer (Arivazhagan et al. 2019): base layers shared, personalisation layers (the head) kept on
 * each client; both are trained jointly every round, and only the base is averaged.
 */
import { z } from 'zod';
import type { Params } from '../tensor/params.js';
import { addDecayedWeights } from '../train/transforms.js';
import type { GlobalState } from './common.js';
import { sgd } from './common.js';
import { defaultsOf, describeAlgorithm, sumOnlyUnlessWeighted } from './descriptor.js';
import { type SplitClient, type SplitTrainResult, splitAlgorithm } from './split.js';
import type { Algorithm, AlgorithmContext, ClientRun } from './types.js';

const fedperSchema = z.strictObject({
  name: z.literal('fedper'),
  /** How many of the model's last dense layers form the head. */
  headLayers: z.number().int().positive().default(1),
  /** Weight client models by their number of samples or equally. */
  weighted: z.boolean().default(true),
});

export type FedPerOptions = Omit<z.output<typeof fedperSchema>, 'name'>;
export const FEDPER_DEFAULTS = defaultsOf(fedperSchema);

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
export async function jointTrain(
  ctx: AlgorithmContext,
  shared: Params,
  local: Params,
  run: ClientRun,
): Promise<SplitTrainResult> {
  const r = await sgd(ctx, run, { ...shared, ...local }, ctx.train.epochs, {
    transform: addDecayedWeights(ctx.train.weightDecay),
  });
  const sharedOut = Object.fromEntries(Object.keys(shared).map((k) => [k, r.params[k]!]));
  const localOut = Object.fromEntries(Object.keys(local).map((k) => [k, r.params[k]!]));
  return { shared: sharedOut, local: localOut, loss: r.loss, acc: r.acc };
}

export const fedperAlgorithm = describeAlgorithm({
  summary: 'FedPer: personal head, joint training, body shared',
  schema: fedperSchema,
  create: fedper,
  sumOnly: sumOnlyUnlessWeighted,
});
