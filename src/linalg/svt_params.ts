/**
 * SVT over a whole parameter set: every tensor with a matrix view (conv kernels, dense weights) is
 * thresholded through that view; 1-D tensors are copied unchanged.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ParamSpec, Params } from '../tensor/params.js';
import { fromMatrixArray, matrixShape, toMatrixArray } from './matrix_view.js';
import { type RankInfo, type RankSummary, rankSummary } from './prox.js';
import { balancedFactors, type FactorPolicy, type SvtHint, type SvtMethod, svt } from './svt.js';

/** Carried from one call to the next by the caller (per tensor: what its matrix looked like). */
export interface SvtState {
  readonly hints: Readonly<Record<string, SvtHint>>;
}

export interface SvtParamsOptions {
  method?: SvtMethod;
  /** Default 'whenLowRank': factors only where they are smaller than the dense matrix. */
  factors?: FactorPolicy;
  /** The `state` of the previous call (e.g. the previous round). */
  state?: SvtState;
}

export interface LowRankFactors {
  rows: number;
  cols: number;
  rank: number;
  /** U sqrt(S), rows x rank, row-major. */
  left: Float32Array;
  /** sqrt(S) V^T, rank x cols, row-major. */
  right: Float32Array;
}

export interface SvtParamsResult {
  params: Params;
  ranks: RankSummary;
  /** Per matrix, when computed (see `factors` option). */
  factors: Record<string, LowRankFactors>;
  /** Which method answered, per matrix. */
  methods: Record<string, string>;
  state: SvtState;
}

export async function svtParams(
  params: Params,
  spec: ParamSpec,
  tau: number,
  opts: SvtParamsOptions = {},
): Promise<SvtParamsResult> {
  const out: Params = {};
  const ranks: Record<string, RankInfo> = {};
  const factors: Record<string, LowRankFactors> = {};
  const methods: Record<string, string> = {};
  const hints: Record<string, SvtHint> = {};
  try {
    for (const p of spec) {
      const t = params[p.name];
      if (!t) throw new Error(`svtParams: no parameter '${p.name}' in the set`);
      const ms = matrixShape(t.shape, p.role);
      if (!ms) {
        out[p.name] = t.clone();
        continue;
      }
      const m = toMatrixArray((await t.data()) as Float32Array, t.shape, p.role);
      const r = await svt(m, ms[0], ms[1], tau, {
        method: opts.method,
        factors: opts.factors ?? 'whenLowRank',
        hint: opts.state?.hints[p.name],
      });
      out[p.name] = tf.tensor(fromMatrixArray(r.matrix, t.shape, p.role), t.shape, 'float32');
      ranks[p.name] = { rank: r.rank, fullRank: r.fullRank };
      methods[p.name] = r.method;
      hints[p.name] = r.hint;
      if (r.values)
        factors[p.name] = { rows: ms[0], cols: ms[1], rank: r.rank, ...balancedFactors(r) };
    }
  } catch (e) {
    tf.dispose(Object.values(out));
    throw e;
  }
  return { params: out, ranks: rankSummary(ranks), factors, methods, state: { hints } };
}
