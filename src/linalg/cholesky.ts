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
 * Inverse of the lower-triangular nb x nb `l` (row-major, upper triangle ignored), in float64, row
 * by row: row i of the inverse is -(sum over k < i of l[i][k] * row k) / l[i][i], plus 1 / l[i][i]
 * on the diagonal, so every inner loop runs along contiguous rows.
 */
function lowerInverse(l: Float64Array, nb: number): Float64Array {
  const inv = new Float64Array(nb * nb);
  for (let i = 0; i < nb; i++) {
    const io = i * nb;
    for (let k = 0; k < i; k++) {
      const c = l[io + k]!;
      const ko = k * nb;
      for (let j = 0; j <= k; j++) inv[io + j] = inv[io + j]! - c * inv[ko + j]!;
    }
    const d = l[io + i]!;
    for (let j = 0; j < i; j++) inv[io + j] = inv[io + j]! / d;
    inv[io + i] = 1 / d;
  }
  return inv;
}

/**
 * The lower triangle of sym(h) - shift I written into `out` (row-major n x n; the upper triangle is
 * left as it was: the factorisations never read it), walked in square tiles so that h's transpose is
 * read from cache.
 */
function shiftedLowerSym<T extends Float32Array | Float64Array>(
  h: Float32Array,
  n: number,
  shift: number,
  out: T,
): T {
  const tile = 64;
  for (let ib = 0; ib < n; ib += tile) {
    const ie = Math.min(ib + tile, n);
    for (let jb = 0; jb <= ib; jb += tile) {
      for (let i = ib; i < ie; i++) {
        const je = Math.min(jb + tile, i + 1);
        for (let j = jb; j < je; j++) out[i * n + j] = 0.5 * (h[i * n + j]! + h[j * n + i]!);
      }
    }
  }
  for (let i = 0; i < n; i++) out[i * n + i] = out[i * n + i]! - shift;
  return out;
}

/**
 * Whether sym(h) - shift I is positive definite. `h` is row-major n x n. Small matrices are
 * factorised in float64. Larger ones blockwise: each diagonal block in float64; the panel below it,
 * L21 = A21 L11^{-T}, as a float32 tfjs product with L11's float64 inverse plus one step of
 * iterative refinement (the product alone leaves a residual of about cond(L11) * 2^-24 * ||A21||;
 * the refinement brings it back to float32 rounding of A21 unless cond(L11) nears 2^24); the
 * trailing update A22 - L21 L21^T in float32 (backward error about n * 2^-24 * ||h||, which the
 * callers' margins cover).
 */
export async function isPositiveDefinite(
  h: Float32Array,
  n: number,
  shift: number,
): Promise<boolean> {
  if (h.length !== n * n) throw new Error(`isPositiveDefinite: ${h.length} values for ${n} x ${n}`);
  if (n < BLOCKED_FROM) {
    return choleskyInPlace(shiftedLowerSym(h, n, shift, new Float64Array(n * n)), n, n);
  }
  const lower = shiftedLowerSym(h, n, shift, new Float32Array(n * n));
  let rest: tf.Tensor2D = tf.tensor2d(lower, [n, n]);
  try {
    for (let j = 0; j < n; j += BLOCK) {
      const t = n - j;
      const nb = Math.min(BLOCK, t);
      const diagT = tf.slice(rest, [0, 0], [nb, nb]);
      const diag = await diagT.data();
      diagT.dispose();
      const l11 = Float64Array.from(diag);
      if (!choleskyInPlace(l11, nb, nb)) return false;
      if (t === nb) return true;
      for (let i = 0; i < nb; i++) l11.fill(0, i * nb + i + 1, (i + 1) * nb);
      const inv = lowerInverse(l11, nb);
      const next = tf.tidy(() => {
        const a21 = tf.slice(rest, [nb, 0], [t - nb, nb]);
        const invT = tf.tensor2d(Float32Array.from(inv), [nb, nb]);
        const first = tf.matMul(a21, invT, false, true);
        const residual = tf.sub(
          a21,
          tf.matMul(first, tf.tensor2d(Float32Array.from(l11), [nb, nb]), false, true),
        );
        const l21 = tf.add(first, tf.matMul(residual, invT, false, true));
        return tf.sub(
          tf.slice(rest, [nb, nb], [t - nb, t - nb]),
          tf.matMul(l21, l21, false, true),
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
