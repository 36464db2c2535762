/**
 * FedSLR (Huang et al., TMLR 2023), exactly as ../shared/FEDSLR.md states it. Client i's model is
 * W + P_i: W, the global knowledge representation, is pushed to low rank by the server's
 * singular-value thresholding; P_i, the personal component, is pushed to sparsity by an L1 prox
 * after every local step and never leaves the client.
 *
 * State names: server `global` = W, `tensors.dualSum` = D (sum of ALL clients' duals),
 * `tensors.factors` = `<name>:left` / `<name>:right` low-rank factors of W's matrices;
 * client `tensors.dual` = pi_i (absent means zero), `tensors.sparse` = P_i.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LowRankTensor, WireParams } from '../codec/wire.js';
import { dense } from '../codec/wire.js';
import { fromMatrixArray, matrixShape, toMatrixArray } from '../linalg/matrix_view.js';
import { lowRankPays } from '../linalg/prox.js';
import { type SvtHint, svt } from '../linalg/svt.js';
import type { ArrayParam, ParamArrays, ParamSpec } from '../tensor/params.js';
import { add, disposeParams, fromArrays, sub, toArrays, zerosLike } from '../tensor/params.js';
import {
  addDecayedWeights,
  addLinear,
  chain,
  l1ProxMap,
  proximalPull,
} from '../train/transforms.js';
import { addArrays, combine, decodeWire, sgd } from './common.js';
import { capDensity, DENSITY_HEADROOM, nextLambda } from './density_target.js';
import { budgetStep, type SvtMode } from './svt_modes.js';
import type {
  Algorithm,
  AlgorithmContext,
  ClientState,
  ServerState,
  ServerStats,
} from './types.js';

export interface FedSLROptions {
  /** Augmented-Lagrangian coefficient alpha. */
  alpha: number;
  /** Nuclear-norm weight mu: singular values are thresholded at mu / alpha. */
  mu: number;
  /** L1 weight lambda of the personal components. */
  lambda: number;
  /** Stage-2 epochs E2. */
  personalEpochs: number;
  /** P_i's start: the initial weights (norm scale/offset zero), or zeros everywhere. */
  personalInit: 'init' | 'zeros';
  /**
   * Which of the two parts to keep: both (FedSLR), low-rank only (no stage 2: the personal model
   * is the global one), sparse only (no SVT: FedDyn's global model + sparse personal parts).
   */
  ablation: FedSLRAblation;
  /** How the server's low-rank step picks what to keep: SVT at mu / alpha, or a budget. */
  svt: SvtMode;
  /** Target share of non-zeros of each P_i: lambda is then adapted per client (from `lambda`). */
  density?: number;
}

export type FedSLRAblation = 'both' | 'low-rank-only' | 'sparse-only';

export const FEDSLR_DEFAULTS: FedSLROptions = {
  alpha: 0.1,
  mu: 1e-4,
  lambda: 1e-3,
  personalEpochs: 1,
  personalInit: 'init',
  ablation: 'both',
  svt: { mode: 'absolute' },
};

/**
 * The stages one member of the FedSLR family runs: SVT on the server or not; what the personal
 * model is (W + P_i with stage 2, W itself, or none). FedSLR's ablations and FedDyn (no SVT, no
 * personal part) are all members.
 */
export interface DynamicParts {
  name: string;
  svt: boolean;
  personal: 'sparse' | 'global' | 'none';
}

const ABLATION_PARTS: Record<FedSLRAblation, Omit<DynamicParts, 'name'>> = {
  both: { svt: true, personal: 'sparse' },
  'low-rank-only': { svt: true, personal: 'global' },
  'sparse-only': { svt: false, personal: 'sparse' },
};

