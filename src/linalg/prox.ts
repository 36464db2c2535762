/**
 * The L1 proximal map (soft-threshold) and the counters FedSLR reports: density of a parameter
 * set and rank summaries. Every returned tensor is new and owned by the caller.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../tensor/params.js';

function checkTau(tau: number, where: string): void {
  if (!Number.isFinite(tau) || tau < 0) {
    throw new Error(`${where}: tau must be a finite number >= 0, got ${tau}`);
  }
}

/** `sign(t) * max(|t| - tau, 0)`, element-wise. */
export function softThreshold(t: tf.Tensor, tau: number): tf.Tensor {
  checkTau(tau, 'softThreshold');
  return tf.tidy(() => tf.mul(tf.sign(t), tf.relu(tf.sub(tf.abs(t), tau))));
}

/**
 * Soft-thresholds the tensors named in `names` (default: all) and clones the others, so the
 * result is a complete new set.
 */
export function proxL1(params: Params, tau: number, names?: readonly string[]): Params {
  checkTau(tau, 'proxL1');
  const chosen = new Set(names ?? Object.keys(params));
  for (const n of chosen) {
    if (!(n in params)) {
      throw new Error(`proxL1: no parameter '${n}' (have ${Object.keys(params).join(', ')})`);
    }
  }
  const out: Params = {};
  for (const [k, t] of Object.entries(params)) {
    out[k] = chosen.has(k) ? softThreshold(t, tau) : t.clone();
  }
  return out;
}

export interface Density {
  /** Per tensor: non-zeros / size. */
  perTensor: Record<string, number>;
  nonZeros: number;
  size: number;
  /** Over the whole set: total non-zeros / total size (0 for an empty set). */
  overall: number;
}

/** Counts exact non-zeros (the L1 prox produces exact zeros). */
export function density(params: Params): Density {
  const perTensor: Record<string, number> = {};
  let nonZeros = 0;
  let size = 0;
  for (const [k, t] of Object.entries(params)) {
    const nz = tf.tidy(() => tf.sum(tf.cast(tf.notEqual(t, 0), 'int32')).dataSync()[0]!);
    perTensor[k] = t.size === 0 ? 0 : nz / t.size;
    nonZeros += nz;
    size += t.size;
  }
  return { perTensor, nonZeros, size, overall: size === 0 ? 0 : nonZeros / size };
}

/** Kept rank and full rank (min(rows, cols)) of one matrix. */
export interface RankInfo {
  rank: number;
  fullRank: number;
}

export interface RankSummary {
  perTensor: Record<string, RankInfo>;
  rank: number;
  fullRank: number;
  /** Sum of kept ranks / sum of full ranks (1 when there are no matrices). */
  ratio: number;
}

/** Aggregates per-matrix ranks into totals and the overall kept/full ratio. */
export function rankSummary(perTensor: Record<string, RankInfo>): RankSummary {
  let rank = 0;
  let fullRank = 0;
  for (const r of Object.values(perTensor)) {
    rank += r.rank;
    fullRank += r.fullRank;
  }
  return { perTensor, rank, fullRank, ratio: fullRank === 0 ? 1 : rank / fullRank };
}

/**
 * Numerical rank of a descending list of singular values: how many exceed
 * `tol` (default: max(rows, cols) * float32 epsilon * largest value).
 */
export function numericalRank(
  values: ArrayLike<number>,
  rows: number,
  cols: number,
  tol?: number,
): number {
  const top = values.length > 0 ? Math.abs(values[0]!) : 0;
  const t = tol ?? Math.max(rows, cols) * 1.1920929e-7 * top;
  let r = 0;
  for (let i = 0; i < values.length; i++) if (values[i]! > t) r++;
  return r;
}

/** Parameters a rank-r factorisation of an R x C matrix needs, and whether it beats dense. */
export function lowRankPays(rows: number, cols: number, rank: number): boolean {
  return rank * (rows + cols) < rows * cols;
}
