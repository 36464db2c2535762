/**
 * The deflated polar path, for nearly full-rank matrices (a few singular values at or below tau,
 * as random square layers have). Newton-Schulz designed for [2 tau, s_max] leaves the values
 * below 2 tau unconverged, so
 *   E = I - X_K^T X_K
 * is a filter whose dominant eigenvectors are their right singular vectors. Four block
 * iterations on E (block 1.5 trace(E) + 8, at most n/4) give a basis of them; when the
 * certificates fail with it (a value a little below the band, whose E eigenvalue is too near
 * float32 rounding to resolve), the basis comes from float64 block inverse iteration on
 * G = X^T X instead (bottomBasis). A float64 Rayleigh-Ritz on X Q then gives those pairs, and the
 * converged ones are deflated: V_l (s <= tau, dropped), V_h (s > tau, kept exactly). With
 * Q = X_K (I - V_d V_d^T) + U_h V_h^T (u = X v / s),
 *   SVT(A) = A - A V_l V_l^T - tau Q,
 * certified as deflation.ts states (that file does the Rayleigh-Ritz, deflation and certificates).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../tensor/rng.js';
import { choleskyInPlace } from '../cholesky.js';
import { dot } from '../dot.js';
import { EPS64, tallColumns } from '../svd.js';
import { orthonormalize, symmetricDots, toRowMajor } from './blocks.js';
import { type Deflation, deflateAndCertify } from './deflation.js';
import { newtonSchulzSchedule, topEigen } from './polar.js';
import type { SvtResult } from './types.js';

/**
 * Newton-Schulz in the deflated path is designed to converge for singular values above
 * DEFLATE_BAND * tau; the values below it are found and thresholded exactly instead.
 */
const DEFLATE_BAND = 2;

/**
 * The deflated polar path (maths and certificates above and in deflation.ts). Null when a
 * certificate fails, a Ritz value is within rounding of tau or the block would be large.
 */
export async function deflatedPolarSvt(
  a: Float32Array,
  rows: number,
  cols: number,
  tau: number,
): Promise<SvtResult | null> {
  const tall = rows >= cols;
  const n = Math.min(rows, cols);
  const [x0, g0] = tf.tidy(() => {
    const a2 = tf.tensor2d(a, [rows, cols]);
    const x = tall ? a2 : tf.transpose(a2);
    return [x, tf.matMul(tf.transpose(x), x)] as [tf.Tensor2D, tf.Tensor2D];
  });
  const owned: tf.Tensor[] = [x0, g0];
  try {
    const gdata = (await g0.data()) as Float32Array;
    let fro2 = 0;
    for (let i = 0; i < n; i++) fro2 += gdata[i * n + i]!;
    const scale = Math.min(Math.sqrt(topEigen(gdata, n).value) * 1.05, Math.sqrt(fro2));
    const band = DEFLATE_BAND * tau;
    if (!(scale > band) || tau === 0) return null;
    const alphas = newtonSchulzSchedule((band / scale) * 0.98);
    const [xK, eK] = tf.tidy(() => {
      let x: tf.Tensor2D = tf.div(x0, scale);
      let g: tf.Tensor2D = tf.div(g0, scale * scale);
      const eye = tf.eye(n);
      for (const al of alphas) {
        x = tf.matMul(x, tf.sub(tf.mul(eye, 1.5 * al), tf.mul(g, 0.5 * al * al * al)));
        g = tf.matMul(tf.transpose(x), x);
      }
      return [x, tf.sub(eye, g)] as [tf.Tensor2D, tf.Tensor2D];
    });
    owned.push(xK, eK);
    const ed = (await eK.data()) as Float32Array;
    let trace = 0;
    for (let i = 0; i < n; i++) trace += ed[i * n + i]!;
    const b = Math.ceil(1.5 * Math.max(trace, 0)) + 8;
    if (b > n / 4) return null;
    const rng = new Rng(0xdef1 ^ (rows * 65599 + cols));
    const q = new Float64Array(n * b);
    for (let i = 0; i < q.length; i++) q[i] = rng.normal();
    orthonormalize(q, n, b);
    for (let it = 0; it < 4; it++) {
      const y = tf.tidy(() => tf.matMul(eK, tf.tensor2d(toRowMajor(q, n, b), [n, b])));
      const yd = await y.data();
      y.dispose();
      for (let j = 0; j < b; j++) for (let i = 0; i < n; i++) q[j * n + i] = yd[i * b + j]!;
      orthonormalize(q, n, b);
    }
    const problem: Deflation = { a, rows, cols, tau, scale, band, x0, xK };
    const filtered = await deflateAndCertify(problem, q, b);
    if (filtered) return filtered;
    // Values a little below the band (about 0.65-0.85 of it) leave E eigenvalues too near float32
    // rounding to be resolved by the filter, and too large for the certificates: find the bottom
    // of the spectrum in float64 instead.
    const bottom = bottomBasis(a, rows, cols, b, scale, rng);
    return bottom && (await deflateAndCertify(problem, bottom, b));
  } finally {
    tf.dispose(owned);
  }
}

/**
 * An orthonormal basis (column-major n x b) of the eigenvectors of the b smallest eigenvalues of
 * G = X^T X, to float64 accuracy: G formed in float64, six steps of block inverse iteration with
 * the Cholesky factor of G + sigma I (sigma, at G's float64 rounding, keeps exactly singular
 * matrices factorisable). Null when the factorisation fails.
 */
function bottomBasis(
  a: Float32Array,
  rows: number,
  cols: number,
  b: number,
  scale: number,
  rng: Rng,
): Float64Array | null {
  // The columns of X as rows, so that G's entries are dot products of contiguous rows.
  const [xc, m, n] = tallColumns(a, rows, cols);
  const l = symmetricDots(xc, xc, n, m);
  const sigma = 64 * n * EPS64 * scale * scale;
  for (let i = 0; i < n; i++) l[i * n + i] = l[i * n + i]! + sigma;
  if (!choleskyInPlace(l, n, n)) return null;
  const q = new Float64Array(n * b);
  for (let i = 0; i < q.length; i++) q[i] = rng.normal();
  orthonormalize(q, n, b);
  for (let it = 0; it < 6; it++) {
    for (let j = 0; j < b; j++) solveCholesky(l, n, q, j * n);
    orthonormalize(q, n, b);
  }
  return q;
}

/**
 * Solves L L^T z = x in place for x = y[yo .. yo + n), L the lower triangle of the row-major
 * n x n `l` (what choleskyInPlace leaves there).
 */
function solveCholesky(l: Float64Array, n: number, y: Float64Array, yo: number): void {
  for (let i = 0; i < n; i++) y[yo + i] = (y[yo + i]! - dot(l, i * n, y, yo, i)) / l[i * n + i]!;
  // L^T z = y from the last row up: once z_i is known, z_i times row i of L leaves the rows above.
  for (let i = n - 1; i >= 0; i--) {
    const z = y[yo + i]! / l[i * n + i]!;
    y[yo + i] = z;
    const o = i * n;
    for (let k = 0; k < i; k++) y[yo + k] = y[yo + k]! - l[o + k]! * z;
  }
}
