/**
 * Decoding a wire parameter set to plain arrays: dense as is, sparse scattered, low-rank factors
 * multiplied back (left (rows x r) times right (r x cols), then the tensor's own layout from its
 * matrix view, which needs the model's spec for the tensor's role).
 */
import { fromMatrixArray } from '../linalg/matrix_view.js';
import type { ArrayParam, ParamArrays, ParamSpec } from '../tensor/params.js';
import { type LowRankTensor, sparseToDense, type WireParams } from './wire.js';

/** Multiplies the factors back into the tensor they encode (row-major, float32 sums). */
export function decodeLowRank(spec: ParamSpec, name: string, t: LowRankTensor): ArrayParam {
  const info = spec.find((p) => p.name === name);
  if (!info) throw new Error(`low-rank tensor '${name}' is not in the model's spec`);
  const m = new Float32Array(t.rows * t.cols);
  for (let i = 0; i < t.rows; i++) {
    for (let k = 0; k < t.rank; k++) {
      const a = t.left[i * t.rank + k]!;
      if (a === 0) continue;
      const row = k * t.cols;
      const out = i * t.cols;
      for (let j = 0; j < t.cols; j++) m[out + j] = m[out + j]! + a * t.right[row + j]!;
    }
  }
  return { shape: [...t.shape], data: fromMatrixArray(m, t.shape, info.role) };
}

/**
 * Every tensor of `wire` as plain values; low-rank ones are decoded with `spec`'s roles, and
 * refused without a spec (an algorithm that never sends factors does not expect them).
 */
export function decodeParams(wire: WireParams, spec?: ParamSpec): ParamArrays {
  const out: ParamArrays = {};
  for (const [k, t] of Object.entries(wire)) {
    if (t.kind === 'dense') out[k] = { shape: [...t.shape], data: t.data };
    else if (t.kind === 'sparse') out[k] = sparseToDense(t);
    else {
      if (!spec)
        throw new Error(`'${k}' arrived as low-rank factors, which this algorithm does not expect`);
      out[k] = decodeLowRank(spec, k, t);
    }
  }
  return out;
}
