/**
 * SCAFFOLD (Karimireddy et al. 2020). The server keeps the model x and the control variate c,
 * each client its own c_i (zero until first drawn). A drawn client gets x and c, runs K local
 * steps y <- y - lr (grad f_i(y) - c_i + c), takes option II's c_i+ = c_i - c + (x - y)/(K lr),
 * and uploads y and Delta c_i = c_i+ - c_i (the control variates travel in `extra`). The server
 * moves x <- x + lr_g * mean_S (y_i - x) and c <- c + (1/N) sum_S Delta c_i.
 */

import { z } from 'zod';
import { decodeParams } from '../codec/params.js';
import { denseParams } from '../codec/wire.js';
import { disposeParams, fromArrays, type ParamArrays, readArrays } from '../tensor/params.js';
import { addDecayedWeights, addLinear, chain } from '../train/transforms.js';
import { combine, type SetsState, setsCodec, sgd } from './common.js';
import { defaultsOf, describeAlgorithm } from './descriptor.js';
import type { Algorithm, AlgorithmContext, StateCodec } from './types.js';

const scaffoldSchema = z.strictObject({
  name: z.literal('scaffold'),
  /** Global step size eta_g (1: the new model is the mean of the uploads). */
  serverLr: z.number().positive().default(1),
});

export type ScaffoldOptions = Omit<z.output<typeof scaffoldSchema>, 'name'>;
export const SCAFFOLD_DEFAULTS = defaultsOf(scaffoldSchema);

const zeros = (a: ParamArrays): ParamArrays => combine([a], () => 0);

/** The server's model x and control variate c. */
export interface ScaffoldServer {
  global: ParamArrays;
  control: ParamArrays;
}

const serverCodec: StateCodec<ScaffoldServer> = {
  toRecord: (s) => ({ global: s.global, tensors: { control: s.control } }),
  fromRecord(record, where) {
    const control = record.tensors['control'];
    if (!record.global || !control)
      throw new Error(`${where}: the server state lacks its global model or control variate`);
    return { global: record.global, control };
  },
};

/** A client's control variate c_i (absent: zero, never drawn). */
export type ScaffoldClient = SetsState<never, 'control', never>;

export function scaffold(
  ctx: AlgorithmContext,
  opts: ScaffoldOptions = SCAFFOLD_DEFAULTS,
): Algorithm<ScaffoldServer, ScaffoldClient> {
  const N = ctx.numClients;
  return {
    name: 'scaffold',
    hasGlobal: true,
    hasPersonal: false,
    clientStateSets: 1,
    server: {
      codec: serverCodec,
      initServer: (init) => ({ global: init, control: zeros(init) }),
      download: (server, round) => ({
        round,
        params: denseParams(server.global),
        extra: { control: server.control },
      }),
      evalDownload: (server, round) => ({ round, params: denseParams(server.global) }),
      async aggregate(server, _round, uploads) {
        const x = server.global;
        const ys = uploads.map((u) => decodeParams(u.upload.params));
        const dcs = uploads.map((u) => {
          const dc = u.upload.extra?.['controlDelta'];
          if (!dc) throw new Error(`scaffold: client ${u.client}'s upload lacks 'controlDelta'`);
          return dc;
        });
        const S = ys.length;
        const g = opts.serverLr;
        const global = combine([x, ...ys], (v) => {
          let s = 0;
          for (let j = 1; j < v.length; j++) s += v[j]! - v[0]!;
          return v[0]! + (g * s) / S;
        });
        const control = combine([server.control, ...dcs], (v) => {
          let s = 0;
          for (let j = 1; j < v.length; j++) s += v[j]!;
          return v[0]! + s / N;
        });
        return { server: { global, control }, stats: {} };
      },
      global: (server) => server.global,
    },
    client: {
      codec: setsCodec({ optional: ['control'] }),
      initClient: () => ({}),
      async train(down, state, run) {
        const xArr = decodeParams(down.params);
        const c = down.extra?.['control'];
        if (!c)
          throw new Error("scaffold: the download lacks the server control variate 'control'");
        const ci = state.control ?? zeros(xArr);
        // The correction c - c_i enters the gradient as a linear term.
        const corr = fromArrays(combine([c, ci], (v) => v[0]! - v[1]!));
        const x = fromArrays(xArr);
        const r = await sgd(ctx, run, x, ctx.train.epochs, {
          transform: chain(addLinear(corr, 1), addDecayedWeights(ctx.train.weightDecay)),
        });
        const y = await readArrays(r.params);
        disposeParams(corr, x, r.params);
        const n = run.data.y.shape[0];
        const K = r.steps;
        // Option II: c_i+ = c_i - c + (x - y) / (K lr); no step taken leaves c_i as it was.
        const ciNext = K
          ? combine([ci, c, xArr, y], ([a, b, xv, yv]) => a! - b! + (xv! - yv!) / (K * run.lr))
          : ci;
        const controlDelta = combine([ciNext, ci], (v) => v[0]! - v[1]!);
        return {
          upload: {
            round: down.round,
            params: denseParams(y),
            extra: { controlDelta },
            numSamples: n,
            trainLoss: r.loss,
            trainAcc: r.acc,
          },
          state: { control: ciNext },
        };
      },
      personalModel: () => null,
    },
  };
}

export const scaffoldAlgorithm = describeAlgorithm({
  summary: 'SCAFFOLD, option II control variates (sent in both directions, counted in the bytes)',
  schema: scaffoldSchema,
  create: scaffold,
  sumOnly: () =>
    'its server needs only sums, but the control-variate deltas it uploads (extra) are not carried by the secure sum yet',
});