/** Multiplies the factors back into the tensor they encode (row-major matmul in float64). */
export function decodeLowRank(spec: ParamSpec, name: string, t: LowRankTensor): ArrayParam {
  const info = spec.find((p) => p.name === name);
  if (!info) throw new Error(`low-rank tensor '${name}' is not in the model's spec`);
  const m = new Float32Array(t.rows * t.cols);
  for (let i = 0; i < t.rows; i++) {
    for (let k = 0; k < t.rank; k++) {
      const a = t.left[i * t.rank + k]!;
      if (a === 0) continue;
      const row = k * t.cols;
      const out = i * t.cols;
      for (let j = 0; j < t.cols; j++) m[out + j] = m[out + j]! + a * t.right[row + j]!;
    }
  }
  return { shape: [...t.shape], data: fromMatrixArray(m, t.shape, info.role) };
}

/**
 * The wire factors of a thresholded matrix: left = U sqrt(S) (rows x r), right = sqrt(S) V^T
 * (r x cols), from U (rows x r) and V (cols x r) as row-major arrays.
 */
export function splitFactors(
  u: Float32Array,
  v: Float32Array,
  values: ArrayLike<number>,
  rows: number,
  cols: number,
): { left: Float32Array; right: Float32Array } {
  const r = values.length;
  const root = Array.from(values, Math.sqrt);
  const left = new Float32Array(rows * r);
  const right = new Float32Array(r * cols);
  for (let i = 0; i < rows; i++)
    for (let k = 0; k < r; k++) left[i * r + k] = u[i * r + k]! * root[k]!;
  for (let k = 0; k < r; k++)
    for (let j = 0; j < cols; j++) right[k * cols + j] = root[k]! * v[j * r + k]!;
  return { left, right };
}

/** P_i's starting value. */
export function initialSparse(
  spec: ParamSpec,
  init: ParamArrays,
  how: 'init' | 'zeros',
): ParamArrays {
  const out: ParamArrays = {};
  for (const p of spec) {
    const copy = how === 'init' && (p.role === 'conv' || p.role === 'dense' || p.role === 'bias');
    out[p.name] = copy
      ? init[p.name]!
      : { shape: [...p.shape], data: new Float32Array(init[p.name]!.data.length) };
  }
  return out;
}

/**
 * The SVT warm start of each matrix (every field of its hint) is part of the server state, in
 * scalars and the `svtHints` tensors, so a resumed run repeats an uninterrupted one bit for bit.
 */
function readHint(server: ServerState, name: string): SvtHint {
  const hint: Record<string, unknown> = { fullRank: true };
  const prefix = `${name}|`;
  for (const [key, v] of Object.entries(server.scalars ?? {})) {
    if (!key.startsWith(prefix)) continue;
    const [field, kind] = key.slice(prefix.length).split('|');
    hint[field!] = kind === 'bool' ? v === 1 : v;
  }
  for (const [key, a] of Object.entries(server.tensors['svtHints'] ?? {})) {
    if (key.startsWith(prefix)) hint[key.slice(prefix.length)] = a.data;
  }
  return hint as unknown as SvtHint;
}

function writeHint(
  hint: SvtHint,
  name: string,
  scalars: Record<string, number>,
  arrays: ParamArrays,
): void {
  for (const [field, v] of Object.entries(hint)) {
    if (typeof v === 'number') scalars[`${name}|${field}`] = v;
    else if (typeof v === 'boolean') scalars[`${name}|${field}|bool`] = v ? 1 : 0;
    else if (v instanceof Float32Array) arrays[`${name}|${field}`] = { shape: [v.length], data: v };
    else if (v !== undefined)
      throw new Error(`fedslr: cannot keep SVT hint field '${field}' of '${name}'`);
  }
}

function nonZeroShare(set: ParamArrays): number {
  let nnz = 0;
  let size = 0;
  for (const a of Object.values(set)) {
    size += a.data.length;
    for (let i = 0; i < a.data.length; i++) if (a.data[i] !== 0) nnz++;
  }
  return size ? nnz / size : 0;
}

