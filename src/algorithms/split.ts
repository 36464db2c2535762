/**
 * Head/body splits of a model for FedRep, FedPer and LG-FedAvg: the head is the last dense
 * layer(s) of the parameter spec (weights and their biases), the body everything before.
 */

import { decodeParams } from '../codec/params.js';
import { denseParams } from '../codec/wire.js';
import type { ParamArrays, ParamSpec, Params } from '../tensor/params.js';
import { disposeParams, fromArrays, readArrays } from '../tensor/params.js';
import {
  type GlobalState,
  globalStateCodec,
  meanOfSum,
  type SetsState,
  setsCodec,
  weightedMean,
} from './common.js';
import type { Algorithm, AlgorithmContext, ClientRun } from './types.js';

/** A client's own part of a split model. */
export type SplitClient = SetsState<'local', never, never>;

const layerOf = (name: string): string => {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? name : name.slice(0, dot);
};

/** Names of the tensors of the last `layers` dense layers, in spec order. */
export function headNames(spec: ParamSpec, layers: number): string[] {
  const dense = [...new Set(spec.filter((p) => p.role === 'dense').map((p) => layerOf(p.name)))];
  if (!(Number.isInteger(layers) && layers >= 1 && layers <= dense.length))
    throw new Error(
      `headLayers: expected an integer from 1 to ${dense.length} (the model's dense layers: ${dense.join(', ')}), got ${layers}`,
    );
  const head = new Set(dense.slice(dense.length - layers));
  const names = spec.filter((p) => head.has(layerOf(p.name))).map((p) => p.name);
  if (names.length === spec.length)
    throw new Error(
      `headLayers: ${layers} leaves no body (the model has ${dense.length} dense layers)`,
    );
  return names;
}

/** The tensors of `set` named in `names` and the rest. */
export function splitSet(
  set: ParamArrays,
  names: readonly string[],
): { picked: ParamArrays; rest: ParamArrays } {
  const picked: ParamArrays = {};
  const rest: ParamArrays = {};
  for (const [k, v] of Object.entries(set)) (names.includes(k) ? picked : rest)[k] = v;
  return { picked, rest };
}

/** What one round of local training on a split model returns: both parts, trained. */
export interface SplitTrainResult {
  shared: Params;
  local: Params;
  loss: number;
  acc: number;
}

export interface SplitSpec {
  name: string;
  /** Which part the server averages and sends; the other stays on the client. */
  share: 'body' | 'head';
  headLayers: number;
  weighted: boolean;
  /** Local training from the received shared part and the client's own part (both borrowed). */
  train(shared: Params, local: Params, run: ClientRun): Promise<SplitTrainResult>;
}

/**
 * An algorithm whose model is split into a shared part (averaged by the server, FedAvg-style) and
 * a local part that never leaves the client; the personal model is the current shared part plus
 * the client's local part. There is no global model of its own to evaluate.
 */
export function splitAlgorithm(
  ctx: AlgorithmContext,
  s: SplitSpec,
): Algorithm<GlobalState, SplitClient> {
  const head = headNames(ctx.model.spec, s.headLayers);
  const sharedOf = (set: ParamArrays) => {
    const { picked, rest } = splitSet(set, head);
    return s.share === 'head' ? { shared: picked, local: rest } : { shared: rest, local: picked };
  };
  return {
    name: s.name,
    hasGlobal: false,
    hasPersonal: true,
    clientStateSets: 1,
    server: {
      codec: globalStateCodec,
      initServer: (init) => ({ global: sharedOf(init).shared }),
      download: (server, round) => ({ round, params: denseParams(server.global) }),
      evalDownload: (server, round) => ({ round, params: denseParams(server.global) }),
      async aggregate(_server, _round, uploads) {
        const sets = uploads.map((u) => decodeParams(u.upload.params));
        const weights = uploads.map((u) => (s.weighted ? u.upload.numSamples : 1));
        return { server: { global: weightedMean(sets, weights) }, stats: {} };
      },
      ...(s.weighted
        ? {}
        : {
            aggregateSum: async (_server, _round, total) => ({
              server: { global: meanOfSum(total) },
              stats: {},
            }),
          }),
      global: (server) => server.global,
    },
    client: {
      codec: setsCodec({ required: ['local'] }),
      initClient: (_client, init) => ({ local: sharedOf(init).local }),
      async train(down, state, run) {
        const shared = fromArrays(decodeParams(down.params));
        const local = fromArrays(state.local);
        const r = await s.train(shared, local, run);
        const upload = await readArrays(r.shared);
        const next = await readArrays(r.local);
        disposeParams(shared, local, r.shared, r.local);
        return {
          upload: {
            round: down.round,
            params: denseParams(upload),
            numSamples: run.data.y.shape[0],
            trainLoss: r.loss,
            trainAcc: r.acc,
          },
          state: { local: next },
        };
      },
      personalModel(state, global) {
        if (!global) throw new Error(`${s.name}: the personal model needs the shared part`);
        return { ...global, ...state.local };
      },
    },
  };
}
