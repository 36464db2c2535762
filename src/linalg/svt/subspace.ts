/**
 * The subspace path, for low rank. Block power iteration on G = X^T X (tfjs matmuls, float64
 * Gram-Schmidt), warm-started from the previous round's right singular vectors; Rayleigh-Ritz on X
 * itself in float64: the SVD of Y = X Q (m x k) via its Gram matrix gives V_r = Q W_r and
 * U_r = Y W_r / s, and SVT(A) = U_r diag(s - tau) V_r^T.
 * Certificates: every kept triplet has ||X^T u - s v|| <= 1e-6 s (plus float32 rounding), and
 *   (tau^2 - margin) I - (G - V_r S_r^2 V_r^T)
 * passes Cholesky: by Weyl's inequality lambda_{r+1}(G) <= lambda_max(G - V_r S_r^2 V_r^T), so no
 * singular value beyond the r kept ones exceeds tau.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../tensor/rng.js';
import { isPositiveDefinite } from '../cholesky.js';
import { lowRankPays } from '../prox.js';
import { symmetricEigen } from '../svd.js';
import { EPS32, gramOfColumns, orthonormalize, toRowMajor } from './blocks.js';
import type { FactorPolicy, SvtHint, SvtResult } from './types.js';

/** The subspace path (above); null when a certificate fails. */
export async function subspaceSvt(
  a: Float32Array,
  rows: number,
  cols: number,
  tau: number,
  policy: FactorPolicy,
  hint: SvtHint | undefined,
): Promise<SvtResult | null> {
  const tall = rows >= cols;
  const n = Math.min(rows, cols);
  const m = Math.max(rows, cols);
  const warm = hint?.basis && hint.rank !== undefined && hint.basis.length === n * hint.rank;
  const r0 = warm ? hint!.rank! : Math.ceil(n / 8);
  const k = Math.min(n, warm ? r0 + 10 + Math.ceil(r0 / 10) : Math.max(8, 2 * r0 + 8));
  // A block this wide costs as much as the exact path and rarely certifies.
  if (k > 0.75 * n) return null;
  const iters = warm ? 2 : 5;
  const rng = new Rng(0x5eed ^ (rows * 65599 + cols));
  const q = new Float64Array(n * k);
  const start = warm ? hint!.basis!.length : 0;
  if (warm) q.set(hint!.basis!);
  for (let i = start; i < n * k; i++) q[i] = rng.normal();
  const [x, g] = tf.tidy(() => {
    const a2 = tf.tensor2d(a, [rows, cols]);
    const xx = tall ? a2 : tf.transpose(a2);
    return [xx, tf.matMul(tf.transpose(xx), xx)] as [tf.Tensor2D, tf.Tensor2D];
  });
  try {
    orthonormalize(q, n, k);
    for (let it = 0; it < iters; it++) {
      const y = tf.tidy(() => tf.matMul(g, tf.tensor2d(toRowMajor(q, n, k), [n, k])));
      const yd = await y.data();
      y.dispose();
      for (let j = 0; j < k; j++) for (let i = 0; i < n; i++) q[j * n + i] = yd[i * k + j]!;
      orthonormalize(q, n, k);
    }
    // Rayleigh-Ritz on X: the SVD of Y = X Q (m x k) in float64 via its Gram matrix.
    const qt = tf.tensor2d(toRowMajor(q, n, k), [n, k]);
    const yT = tf.matMul(x, qt);
    const yd = await yT.data();
    yT.dispose();
    const gy = gramOfColumns(yd, m, k);
    const { values, vt } = symmetricEigen(gy, k);
    const order = Array.from({ length: k }, (_, i) => i).sort((i, j) => values[j]! - values[i]!);
    const s = order.map((i) => Math.sqrt(Math.max(values[i]!, 0)));
    let r = 0;
    while (r < k && s[r]! > tau) r++;
    if (r === k) {
      qt.dispose();
      return null;
    }
    // Right vectors V_r = Q W_r (n x r), left vectors U_r = Y W_r / s (m x r), row-major.
    const w = new Float32Array(k * r);
    for (let j = 0; j < r; j++) for (let p = 0; p < k; p++) w[p * r + j] = vt[order[j]! * k + p]!;
    const [vT, uT, resT, dT, xT] = tf.tidy(() => {
      if (r === 0) {
        const z = tf.zeros([0]);
        return [z, z.clone(), z.clone(), g.clone(), tf.zeros([rows, cols])];
      }
      const wt = tf.tensor2d(w, [k, r]);
      const sInv = tf.tensor1d(s.slice(0, r).map((x) => 1 / x));
      const sv = tf.tensor1d(s.slice(0, r));
      const vv = tf.matMul(qt, wt);
      const uu = tf.mul(tf.matMul(tf.tensor2d(yd, [m, k]), wt), sInv);
      const res = tf.sqrt(
        tf.sum(tf.square(tf.sub(tf.matMul(tf.transpose(x), uu), tf.mul(vv, sv))), 0),
      );
      const vs = tf.mul(vv, sv);
      const recon = tf.matMul(tf.mul(uu, tf.sub(sv, tau)), tf.transpose(vv));
      return [
        vv,
        uu,
        res,
        tf.sub(g, tf.matMul(vs, tf.transpose(vs))),
        tall ? recon : tf.transpose(recon),
      ];
    });
    qt.dispose();
    const [vd, ud, res, dd, matrix] = (await Promise.all(
      [vT, uT, resT, dT, xT].map((t) => t.data()),
    )) as Float32Array[] as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
    tf.dispose([vT, uT, resT, dT, xT]);
    for (let j = 0; j < r; j++)
      if (!(res[j]! <= 1e-6 * s[j]! + 4 * Math.sqrt(m) * EPS32 * s[0]!)) return null;
    const margin = 8 * Math.sqrt(m) * EPS32 * s[0]! * s[0]!;
    for (let i = 0; i < n * n; i++) dd[i] = -dd[i]!;
    if (!(await isPositiveDefinite(dd, n, margin - tau * tau))) return null;
    const values32 = new Float64Array(r);
    for (let j = 0; j < r; j++) values32[j] = s[j]! - tau;
    const uRows = tall ? ud : vd;
    const vRows = tall ? vd : ud;
    const basis = new Float32Array(n * r);
    for (let j = 0; j < r; j++) for (let i = 0; i < n; i++) basis[j * n + i] = vd[i * r + j]!;
    const full = n;
    const withFactors = policy === 'always' || lowRankPays(rows, cols, r);
    return {
      rows,
      cols,
      rank: r,
      fullRank: full,
      values: withFactors ? values32 : null,
      u: withFactors ? uRows : null,
      v: withFactors ? vRows : null,
      matrix,
      method: 'subspace',
      hint: { fullRank: r === full, rank: r, basis },
    };
  } finally {
    tf.dispose([x, g]);
  }
}
