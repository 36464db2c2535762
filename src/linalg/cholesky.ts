/**
 * Positive-definiteness tests by Cholesky factorisation: the certificates of svt.ts
 * ("every singular value is above tau", "no other singular value is above tau").
 */
import * as tf from '@tensorflow/tfjs-core';
import { dot } from './dot.js';

/** From this size on the trailing updates run as tfjs matmuls (float32) in blocks of 128. */
const BLOCKED_FROM = 256;
const BLOCK = 128;

/**
 * In-place Cholesky (float64) of the leading nb x nb block of the row-major `a` (stride `ld`):
 * L in the lower triangle, the upper one untouched; false if not positive definite.
 */
export function choleskyInPlace(a: Float64Array, nb: number, ld: number): boolean {
  for (let j = 0; j < nb; j++) {
    const jo = j * ld;
    const d = a[jo + j]! - dot(a, jo, a, jo, j);
    if (!(d > 0)) return false;
    const djj = Math.sqrt(d);
    a[jo + j] = djj;
    for (let i = j + 1; i < nb; i++) {
      const io = i * ld;
      a[io + j] = (a[io + j]! - dot(a, io, a, jo, j)) / djj;
    }
  }
  return true;
}

/**
 * Whether sym(h) - shift I is positive definite. `h` is row-major n x n. Small matrices are
 * factorised in float64; larger ones blockwise, with float32 trailing updates on the tfjs
 * backend (backward error about n * 2^-24 * ||h||, which the callers' margins cover).
 */
export function isPositiveDefinite(h: Float32Array, n: number, shift: number): boolean {
  if (h.length !== n * n) throw new Error(`isPositiveDefinite: ${h.length} values for ${n} x ${n}`);
  if (n < BLOCKED_FROM) {
    const l = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) l[i * n + j] = 0.5 * (h[i * n + j]! + h[j * n + i]!);
      l[i * n + i] = l[i * n + i]! - shift;
    }
    return choleskyInPlace(l, n, n);
  }
  const m0 = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) m0[i * n + j] = 0.5 * (h[i * n + j]! + h[j * n + i]!);
    m0[i * n + i] = m0[i * n + i]! - shift;
  }
  let rest: tf.Tensor2D = tf.tensor2d(m0, [n, n]);
  try {
    for (let j = 0; j < n; j += BLOCK) {
      const t = n - j;
      const nb = Math.min(BLOCK, t);
      const colT = tf.slice(rest, [0, 0], [t, nb]);
      const col = Float64Array.from(colT.dataSync());
      colT.dispose();
      if (!choleskyInPlace(col, nb, nb)) return false;
      if (t === nb) return true;
      // L21 = A21 L11^{-T}: forward substitution on every row below the diagonal block.
      const l21 = new Float32Array((t - nb) * nb);
      const row = new Float64Array(nb);
      for (let i = nb; i < t; i++) {
        const io = i * nb;
        for (let c = 0; c < nb; c++) {
          row[c] = (col[io + c]! - dot(row, 0, col, c * nb, c)) / col[c * nb + c]!;
        }
        l21.set(row, (i - nb) * nb);
      }
      const next = tf.tidy(() => {
        const l = tf.tensor2d(l21, [t - nb, nb]);
        return tf.sub(
          tf.slice(rest, [nb, nb], [t - nb, t - nb]),
          tf.matMul(l, tf.transpose(l)),
        ) as tf.Tensor2D;
      });
      rest.dispose();
      rest = next;
    }
    return true;
  } finally {
    rest.dispose();
  }
}