/**
 * W^t as FEDSLR.md's downlink sends it: matrices with factors in the server state go as those
 * factors, everything else dense.
 */
export function factoredDownload(spec: ParamSpec, server: ServerState, round: number) {
  const factors = server.tensors['factors'] ?? {};
  const params: WireParams = {};
  for (const p of spec) {
    const w = server.global![p.name]!;
    const left = factors[`${p.name}:left`];
    const right = factors[`${p.name}:right`];
    const ms = matrixShape(p.shape, p.role);
    params[p.name] =
      ms && left && right
        ? {
            kind: 'lowrank',
            shape: [...p.shape],
            rows: ms[0],
            cols: ms[1],
            rank: left.shape[1]!,
            left: left.data,
            right: right.data,
          }
        : dense(w);
  }
  return { round, params };
}

export function fedslr(ctx: AlgorithmContext, options: Partial<FedSLROptions> = {}): Algorithm {
  const opts = { ...FEDSLR_DEFAULTS, ...options };
  return dynamicFamily(ctx, opts, { name: 'fedslr', ...ABLATION_PARTS[opts.ablation] });
}

/** The FedDyn-style round of FEDSLR.md with the stages `parts` names (see DynamicParts). */
export function dynamicFamily(
  ctx: AlgorithmContext,
  opts: FedSLROptions,
  parts: DynamicParts,
): Algorithm {
  const { spec } = ctx.model;
  const wd = ctx.train.weightDecay;
  const N = ctx.numClients;
  const tau = opts.mu / opts.alpha;
  const budgeted = parts.svt && opts.svt.mode !== 'absolute' ? opts.svt : undefined;

  const sparse = parts.personal === 'sparse';
  const algorithm: Algorithm = {
    name: parts.name,
    hasGlobal: true,
    hasPersonal: parts.personal !== 'none',
    clientStateSets: sparse ? 2 : 1,

    initServer(init) {
      const state: ServerState = { global: init, tensors: {} };
      if (!budgeted) return state;
      // Round 0's download meets the budget too.
      const step = budgetStep(spec, init, budgeted, 0);
      return { global: step.global, tensors: { factors: step.factors } };
    },

    download: (server, round) => factoredDownload(spec, server, round),

    aggregate(server, round, uploads) {
      const W = server.global!;
      const ws = uploads.map((u) =>
        decodeWire(u.upload.params, (k, t) => decodeLowRank(spec, k, t)),
      );
      const S = ws.length;
      const a = opts.alpha;
      // D <- D + alpha * (|S| W^t - sum_i w_i)
      const dPrev = server.tensors['dualSum'];
      const dualSum = combine([W, ...(dPrev ? [dPrev] : []), ...ws], (v) => {
        let s = 0;
        for (let j = 1 + (dPrev ? 1 : 0); j < v.length; j++) s += v[j]!;
        return (dPrev ? v[1]! : 0) + a * (S * v[0]! - s);
      });
      // V = mean_i w_i - D / (alpha N)
      const V = combine([dualSum, ...ws], (v) => {
        let s = 0;
        for (let j = 1; j < v.length; j++) s += v[j]!;
        return s / S - v[0]! / (a * N);
      });
      if (budgeted) {
        const step = budgetStep(spec, V, budgeted, round + 1);
        const next: ServerState = {
          global: step.global,
          tensors: { dualSum, factors: step.factors },
        };
        return { server: next, stats: { ranks: step.ranks } };
      }
      const global: ParamArrays = {};
      const factors: ParamArrays = {};
      const ranks: NonNullable<ServerStats['ranks']> = {};
      const hints: Record<string, number> = {};
      const hintArrays: ParamArrays = {};
      for (const p of spec) {
        const ms = matrixShape(p.shape, p.role);
        const v = V[p.name]!;
        if (!ms || !parts.svt) {
          global[p.name] = v;
          continue;
        }
        const hint = readHint(server, p.name);
        const r = svt(toMatrixArray(v.data, p.shape, p.role), ms[0], ms[1], tau, {
          factors: 'whenLowRank',
          hint,
        });
        global[p.name] = { shape: [...p.shape], data: fromMatrixArray(r.matrix, p.shape, p.role) };
        writeHint(r.hint, p.name, hints, hintArrays);
        ranks[p.name] = { rank: r.rank, full: r.fullRank };
        if (r.u && r.v && r.values && lowRankPays(ms[0], ms[1], r.rank)) {
          const f = splitFactors(r.u, r.v, r.values, ms[0], ms[1]);
          factors[`${p.name}:left`] = { shape: [ms[0], r.rank], data: f.left };
          factors[`${p.name}:right`] = { shape: [r.rank, ms[1]], data: f.right };
        }
      }
      return {
        server: { global, tensors: { dualSum, factors, svtHints: hintArrays }, scalars: hints },
        stats: parts.svt ? { ranks } : {},
      };
    },

    initClient: (_client, init): ClientState =>
      sparse
        ? { tensors: { sparse: initialSparse(spec, init, opts.personalInit) } }
        : { tensors: {} },

    clientTrain(down, state, run) {
      const W = fromArrays(decodeWire(down.params, (k, t) => decodeLowRank(spec, k, t)));
      const pi = state.tensors['dual'] ? fromArrays(state.tensors['dual']) : zerosLike(W);
      // Stage 1: SGD on f_i(w) - <pi_i, w> + (alpha/2)||w - W^t||^2 + (wd/2)||w||^2 from W^t.
      const s1 = sgd(ctx, run, W, ctx.train.epochs, {
        transform: chain(addLinear(pi, -1), proximalPull(opts.alpha, W), addDecayedWeights(wd)),
      });
      // Dual update: pi_i <- pi_i + alpha (W^t - w_i).
      const drift = sub(W, s1.params);
      const piNext = tf.tidy(() =>
        Object.fromEntries(
          Object.keys(pi).map((k) => [k, tf.add(pi[k]!, tf.mul(drift[k]!, opts.alpha))]),
        ),
      );
      const upload = toArrays(s1.params);
      const next: ClientState = { tensors: { dual: toArrays(piNext) } };
      disposeParams(pi, s1.params, drift, piNext);
      if (sparse) {
        // Stage 2: proximal SGD on f_i(W^t + P) + (wd/2)||P||^2 over P, W^t frozen.
        const P = fromArrays(state.tensors['sparse']!);
        const lambda = state.scalars?.['lambda'] ?? opts.lambda;
        const s2 = sgd(ctx, run, P, opts.personalEpochs, {
          compose: (p) => add(W, p),
          transform: addDecayedWeights(wd),
          prox: l1ProxMap(lambda),
        });
        next.tensors['sparse'] = toArrays(s2.params);
        disposeParams(P, s2.params);
        if (opts.density !== undefined) {
          const density = nonZeroShare(next.tensors['sparse']);
          next.tensors['sparse'] = capDensity(next.tensors['sparse'], opts.density).set;
          next.scalars = {
            lambda: nextLambda(lambda, density, Math.min(1, DENSITY_HEADROOM * opts.density)),
          };
        }
      }
      disposeParams(W);
      return {
        upload: {
          params: Object.fromEntries(Object.entries(upload).map(([k, v]) => [k, dense(v)])),
          numSamples: run.data.y.shape[0],
          trainLoss: s1.loss,
          trainAcc: s1.acc,
        },
        state: next,
      };
    },

    personalModel(state, global) {
      if (parts.personal === 'none') return null;
      if (!global) throw new Error(`${parts.name}: personal model needs the global model`);
      if (parts.personal === 'global') return global;
      const P = state.tensors['sparse']!;
      return addArrays(global, P);
    },
  };
  if (sparse) algorithm.personalDensity = (state) => nonZeroShare(state.tensors['sparse']!);
  return algorithm;
}
