/**
 * FedRep (Collins et al. 2021): a shared representation (the body) and a personal head. Every
 * round a client first trains its head with the body frozen, then the body with the new head
 * frozen; only the body goes back to the server, which averages it.
 */
import { addDecayedWeights } from '../train/transforms.js';
import type { GlobalState } from './common.js';
import { sgd } from './common.js';
import { type SplitClient, splitAlgorithm } from './split.js';
import type { Algorithm, AlgorithmContext } from './types.js';

export interface FedRepOptions {
  /** How many of the last dense layers form the personal head. */
  headLayers: number;
  /** Epochs over the head per round (body frozen). */
  headEpochs: number;
  /** Epochs over the body per round (head frozen); default: the run's local epochs. */
  bodyEpochs?: number;
  weighted: boolean;
}

export const FEDREP_DEFAULTS: FedRepOptions = { headLayers: 1, headEpochs: 1, weighted: true };

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
    train(body, head, run) {
      const h = sgd(ctx, run, head, opts.headEpochs, {
        compose: (p) => ({ ...body, ...p }),
        transform,
      });
      const b = sgd(ctx, run, body, opts.bodyEpochs ?? ctx.train.epochs, {
        compose: (p) => ({ ...p, ...h.params }),
        transform,
      });
      return { shared: b.params, local: h.params, loss: b.loss, acc: b.acc };
    },
  });
}
