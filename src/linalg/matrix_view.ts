/**
 * The matrix view of a parameter tensor, exactly as FEDSLR.md step 6 defines it.
 *
 * - conv kernel, tfjs layout [kh, kw, in, out]: the matrix PyTorch's [o, i, kh, kw] layout gives
 *   after swapping axes 1 and 2 and reshaping, i.e. (out * kh) x (in * kw) with
 *   `M[o * kh + a, i * kw + b] = K[a, b, i, o]` (rows: out-channel then kernel row; columns:
 *   in-channel then kernel column).
 * - dense weight [in, out]: its own matrix.
 * - biases and normalisation scales/offsets (1-D): no matrix view.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Role } from '../tensor/params.js';

/** [rows, cols] of the matrix view, or null when the role has none. */
export function matrixShape(shape: readonly number[], role: Role): [number, number] | null {
  if (role === 'conv') {
    if (shape.length !== 4) {
      throw new Error(`matrix view: conv kernel must be 4-D [kh, kw, in, out], got [${shape}]`);
    }
    const [kh, kw, ci, co] = shape as [number, number, number, number];
    return [co * kh, ci * kw];
  }
  if (role === 'dense') {
    if (shape.length !== 2) {
      throw new Error(`matrix view: dense weight must be 2-D [in, out], got [${shape}]`);
    }
    return [shape[0]!, shape[1]!];
  }
  return null;
}

/** Whether a tensor of this role has a matrix view. */
export const hasMatrixView = (role: Role): boolean => role === 'conv' || role === 'dense';

/** The matrix view as a new 2-D tensor. */
export function toMatrix(t: tf.Tensor, role: Role): tf.Tensor2D {
  const ms = matrixShape(t.shape, role);
  if (!ms) throw new Error(`matrix view: role '${role}' has no matrix view`);
  return tf.tidy(() =>
    role === 'conv'
      ? tf.reshape(tf.transpose(t, [3, 0, 2, 1]), ms)
      : (tf.reshape(t, ms) as tf.Tensor2D),
  );
}

/** The exact inverse of `toMatrix`: a tensor of `shape` (tfjs layout) from its matrix view. */
export function fromMatrix(m: tf.Tensor, shape: readonly number[], role: Role): tf.Tensor {
  const ms = matrixShape(shape, role);
  if (!ms) throw new Error(`matrix view: role '${role}' has no matrix view`);
  if (m.rank !== 2 || m.shape[0] !== ms[0] || m.shape[1] !== ms[1]) {
    throw new Error(
      `matrix view: expected a [${ms}] matrix for shape [${shape}], got [${m.shape}]`,
    );
  }
  if (role === 'dense') return m.clone();
  const [kh, kw, ci, co] = shape as [number, number, number, number];
  return tf.tidy(() => tf.transpose(tf.reshape(m, [co, kh, ci, kw]), [1, 3, 2, 0]));
}

/** `toMatrix` on plain arrays: row-major matrix values of a row-major tfjs-layout tensor. */
export function toMatrixArray(
  data: Float32Array,
  shape: readonly number[],
  role: Role,
): Float32Array {
  const ms = matrixShape(shape, role);
  if (!ms) throw new Error(`matrix view: role '${role}' has no matrix view`);
  if (data.length !== ms[0] * ms[1]) {
    throw new Error(`matrix view: ${data.length} values for shape [${shape}]`);
  }
  if (role === 'dense') return data.slice();
  const [kh, kw, ci, co] = shape as [number, number, number, number];
  const out = new Float32Array(data.length);
  const cols = ci * kw;
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      for (let i = 0; i < ci; i++) {
        const src = ((a * kw + b) * ci + i) * co;
        for (let o = 0; o < co; o++) out[(o * kh + a) * cols + i * kw + b] = data[src + o]!;
      }
    }
  }
  return out;
}

/** The inverse of `toMatrixArray`. */
export function fromMatrixArray(
  m: Float32Array,
  shape: readonly number[],
  role: Role,
): Float32Array {
  const ms = matrixShape(shape, role);
  if (!ms) throw new Error(`matrix view: role '${role}' has no matrix view`);
  if (m.length !== ms[0] * ms[1]) {
    throw new Error(`matrix view: ${m.length} values for a [${ms}] matrix`);
  }
  if (role === 'dense') return m.slice();
  const [kh, kw, ci, co] = shape as [number, number, number, number];
  const out = new Float32Array(m.length);
  const cols = ci * kw;
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      for (let i = 0; i < ci; i++) {
        const dst = ((a * kw + b) * ci + i) * co;
        for (let o = 0; o < co; o++) out[dst + o] = m[(o * kh + a) * cols + i * kw + b]!;
      }
    }
  }
  return out;
}
