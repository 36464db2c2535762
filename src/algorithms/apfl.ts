/**
 * APFL (Deng et al. 2020, "Adaptive Personalized Federated Learning"). Each client keeps a
 * personal model v_i and a mixing weight alpha_i; its personalised model is
 * vbar = alpha_i v_i + (1 - alpha_i) w. On every mini-batch a drawn client takes, from the same
 * batch and the current iterates: w <- w - lr grad f(w); v <- v - lr alpha grad f(vbar);
 * alpha <- clip(alpha - lr <v - w, grad f(vbar)>, 0, 1) (adaptive, the paper's eq. 8), and
 * uploads w, which the server averages as FedAvg does. With `adaptive: false` alpha stays fixed.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { decodeParams } from '../codec/params.js';
import { denseParams } from '../codec/wire.js';
import type { Params } from '../tensor/params.js';
import { disposeParams, fromArrays, readArrays, zerosLike } from '../tensor/params.js';
import { makeStep } from '../train/loop.js';
import { addDecayedWeights, type ProxMap, proximalPull } from '../train/transforms.js';
import { clientBatches, EpochStats, gatherBatch } from './batches.js';
import { averagingServer, combine, type GlobalState, type SetsState, setsCodec } from './common.js';
import { defaultsOf, describeAlgorithm, sumOnlyUnlessWeighted } from './descriptor.js';
import type { Algorithm, AlgorithmContext } from './types.js';

const apflSchema = z.strictObject({
  name: z.literal('apfl'),
  /** Initial (or, with adaptive false, fixed) mixing weight of the personal model. */
  alpha: z.number().min(0).max(1).default(0.25),
  /** Learn alpha per client by gradient descent (the paper's adaptive APFL). */
  adaptive: z.boolean().default(true),
  /** Weight client models by their number of samples or equally. */
  weighted: z.boolean().default(true),
});

export type ApflOptions = Omit<z.output<typeof apflSchema>, 'name'>;
export const APFL_DEFAULTS = defaultsOf(apflSchema);

/** Name of the mixing weight among the trainable tensors (never a model parameter name). */
const ALPHA = '#alpha';

const clipAlpha: ProxMap = {
  name: 'clipAlpha',
  apply: (p) => ({ ...p, [ALPHA]: tf.clipByValue(p[ALPHA]!, 0, 1) }),
};

/** A client's personal model v_i and its mixing weight alpha_i. */
export type ApflState = SetsState<'personal', never, 'alpha'>;

export function apfl(
  ctx: AlgorithmContext,
  opts: ApflOptions = APFL_DEFAULTS,
): Algorithm<GlobalState, ApflState> {
  if (!(opts.alpha >= 0 && opts.alpha <= 1))
    throw new Error(`apfl alpha: expected a number in [0, 1], got ${opts.alpha}`);
  const { model } = ctx;
  const wd = ctx.train.weightDecay;
  const names = model.spec.map((p) => p.name);
  return {
    name: 'apfl',
    hasGlobal: true,
    hasPersonal: true,
    clientStateSets: 1,
    server: averagingServer(opts.weighted),
    client: {
      codec: setsCodec({ required: ['personal'], scalars: ['alpha'] }),
      initClient: (_client, init) => ({ personal: init, alpha: opts.alpha }),
      async train(down, state, run) {
        const w0 = fromArrays(decodeParams(down.params));
        const v0 = fromArrays(state.personal);
        const zeros = zerosLike(v0);
        let w = w0;
        let v = v0;
        let alpha = tf.scalar(opts.adaptive ? state.alpha : opts.alpha);
        const stepW = makeStep({ model, transform: addDecayedWeights(wd) });
        // vbar from the trainable v (and alpha, when adaptive) and the current w, held constant.
        const stepV = makeStep({
          model,
          compose: (p) => {
            const a = opts.adaptive ? p[ALPHA]! : alpha;
            const out: Params = {};
            for (const k of names) out[k] = tf.add(tf.mul(p[k]!, a), tf.mul(w[k]!, tf.sub(1, a)));
            return out;
          },
          // Weight decay on v only (zero anchor), not on alpha.
          transform: proximalPull(wd, zeros),
          prox: opts.adaptive ? clipAlpha : undefined,
        });
        const stats = new EpochStats();
        const n = run.data.y.shape[0];
        for (const epoch of clientBatches(ctx, run, ctx.train.epochs)) {
          stats.newEpoch();
          for (const idx of epoch) {
            const b = gatherBatch(run.data, idx);
            const rv = stepV(opts.adaptive ? { ...v, [ALPHA]: alpha } : v, b.x, b.y, run.lr);
            tf.dispose([rv.lossSum, rv.correct]);
            const rw = stepW(w, b.x, b.y, run.lr);
            stats.add(rw.lossSum, rw.correct, idx.length);
            tf.dispose([b.x, b.y]);
            if (v !== v0) disposeParams(v);
            if (w !== w0) disposeParams(w);
            if (opts.adaptive) {
              alpha.dispose();
              const { [ALPHA]: a, ...rest } = rv.params;
              alpha = a as tf.Scalar;
              v = rest;
            } else {
              v = rv.params;
            }
            w = rw.params;
          }
        }
        const upload = await readArrays(w);
        const personal = await readArrays(v);
        const alphaNext = opts.adaptive ? (await alpha.data())[0]! : opts.alpha;
        disposeParams(w0, v0, zeros, w === w0 ? undefined : w, v === v0 ? undefined : v);
        alpha.dispose();
        const { loss, acc } = await stats.result();
        return {
          upload: {
            round: down.round,
            params: denseParams(upload),
            numSamples: n,
            trainLoss: loss,
            trainAcc: acc,
          },
          state: { personal, alpha: alphaNext },
        };
      },
      personalModel(state, global) {
        if (!global) throw new Error('apfl: the personal model needs the global model');
        const a = state.alpha;
        return combine([state.personal, global], (x) => a * x[0]! + (1 - a) * x[1]!);
      },
    },
  };
}

export const apflAlgorithm = describeAlgorithm({
  summary:
    'APFL: personal model alpha v + (1 - alpha) w, alpha learnt per client unless `adaptive: false`',
  schema: apflSchema,
  create: apfl,
  sumOnly: sumOnlyUnlessWeighted,
});
