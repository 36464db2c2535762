/**
 * The exact fallback: SVT(A) = U max(S - tau, 0) V^T from a float64 SVD (svd.ts: one-sided
 * Jacobi, relatively accurate for every singular value). The last resort of `auto`, and the
 * tests' reference. Needs no certificate.
 */
import { lowRankPays } from '../prox.js';
import { jacobiSvd, type Svd } from '../svd.js';
import type { FactorPolicy, SvtResult } from './types.js';

/** SVT by one-sided Jacobi in float64. */
export function jacobiSvt(
  a: Float32Array,
  rows: number,
  cols: number,
  tau: number,
  policy: FactorPolicy,
): SvtResult {
  return svtFromSvd(jacobiSvd(a, rows, cols), tau, policy);
}

/** Builds the result from an exact SVD (the Jacobi path). */
function svtFromSvd(svd: Svd, tau: number, policy: FactorPolicy): SvtResult {
  const { rows, cols, k, s } = svd;
  let rank = 0;
  while (rank < k && s[rank]! > tau) rank++;
  const values = new Float64Array(rank);
  for (let j = 0; j < rank; j++) values[j] = s[j]! - tau;
  const matrix = new Float32Array(rows * cols);
  const acc = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    acc.fill(0);
    for (let j = 0; j < rank; j++) {
      const x = svd.u[i * k + j]! * values[j]!;
      if (x === 0) continue;
      for (let c = 0; c < cols; c++) acc[c] = acc[c]! + x * svd.v[c * k + j]!;
    }
    matrix.set(acc, i * cols);
  }
  const full = Math.min(rows, cols);
  const withFactors = policy === 'always' || lowRankPays(rows, cols, rank);
  let u: Float32Array | null = null;
  let v: Float32Array | null = null;
  if (withFactors) {
    u = new Float32Array(rows * rank);
    v = new Float32Array(cols * rank);
    for (let i = 0; i < rows; i++)
      for (let j = 0; j < rank; j++) u[i * rank + j] = svd.u[i * k + j]!;
    for (let i = 0; i < cols; i++)
      for (let j = 0; j < rank; j++) v[i * rank + j] = svd.v[i * k + j]!;
  }
  return {
    rows,
    cols,
    rank,
    fullRank: full,
    values: withFactors ? values : null,
    u,
    v,
    matrix,
    method: 'jacobi',
    hint: { fullRank: rank === full, rank },
  };
}
