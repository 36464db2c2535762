/**
 * Helpers the algorithms share: the local SGD pass, element-wise means, FedAvg's server part and
 * state codecs for states made of named tensor sets.
 */
import { decodeParams } from '../codec/params.js';
import { denseParams } from '../codec/wire.js';
import type { ParamArrays, Params } from '../tensor/params.js';
import { disposeParams, fromArrays, readArrays } from '../tensor/params.js';
import { trainLocal } from '../train/loop.js';
import type { GradTransform, ProxMap } from '../train/transforms.js';
import type {
  AlgorithmContext,
  ClientRun,
  Download,
  ServerPart,
  StateCodec,
  StateRecord,
  Upload,
  UploadSum,
} from './types.js';

/**
 * E epochs of SGD from `start` with the given gradient transform; returns the new tensors, the
 * last epoch's loss and accuracy, and the number of steps taken.
 */
export async function sgd(
  ctx: AlgorithmContext,
  run: ClientRun,
  start: Params,
  epochs: number,
  opts: { transform?: GradTransform; prox?: ProxMap; compose?: (p: Params) => Params } = {},
): Promise<{ params: Params; loss: number; acc: number; steps: number }> {
  const r = await trainLocal(start, {
    model: ctx.model,
    data: run.data,
    epochs,
    batchSize: ctx.train.batchSize,
    lastBatch: ctx.train.lastBatch,
    lr: run.lr,
    rng: run.rng,
    ...opts,
  });
  const last = r.epochs[r.epochs.length - 1];
  return {
    params: r.params,
    loss: last?.loss ?? Number.NaN,
    acc: last?.acc ?? Number.NaN,
    steps: r.steps,
  };
}

/** Element-wise map over matching arrays of several sets (plain float32 loops, no tensors). */
export function combine(
  sets: readonly ParamArrays[],
  fn: (values: number[]) => number,
): ParamArrays {
  const first = sets[0]!;
  const out: ParamArrays = {};
  for (const k of Object.keys(first)) {
    const data = new Float32Array(first[k]!.data.length);
    const cols = sets.map((s) => {
      const a = s[k];
      if (!a || a.data.length !== data.length)
        throw new Error(`combine: '${k}' missing or of another size`);
      return a.data;
    });
    const vals = new Array<number>(cols.length);
    for (let i = 0; i < data.length; i++) {
      for (let j = 0; j < cols.length; j++) vals[j] = cols[j]![i]!;
      data[i] = fn(vals);
    }
    out[k] = { shape: [...first[k]!.shape], data };
  }
  return out;
}

/** Weighted mean of array sets (weights normalised; float64 accumulation). */
export function weightedMean(
  sets: readonly ParamArrays[],
  weights: readonly number[],
): ParamArrays {
  const total = weights.reduce((a, b) => a + b, 0);
  if (!(total > 0)) throw new Error('weightedMean: weights must sum to a positive number');
  const w = weights.map((x) => x / total);
  return combine(sets, (v) => {
    let s = 0;
    for (let j = 0; j < v.length; j++) s += w[j]! * v[j]!;
    return s;
  });
}

/**
 * A state made of named tensor sets (`Req` always there, `Opt` possibly absent) and named numbers,
 * stored as a record's `tensors` and `scalars`; reading checks that every required set is there.
 */
export function setsCodec<
  Req extends string = never,
  Opt extends string = never,
  Num extends string = never,
>(names: {
  required?: readonly Req[];
  optional?: readonly Opt[];
  scalars?: readonly Num[];
}): StateCodec<SetsState<Req, Opt, Num>> {
  const required = names.required ?? [];
  const optional = names.optional ?? [];
  const scalars = names.scalars ?? [];
  return {
    toRecord(state) {
      const record: StateRecord = { tensors: {} };
      const sets = state as Record<string, ParamArrays | number | undefined>;
      for (const k of [...required, ...optional]) {
        const v = sets[k];
        if (v !== undefined) record.tensors[k] = v as ParamArrays;
      }
      if (scalars.length)
        record.scalars = Object.fromEntries(scalars.map((k) => [k, sets[k] as number]));
      return record;
    },
    fromRecord(record, where) {
      const out: Record<string, ParamArrays | number> = {};
      for (const k of required) {
        const v = record.tensors[k];
        if (!v) throw new Error(`${where}: the state lacks its '${k}' tensors`);
        out[k] = v;
      }
      for (const k of optional) {
        const v = record.tensors[k];
        if (v) out[k] = v;
      }
      for (const k of scalars) {
        const v = record.scalars?.[k];
        if (typeof v !== 'number') throw new Error(`${where}: the state lacks its number '${k}'`);
        out[k] = v;
      }
      return out as SetsState<Req, Opt, Num>;
    },
  };
}

