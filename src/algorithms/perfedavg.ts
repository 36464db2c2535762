/**
 * Per-FedAvg, first-order variant (Fallah et al. 2020). Clients train the meta-model w for the
 * personalised objective F_i(w) = f_i(w - alpha grad f_i(w)): on mini-batch D take the inner step
 * w~ = w - alpha grad f(w; D), then update w <- w - beta grad f(w~; D') with the next mini-batch
 * D' (the first-order approximation drops the Hessian term); beta is the round's lr. The server
 * averages w as FedAvg does. A client's personal model is w after `adaptSteps` inner steps
 * (alpha, one mini-batch each) on its own training data, taken at evaluation.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { decodeParams } from '../codec/params.js';
import { denseParams } from '../codec/wire.js';
import type { ParamArrays, Params } from '../tensor/params.js';
import { add, disposeParams, fromArrays, readArrays, sub } from '../tensor/params.js';
import { makeStep } from '../train/loop.js';
import { addDecayedWeights } from '../train/transforms.js';
import { clientBatches, EpochStats, gatherBatch } from './batches.js';
import { averagingServer, type GlobalState, type NoState, noStateCodec } from './common.js';
import { defaultsOf, describeAlgorithm, sumOnlyUnlessWeighted } from './descriptor.js';
import type { Algorithm, AlgorithmContext, ClientRun } from './types.js';

const perfedavgSchema = z.strictObject({
  name: z.literal('perfedavg'),
  /** Inner (adaptation) step size; default: the round's lr. */
  alpha: z.number().positive().optional(),
  /** Adaptation steps (one mini-batch each) that make the personal model at evaluation. */
  adaptSteps: z.number().int().nonnegative().default(1),
  /** Weight client models by their number of samples or equally. */
  weighted: z.boolean().default(true),
});

export type PerFedAvgOptions = Omit<z.output<typeof perfedavgSchema>, 'name'>;
export const PERFEDAVG_DEFAULTS = defaultsOf(perfedavgSchema);

export function perfedavg(
  ctx: AlgorithmContext,
  opts: PerFedAvgOptions = PERFEDAVG_DEFAULTS,
): Algorithm<GlobalState, NoState> {
  const { model } = ctx;
  const inner = makeStep({ model });
  const alphaOf = (run: ClientRun) => opts.alpha ?? run.lr;

  /** One inner step from w on the batch at idx; returns w~ (new tensors). */
  const adapt = (w: Params, run: ClientRun, idx: Int32Array): Params => {
    const b = gatherBatch(run.data, idx);
    const r = inner(w, b.x, b.y, alphaOf(run));
    tf.dispose([b.x, b.y, r.lossSum, r.correct]);
    return r.params;
  };

  return {
    name: 'perfedavg',
    hasGlobal: true,
    hasPersonal: true,
    server: averagingServer(opts.weighted),
    client: {
      codec: noStateCodec,
      initClient: () => ({}),
      async train(down, state, run) {
        const w0 = fromArrays(decodeParams(down.params));
        let w = w0;
        const stats = new EpochStats();
        const transform = addDecayedWeights(ctx.train.weightDecay);
        const n = run.data.y.shape[0];
        for (const epoch of clientBatches(ctx, run, ctx.train.epochs)) {
          stats.newEpoch();
          epoch.forEach((idx, j) => {
            const tilde = adapt(w, run, idx);
            const delta = sub(tilde, w);
            disposeParams(tilde);
            // grad of f(p + delta) at p = w is grad f(w~): the first-order meta-gradient.
            const outer = makeStep({ model, compose: (p) => add(p, delta), transform });
            const next = epoch[(j + 1) % epoch.length]!;
            const b = gatherBatch(run.data, next);
            const r = outer(w, b.x, b.y, run.lr);
            stats.add(r.lossSum, r.correct, next.length);
            tf.dispose([b.x, b.y]);
            disposeParams(delta);
            if (w !== w0) disposeParams(w);
            w = r.params;
          });
        }
        const upload = await readArrays(w);
        disposeParams(w0, w === w0 ? undefined : w);
        const { loss, acc } = await stats.result();
        return {
          upload: {
            round: down.round,
            params: denseParams(upload),
            numSamples: n,
            trainLoss: loss,
            trainAcc: acc,
          },
          state,
        };
      },
      async personalModel(_state, global, run): Promise<ParamArrays> {
        if (!global) throw new Error('perfedavg: the personal model needs the global model');
        const batches = clientBatches(ctx, run, 1)[0] ?? [];
        const w0 = fromArrays(global);
        let w = w0;
        for (let s = 0; s < opts.adaptSteps && batches.length; s++) {
          const next = adapt(w, run, batches[s % batches.length]!);
          if (w !== w0) disposeParams(w);
          w = next;
        }
        const out = await readArrays(w);
        disposeParams(w0, w === w0 ? undefined : w);
        return out;
      },
    },
  };
}

export const perfedavgAlgorithm = describeAlgorithm({
  summary:
    'Per-FedAvg (first-order MAML); personal model = `adaptSteps` steps of size alpha on local data at evaluation',
  schema: perfedavgSchema,
  create: perfedavg,
  sumOnly: sumOnlyUnlessWeighted,
});
