/**
 * The deflated polar path's second half and its certificates. Given an orthonormal basis Q of
 * (approximately) the bottom right singular vectors, a float64 Rayleigh-Ritz on X Q gives pairs
 * (s, v); those whose float64 residual ||X^T X v - s^2 v|| is at float32 rounding are deflated:
 * V_l (s <= tau, dropped) and V_h (s > tau, kept exactly). With
 *   Q = X_K (I - V_d V_d^T) + U_h V_h^T   (u = X v / s),
 *   SVT(A) = A - A V_l V_l^T - tau Q.
 * Certificates: Q^T Q equals I - V_l V_l^T to 64 sqrt(m) eps32, and
 * sym(Q^T X) + 2 s_max V_l V_l^T - tau I passes Cholesky. Since v^T Q^T X v <= ||Q v|| ||X v||,
 * that proves n - l singular values above tau; by interlacing, each of the l dropped Ritz values
 * (at or below tau) bounds a singular value from above, so exactly l are at or below tau. Kept
 * pairs within float32 rounding of tau are lifted out like the dropped ones and certified in
 * float64 from their residuals (see deflateAndCertify).
 */
import * as tf from '@tensorflow/tfjs-core';
import { isPositiveDefinite } from '../cholesky.js';
import { EPS64, symmetricEigen } from '../svd.js';
import { EPS32, gramOfColumns } from './blocks.js';
import type { SvtResult } from './types.js';

/** Y = X B in float64: X the tall orientation of the row-major float32 `a`, B row-major n x k. */
function timesX(
  a: Float32Array,
  rows: number,
  cols: number,
  b: Float64Array,
  k: number,
): Float64Array {
  const tall = rows >= cols;
  const m = Math.max(rows, cols);
  const y = new Float64Array(m * k);
  for (let r = 0; r < rows; r++) {
    const ao = r * cols;
    for (let c = 0; c < cols; c++) {
      const x = a[ao + c]!;
      if (x === 0) continue;
      // X[i, j] = a[r, c] with (i, j) = (r, c) when tall, (c, r) when wide.
      const [i, j] = tall ? [r, c] : [c, r];
      const yo = i * k;
      const bo = j * k;
      for (let q = 0; q < k; q++) y[yo + q] = y[yo + q]! + x * b[bo + q]!;
    }
  }
  return y;
}

/** Z = X^T Y in float64 for Y row-major m x k (X as in timesX). */
function timesXT(
  a: Float32Array,
  rows: number,
  cols: number,
  y: Float64Array,
  k: number,
): Float64Array {
  const tall = rows >= cols;
  const n = Math.min(rows, cols);
  const z = new Float64Array(n * k);
  for (let r = 0; r < rows; r++) {
    const ao = r * cols;
    for (let c = 0; c < cols; c++) {
      const x = a[ao + c]!;
      if (x === 0) continue;
      const [i, j] = tall ? [r, c] : [c, r];
      const zo = j * k;
      const yo = i * k;
      for (let q = 0; q < k; q++) z[zo + q] = z[zo + q]! + x * y[yo + q]!;
    }
  }
  return z;
}

/** What deflateAndCertify needs of the deflated polar path's state. */
export interface Deflation {
  a: Float32Array;
  rows: number;
  cols: number;
  tau: number;
  scale: number;
  band: number;
  /** The tall orientation X of `a`, and the last Newton-Schulz iterate. */
  x0: tf.Tensor2D;
  xK: tf.Tensor2D;
}

/**
 * The deflated polar path's second half: Rayleigh-Ritz on X Q (Q the column-major n x b basis
 * `q`), deflation of the converged pairs below the band, the thresholded matrix and its two
 * certificates. Null when a certificate fails or a Ritz value is within rounding of tau.
 */
