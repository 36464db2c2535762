/**
 * Singular-value thresholding (FEDSLR.md step 6): SVT(A) = U max(S - tau, 0) V^T, the proximal map
 * of tau * ||.||_*.
 *
 * Methods, one file each under svt/ (README.md in this folder explains the choice; the
 * measurements are in bench/svt-measurements.md):
 * - 'polar': when every singular value exceeds tau, SVT(A) = A - tau * polar(A). The polar factor
 *   comes from scaled Newton-Schulz iterations (matmuls on the tfjs backend). The answer is
 *   certified: the last iterate must be orthonormal to float32 accuracy and the symmetric factor
 *   sym(Q^T A) - tau I must pass a Cholesky factorisation (so every singular value is above
 *   tau). Gives the thresholded matrix and the rank (full), not the factors. Its deflated variant
 *   handles a few values at or below tau.
 * - 'subspace': warm-started block iteration for low rank, with residual and Weyl certificates.
 * - 'gram': float64 Gram eigensolver (svd.ts), trusted only when its error bound separates every
 *   singular value from tau and keeps the kept values to 5e-6 relative accuracy.
 * - 'jacobi': float64 one-sided Jacobi, exact to relative accuracy; the fallback.
 * - 'auto' (default): polar, deflated polar, subspace, gram, jacobi, each tried where it can pay
 *   and falling through whenever a certificate fails. README.md has the details.
 */
import { lowRankPays } from './prox.js';
import { deflatedPolarSvt } from './svt/deflated_polar.js';
import { gramSvt } from './svt/gram.js';
import { jacobiSvt } from './svt/jacobi.js';
import { polarSvt } from './svt/polar.js';
import { subspaceSvt } from './svt/subspace.js';
import type { SvtOptions, SvtResult } from './svt/types.js';

export { gramDomainPolar, newtonSchulzSchedule } from './svt/polar.js';
export type { FactorPolicy, SvtHint, SvtMethod, SvtOptions, SvtResult } from './svt/types.js';

/**
 * Below this many columns (smaller side) the polar path's tfjs round trips cost more than they
 * save. Full regime, warm, median of 400 calls alternating with the Gram path, quiet machine:
 * 64x64 polar 0.90 / Gram 1.43 ms (two XNNPACK threads), 0.91 / 1.11 (one); 128x64 1.24 / 1.59
 * (two), 1.37 / 1.27 (one).
 */
const POLAR_MIN_SIDE = 64;
/** The same for the deflated polar path, whose filter and float64 Rayleigh-Ritz cost more. */
const DEFLATED_MIN_SIDE = 96;
/**
 * The same for the subspace path, which pays from smaller sides: in the low regime (10% of the
 * values above tau, warm) it beats the Gram path from 96x48 on (0.6 against 1.2 ms; 128x64 1.0
 * against 1.9) and ties at 48x48.
 */
const SUBSPACE_MIN_SIDE = 48;

function checkArgs(a: Float32Array, rows: number, cols: number, tau: number): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1) {
    throw new Error(`svt: rows and cols must be positive integers, got ${rows} x ${cols}`);
  }
  if (a.length !== rows * cols)
    throw new Error(`svt: ${a.length} values for a ${rows} x ${cols} matrix`);
  if (!Number.isFinite(tau) || tau < 0)
    throw new Error(`svt: tau must be a finite number >= 0, got ${tau}`);
}

/** Singular-value thresholding of the row-major `rows x cols` matrix `a` at `tau`. */
export async function svt(
  a: Float32Array,
  rows: number,
  cols: number,
  tau: number,
  opts: SvtOptions = {},
): Promise<SvtResult> {
  checkArgs(a, rows, cols, tau);
  const method = opts.method ?? 'auto';
  const policy = opts.factors ?? 'always';
  if (!['auto', 'polar', 'subspace', 'gram', 'jacobi'].includes(method)) {
    throw new Error(
      `svt: method must be one of auto, polar, subspace, gram, jacobi; got '${method}'`,
    );
  }
  if (method === 'jacobi') return jacobiSvt(a, rows, cols, tau, policy);
  const side = Math.min(rows, cols);
  if (method === 'polar' && policy === 'always') {
    throw new Error("svt: method 'polar' returns no factors; use factors: 'whenLowRank'");
  }
  const lastFull = opts.hint?.fullRank ?? true;
  const tryPolar =
    method === 'polar' ||
    (method === 'auto' &&
      policy === 'whenLowRank' &&
      side >= POLAR_MIN_SIDE &&
      tau > 0 &&
      lastFull);
  if (tryPolar) {
    const r = await polarSvt(a, rows, cols, tau, opts.hint);
    if (r) return r;
  }
  // Nearly full rank (a few values at or below tau): the deflated polar path, whose factors never
  // pay (its rank is above 3/4 of full).
  const lastRank = opts.hint?.rank ?? Math.min(rows, cols);
  if (
    (tryPolar && (method === 'polar' || side >= DEFLATED_MIN_SIDE)) ||
    (method === 'auto' &&
      policy === 'whenLowRank' &&
      side >= DEFLATED_MIN_SIDE &&
      tau > 0 &&
      lastRank > 0.75 * side)
  ) {
    const r = await deflatedPolarSvt(a, rows, cols, tau);
    if (r && !lowRankPays(rows, cols, r.rank)) return r;
  }
  const trySubspace =
    method === 'subspace' ||
    (method === 'auto' && side >= SUBSPACE_MIN_SIDE && (tryPolar || !lastFull));
  if (trySubspace) {
    const r = await subspaceSvt(a, rows, cols, tau, policy, opts.hint);
    if (r) return r;
  }
  return (await gramSvt(a, rows, cols, tau, policy)) ?? jacobiSvt(a, rows, cols, tau, policy);
}

/** The factors FEDSLR.md's downlink sends: U sqrt(S) (rows x rank) and sqrt(S) V^T (rank x cols). */
export function balancedFactors(r: SvtResult): { left: Float32Array; right: Float32Array } {
  if (!r.values || !r.u || !r.v) {
    throw new Error(
      'balancedFactors: this SVT result carries no factors (computed with factors: whenLowRank where they do not pay)',
    );
  }
  const { rows, cols, rank } = r;
  const left = new Float32Array(rows * rank);
  const right = new Float32Array(rank * cols);
  for (let j = 0; j < rank; j++) {
    const q = Math.sqrt(r.values[j]!);
    for (let i = 0; i < rows; i++) left[i * rank + j] = r.u[i * rank + j]! * q;
    for (let c = 0; c < cols; c++) right[j * cols + c] = r.v[c * rank + j]! * q;
  }
  return { left, right };
}

/**
 * Convenience for callers that always want the balanced factors with the thresholded matrix.
 * Always computes factors, so it never takes the fast polar path; `svtParams` (or `svt` with
 * factors: 'whenLowRank') does.
 */
export async function svtMatrix(
  a: Float32Array,
  rows: number,
  cols: number,
  tau: number,
  opts: Omit<SvtOptions, 'factors'> = {},
): Promise<{
  matrix: Float32Array;
  rank: number;
  fullRank: number;
  left: Float32Array;
  right: Float32Array;
}> {
  const r = await svt(a, rows, cols, tau, { ...opts, factors: 'always' });
  return { matrix: r.matrix, rank: r.rank, fullRank: r.fullRank, ...balancedFactors(r) };
}
