/** Purely local training: every client trains its own model on its own data, nothing is shared. */
import { z } from 'zod';
import { disposeParams, fromArrays, readArrays } from '../tensor/params.js';
import { addDecayedWeights } from '../train/transforms.js';
import { type NoState, noStateCodec, type SetsState, setsCodec, sgd } from './common.js';
import { describeAlgorithm } from './descriptor.js';
import type { Algorithm, AlgorithmContext } from './types.js';

/** A client's own model. */
export type PersonalState = SetsState<'personal', never, never>;
export const personalCodec = setsCodec({ required: ['personal'] });

export function local(ctx: AlgorithmContext): Algorithm<NoState, PersonalState> {
  return {
    name: 'local',
    hasGlobal: false,
    hasPersonal: true,
    server: {
      codec: noStateCodec,
      initServer: () => ({}),
      download: (_server, round) => ({ round, params: {} }),
      evalDownload: (_server, round) => ({ round, params: {} }),
      aggregate: async (server) => ({ server, stats: {} }),
      global: () => undefined,
    },
    client: {
      codec: personalCodec,
      initClient: (_client, init) => ({ personal: init }),
      async train(down, state, run) {
        const start = fromArrays(state.personal);
        const r = await sgd(ctx, run, start, ctx.train.epochs, {
          transform: addDecayedWeights(ctx.train.weightDecay),
        });
        const personal = await readArrays(r.params);
        disposeParams(start, r.params);
        return {
          upload: {
            round: down.round,
            params: {},
            numSamples: run.data.y.shape[0],
            trainLoss: r.loss,
            trainAcc: r.acc,
          },
          state: { personal },
        };
      },
      personalModel: (state) => state.personal,
    },
  };
}

export const localAlgorithm = describeAlgorithm({
  summary: 'local training only',
  schema: z.strictObject({ name: z.literal('local') }),
  create: (ctx) => local(ctx),
  sumOnly: () => 'local training shares nothing: there is no sum to protect',
});