export async function deflateAndCertify(
  d: Deflation,
  q: Float64Array,
  b: number,
): Promise<SvtResult | null> {
  const { a, rows, cols, tau, scale, band, x0, xK } = d;
  const tall = rows >= cols;
  const n = Math.min(rows, cols);
  const m = Math.max(rows, cols);
  const owned: tf.Tensor[] = [];
  try {
    // Rayleigh-Ritz on X Q in float64; the pairs below the band are deflated.
    const qRows = new Float64Array(n * b);
    for (let j = 0; j < b; j++) for (let i = 0; i < n; i++) qRows[i * b + j] = q[j * n + i]!;
    const { values, vt } = symmetricEigen(gramOfColumns(timesX(a, rows, cols, qRows, b), m, b), b);
    const cand = Array.from({ length: b }, (_, j) => j).filter((j) => values[j]! < band * band);
    // Candidate pairs (n x c, row-major, float64) and their residuals for G = X^T X; only the
    // converged ones (residual at float32 rounding of G) are deflated. A value near the band may
    // have been left mixed in the block; it then stays with the polar part, whose certificates
    // below check that it converged there.
    const c0 = cand.length;
    const vc = new Float64Array(n * c0);
    cand.forEach((j, c) => {
      for (let p = 0; p < b; p++) {
        const w = vt[j * b + p]!;
        for (let i = 0; i < n; i++) vc[i * c0 + c] = vc[i * c0 + c]! + qRows[i * b + p]! * w;
      }
    });
    const xc = timesX(a, rows, cols, vc, c0);
    const gc = timesXT(a, rows, cols, xc, c0);
    const tol = 16 * Math.sqrt(m) * EPS32 * scale * scale;
    const keep: number[] = [];
    const residual: number[] = [];
    for (let c = 0; c < c0; c++) {
      const l = Math.max(values[cand[c]!]!, 0);
      let r2 = 0;
      for (let i = 0; i < n; i++) r2 += (gc[i * c0 + c]! - vc[i * c0 + c]! * l) ** 2;
      // s^2 is within the residual (plus float64 rounding) of an eigenvalue of X^T X.
      const dl = Math.sqrt(r2) + 8 * m * EPS64 * scale * scale;
      residual[c] = dl;
      if (dl > tol) continue;
      keep.push(c);
    }
    if (keep.length === 0) return null;
    // Deflated pairs at or below tau (dropped) and above it (kept exactly: s - tau).
    const sOf = (c: number) => Math.sqrt(Math.max(values[cand[c]!]!, 0));
    if (keep.some((c) => Math.abs(sOf(c) - tau) <= 64 * m * EPS64 * scale)) return null;
    const lowCols = keep.filter((c) => sOf(c) <= tau);
    const highCols = keep.filter((c) => sOf(c) > tau);
    // Kept pairs too close to tau for the float32 certificate below (its margin is at most
    // `marginMax`) are certified in float64 instead.
    const marginMax = (64 * tau + 8 * scale) * Math.sqrt(m) * EPS32;
    const nearCols = highCols.filter((c) => sOf(c) < tau + 4 * marginMax);
    const lifted = [...lowCols, ...nearCols];
    const columns = (y: Float64Array, rowsOf: number, cs: number[], f?: (c: number) => number) => {
      const out = new Float32Array(rowsOf * cs.length);
      for (let i = 0; i < rowsOf; i++)
        cs.forEach((c, k) => {
          out[i * cs.length + k] = y[i * c0 + c]! * (f ? f(c) : 1);
        });
      return tf.tensor2d(out, [rowsOf, cs.length]);
    };
    const [orthT, hT, outT] = tf.tidy(() => {
      const vd = columns(vc, n, keep);
      // Q = X_K on the complement of V_d, u v^T (u = X v / s) on the deflated pairs above tau:
      // orthonormal except on the dropped pairs, where it is zero.
      let q = tf.sub(xK, tf.matMul(tf.matMul(xK, vd), vd, false, true));
      let expected = tf.eye(n) as tf.Tensor2D;
      let drop: tf.Tensor2D = tf.zeros([m, n]);
      if (highCols.length)
        q = tf.add(
          q,
          tf.matMul(
            columns(xc, m, highCols, (c) => 1 / sOf(c)),
            columns(vc, n, highCols),
            false,
            true,
          ),
        );
      let h = tf.matMul(q, x0, true, false);
      if (lifted.length) {
        const vs = columns(vc, n, lifted);
        h = tf.add(h, tf.mul(tf.matMul(vs, vs, false, true), 2 * scale));
      }
      if (lowCols.length) {
        const vl = columns(vc, n, lowCols);
        expected = tf.sub(expected, tf.matMul(vl, vl, false, true));
        drop = tf.matMul(columns(xc, m, lowCols), vl, false, true);
      }
      const orth = tf.max(tf.abs(tf.sub(tf.matMul(q, q, true, false), expected)));
      // SVT(X) = X - (dropped pairs) - tau Q.
      const out = tf.sub(tf.sub(x0, drop), tf.mul(q, tau));
      return [orth, h, tall ? out : tf.transpose(out)];
    });
    owned.push(orthT, hT, outT);
    const orth = (await orthT.data())[0]!;
    if (!(orth <= 64 * Math.sqrt(m) * EPS32)) return null;
    // v^T Q^T X v <= ||Q v|| ||X v||, so sym(Q^T X) + 2 s_max P_lifted > (tau + margin) I
    // proves ||X v|| > tau ||v|| on the complement C of the lifted pairs (the margin covers the
    // float32 rounding), i.e. n - #lifted singular values above tau. Pairs near tau (V_n) join C
    // when the certificate leaves a second margin: then ||X c|| >= (tau + margin) ||c|| on C and,
    // for v = c + w with w in span(V_n), ||X v||^2 >= (tau + margin)^2 ||c||^2 + (min theta_n -
    // R) ||w||^2 - 2 R ||c|| ||w||, R the norm of their float64 residuals, which exceeds
    // tau^2 ||v||^2 when R^2 < gapC gapN. So n - #low values are above tau; interlacing (each
    // dropped Ritz value bounds a singular value from above) proves #low at or below it.
    const margin = tau * orth + 8 * Math.sqrt(m) * EPS32 * scale;
    const extra = nearCols.length ? margin : 0;
    const h = (await hT.data()) as Float32Array;
    if (!(await isPositiveDefinite(h, n, tau + margin + extra))) return null;
    if (nearCols.length) {
      const r = Math.hypot(...nearCols.map((c) => residual[c]!));
      const gapC = (tau + margin) ** 2 - tau * tau;
      const gapN = Math.min(...nearCols.map((c) => values[cand[c]!]!)) - r - tau * tau;
      if (!(gapN > 0 && r * r < gapC * gapN)) return null;
    }
    const rank = n - lowCols.length;
    const matrix = (await outT.data()) as Float32Array;
    return {
      rows,
      cols,
      rank,
      fullRank: n,
      values: null,
      u: null,
      v: null,
      matrix,
      method: 'polar',
      polarOrthError: orth,
      hint: { fullRank: rank === n, rank },
    };
  } finally {
    tf.dispose(owned);
  }
}
