/**
 * The Gram path: SVT from the eigendecomposition of the float64 Gram matrix G = X^T X of the tall
 * orientation X (m x n) of A. With G = V diag(s^2) V^T,
 *   SVT(X) = X V_r diag(1 - tau / s) V_r^T
 * over the r values above tau; the left vectors X v_j / s_j are formed only when the factors are
 * wanted. Certificate: the eigenvalues of G carry an error of about 8 n eps64 s_max^2, so the
 * answer is trusted only when that bound separates every s^2 from tau^2 and keeps each kept s^2 to
 * 1e-5 relative accuracy; otherwise `auto` goes on to Jacobi.
 */
import * as tf from '@tensorflow/tfjs-core';
import { dot } from '../dot.js';
import { lowRankPays } from '../prox.js';
import { EPS64, symmetricEigen } from '../svd.js';
import { symmetricDots } from './blocks.js';
import type { FactorPolicy, SvtResult } from './types.js';

/**
 * From this many multiply-adds (m n^2) on, the Gram path's last product X M is one float32 tfjs
 * matmul instead of float64 dot products in JavaScript: 128x64 (2^19) 1.4 -> ~0.1 ms; the whole
 * of 10x512 (51,200) 0.15 -> 0.07 ms (two XNNPACK threads; 0.13 -> 0.06 on one), while 192x9
 * (15,552) is as fast either way. Its rounding (~sqrt(n) eps32 relative) is that of the other
 * paths' float32 products.
 */
const GRAM_MATMUL_MIN = 2 ** 14;

/** The Gram path (above); null when its error bound does not settle every value. */
export async function gramSvt(
  a: Float32Array,
  rows: number,
  cols: number,
  tau: number,
  policy: FactorPolicy,
): Promise<SvtResult | null> {
  const tall = rows >= cols;
  const n = tall ? cols : rows;
  const m = tall ? rows : cols;
  // X row-major (m x n) and column-major (its n columns), in float64; every product below is a
  // dot product of contiguous rows, which V8 runs several times faster than row updates.
  const xr = new Float64Array(m * n);
  const xc = new Float64Array(m * n);
  // Element (i, p) of X is a[i * cols + p] (tall) or a[p * cols + i] (wide).
  const si = tall ? cols : 1;
  const sp = tall ? 1 : cols;
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < n; p++) {
      const x = a[i * si + p * sp]!;
      xr[i * n + p] = x;
      xc[p * m + i] = x;
    }
  }
  const { values, vt } = symmetricEigen(symmetricDots(xc, xc, n, m), n);
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => values[y]! - values[x]!);
  const s = order.map((j) => Math.sqrt(Math.max(values[j]!, 0)));
  const smax = s[0]!;
  if (smax > 0) {
    const dl = 8 * n * EPS64 * smax * smax;
    const t2 = tau * tau;
    for (let i = 0; i < n; i++) {
      const l = s[i]! * s[i]!;
      if (Math.abs(l - t2) <= dl) return null;
      if (s[i]! > tau && dl / l > 1e-5) return null;
    }
  }
  let r = 0;
  while (r < n && s[r]! > tau) r++;
  // The kept right singular vectors of X: as rows (vk, r x n) and as columns (vkRows, n x r,
  // row p holding component p of each), and that second form scaled by w_j = 1 - tau / s_j.
  const vk = new Float64Array(r * n);
  const vkRows = new Float64Array(n * r);
  const vkRowsW = new Float64Array(n * r);
  for (let j = 0; j < r; j++) {
    const src = order[j]! * n;
    const w = 1 - tau / s[j]!;
    for (let p = 0; p < n; p++) {
      const x = vt[src + p]!;
      vk[j * n + p] = x;
      vkRows[p * r + j] = x;
      vkRowsW[p * r + j] = x * w;
    }
  }
  const withFactors = policy === 'always' || lowRankPays(rows, cols, r);
  // Element (i, q) of SVT(X) goes to matrix[i * si + q * sp].
  const matrix = new Float32Array(rows * cols);
  const values64 = new Float64Array(r);
  for (let j = 0; j < r; j++) values64[j] = s[j]! - tau;
  let u: Float32Array | null = null;
  let v: Float32Array | null = null;
  if (withFactors || 2 * m * r < n * r + m * n) {
    // Y = X V_r (m x r); SVT(X) = Y diag(w) V_r^T; the left vectors are y_j / s_j.
    const y = new Float64Array(m * r);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < r; j++) y[i * r + j] = dot(xr, i * n, vk, j * n, n);
    for (let i = 0; i < m; i++)
      for (let q = 0; q < n; q++) matrix[i * si + q * sp] = dot(y, i * r, vkRowsW, q * r, r);
    if (withFactors) {
      const mSide = new Float32Array(m * r);
      for (let i = 0; i < m; i++)
        for (let j = 0; j < r; j++) mSide[i * r + j] = y[i * r + j]! / s[j]!;
      const nSide = Float32Array.from(vkRows);
      u = tall ? mSide : nSide;
      v = tall ? nSide : mSide;
    }
  } else {
    // M = V_r diag(w) V_r^T (n x n, symmetric), SVT(X) = X M, i.e. A M (tall) or M A (wide).
    const mm = symmetricDots(vkRowsW, vkRows, n, r);
    if (m * n * n >= GRAM_MATMUL_MIN) {
      const product = tf.tidy(() => {
        const a2 = tf.tensor2d(a, [rows, cols]);
        const m2 = tf.tensor2d(Float32Array.from(mm), [n, n]);
        return tall ? tf.matMul(a2, m2) : tf.matMul(m2, a2);
      });
      matrix.set((await product.data()) as Float32Array);
      product.dispose();
    } else {
      for (let i = 0; i < m; i++)
        for (let q = 0; q < n; q++) matrix[i * si + q * sp] = dot(xr, i * n, mm, q * n, n);
    }
  }
  return {
    rows,
    cols,
    rank: r,
    fullRank: n,
    values: withFactors ? values64 : null,
    u,
    v,
    matrix,
    method: 'gram',
    hint: { fullRank: r === n, rank: r },
  };
}