/** The typed state `setsCodec` reads and writes. */
export type SetsState<Req extends string, Opt extends string, Num extends string> = {
  [K in Req]: ParamArrays;
} & { [K in Opt]?: ParamArrays } & { [K in Num]: number };

/** A state with nothing in it (algorithms whose clients keep nothing between rounds). */
export type NoState = SetsState<never, never, never>;
export const noStateCodec: StateCodec<NoState> = setsCodec({});

/** The server state of algorithms that keep only a global (or shared) parameter set. */
export interface GlobalState {
  global: ParamArrays;
}

export const globalStateCodec: StateCodec<GlobalState> = {
  toRecord: (s) => ({ global: s.global, tensors: {} }),
  fromRecord(record, where) {
    if (!record.global) throw new Error(`${where}: the server state lacks its global model`);
    return { global: record.global };
  },
};

/** The plain mean of the uploads from their sum and count. */
export function meanOfSum(total: UploadSum): ParamArrays {
  if (!(total.count > 0)) throw new Error('meanOfSum: the count must be positive');
  return combine([total.params], (v) => v[0]! / total.count);
}

/**
 * FedAvg's server part, which several algorithms share: the global model goes out dense and is
 * replaced by the mean of the uploaded models, weighted by sample count or equal (then it is
 * sum-only: `aggregateSum` gives the same mean from the sum).
 */
export function averagingServer(weighted: boolean): ServerPart<GlobalState> {
  return {
    ...(weighted
      ? {}
      : {
          aggregateSum: async (_server, _round, total) => ({
            server: { global: meanOfSum(total) },
            stats: {},
          }),
        }),
    codec: globalStateCodec,
    initServer: (init) => ({ global: init }),
    download: (server, round) => ({ round, params: denseParams(server.global) }),
    evalDownload: (server, round) => ({ round, params: denseParams(server.global) }),
    async aggregate(_server, _round, uploads) {
      const sets = uploads.map((u) => decodeParams(u.upload.params));
      const weights = uploads.map((u) => (weighted ? u.upload.numSamples : 1));
      return { server: { global: weightedMean(sets, weights) }, stats: {} };
    },
    global: (server) => server.global,
  };
}

/** `a + b`, tensor by tensor (float32 sums, as tfjs would compute them). */
export function addArrays(a: ParamArrays, b: ParamArrays): ParamArrays {
  const out: ParamArrays = {};
  for (const [k, x] of Object.entries(a)) {
    const y = b[k];
    if (!y || y.data.length !== x.data.length)
      throw new Error(`addArrays: '${k}' missing or of another size`);
    const data = new Float32Array(x.data.length);
    for (let i = 0; i < data.length; i++) data[i] = x.data[i]! + y.data[i]!;
    out[k] = { shape: [...x.shape], data };
  }
  return out;
}

/**
 * Local SGD for `train.epochs` epochs from the downloaded model, with the gradient transform
 * `transform(start)` builds (it may pull towards the start); the trained model goes up dense.
 */
export async function trainFromDownload(
  ctx: AlgorithmContext,
  down: Download,
  run: ClientRun,
  transform: (start: Params) => GradTransform,
): Promise<Upload> {
  const start = fromArrays(decodeParams(down.params));
  const r = await sgd(ctx, run, start, ctx.train.epochs, { transform: transform(start) });
  const params = await readArrays(r.params);
  disposeParams(start, r.params);
  return {
    round: down.round,
    params: denseParams(params),
    numSamples: run.data.y.shape[0],
    trainLoss: r.loss,
    trainAcc: r.acc,
  };
}
