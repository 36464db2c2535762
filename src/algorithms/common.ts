/** Helpers the algorithms share: wire decoding, the local SGD pass, element-wise means. */
import type { WireParams } from '../codec/wire.js';
import { dense, sparseToDense } from '../codec/wire.js';
import type { ParamArrays, Params } from '../tensor/params.js';
import { disposeParams, fromArrays, toArrays } from '../tensor/params.js';
import { trainLocal } from '../train/loop.js';
import type { GradTransform, ProxMap } from '../train/transforms.js';
import type { Algorithm, AlgorithmContext, ClientRun, Download, Upload } from './types.js';

/** Decodes dense and sparse wire tensors; low-rank ones are decoded by `decodeLowRank`. */
export function decodeWire(
  wire: WireParams,
  decodeLowRank?: (
    name: string,
    t: Extract<WireParams[string], { kind: 'lowrank' }>,
  ) => ParamArrays[string],
): ParamArrays {
  const out: ParamArrays = {};
  for (const [k, t] of Object.entries(wire)) {
    if (t.kind === 'dense') out[k] = { shape: [...t.shape], data: t.data };
    else if (t.kind === 'sparse') out[k] = sparseToDense(t);
    else {
      if (!decodeLowRank)
        throw new Error(`'${k}' arrived as low-rank factors, which this algorithm does not expect`);
      out[k] = decodeLowRank(k, t);
    }
  }
  return out;
}

export function denseWire(a: ParamArrays): WireParams {
  return Object.fromEntries(Object.entries(a).map(([k, v]) => [k, dense(v)]));
}

/**
 * E epochs of SGD from `start` with the given gradient transform; returns the new tensors, the
 * last epoch's loss and accuracy, and the number of steps taken.
 */
export function sgd(
  ctx: AlgorithmContext,
  run: ClientRun,
  start: Params,
  epochs: number,
  opts: { transform?: GradTransform; prox?: ProxMap; compose?: (p: Params) => Params } = {},
): { params: Params; loss: number; acc: number; steps: number } {
  const r = trainLocal(start, {
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
 * FedAvg's server half, which several algorithms share: the global model goes out dense and is
 * replaced by the mean of the uploaded models, weighted by sample count or equal.
 */
export function averagingServer(
  weighted: boolean,
): Pick<Algorithm, 'initServer' | 'download' | 'aggregate'> {
  return {
    initServer: (init) => ({ global: init, tensors: {} }),
    download: (server, round) => ({ round, params: denseWire(server.global!) }),
    aggregate(server, _round, uploads) {
      const sets = uploads.map((u) => decodeWire(u.upload.params));
      const weights = uploads.map((u) => (weighted ? u.upload.numSamples : 1));
      return { server: { ...server, global: weightedMean(sets, weights) }, stats: {} };
    },
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
export function trainFromDownload(
  ctx: AlgorithmContext,
  down: Download,
  run: ClientRun,
  transform: (start: Params) => GradTransform,
): Upload {
  const start = fromArrays(decodeWire(down.params));
  const r = sgd(ctx, run, start, ctx.train.epochs, { transform: transform(start) });
  const params = toArrays(r.params);
  disposeParams(start, r.params);
  return {
    params: denseWire(params),
    numSamples: run.data.y.shape[0],
    trainLoss: r.loss,
    trainAcc: r.acc,
  };
}
