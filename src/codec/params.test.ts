/**
 * Decoding wire parameter sets: dense as is, sparse scattered, low-rank factors multiplied out in
 * float64 here and laid back through the matrix view (a dense kernel is its own view; a conv
 * kernel's view is checked with toMatrixArray, matrix_view.ts's own tested function).
 */
import { describe, expect, it } from 'vitest';
import { toMatrixArray } from '../linalg/matrix_view.js';
import type { ParamSpec } from '../tensor/params.js';
import { decodeLowRank, decodeParams } from './params.js';
import type { LowRankTensor, WireParams } from './wire.js';

const spec: ParamSpec = [
  { name: 'conv.kernel', shape: [2, 2, 1, 3], role: 'conv' },
  { name: 'fc.kernel', shape: [3, 4], role: 'dense' },
  { name: 'fc.bias', shape: [4], role: 'bias' },
];

/** left (rows x rank) times right (rank x cols), row-major, in float64. */
function product(t: LowRankTensor): number[] {
  const m: number[] = [];
  for (let i = 0; i < t.rows; i++)
    for (let j = 0; j < t.cols; j++) {
      let v = 0;
      for (let k = 0; k < t.rank; k++) v += t.left[i * t.rank + k]! * t.right[k * t.cols + j]!;
      m.push(v);
    }
  return m;
}

const f32 = (xs: number[]) => Float32Array.from(xs);
const close = (xs: ArrayLike<number>) => Array.from(xs).map((x) => expect.closeTo(x, 6));

// fc.kernel [3, 4] at rank 2; conv.kernel [2, 2, 1, 3]: matrix view [out * kh, in * kw] = [6, 2].
const fc: LowRankTensor = {
  kind: 'lowrank',
  shape: [3, 4],
  rows: 3,
  cols: 4,
  rank: 2,
  left: f32([1, 0.5, -2, 0, 0, 3]),
  right: f32([0.1, 0.2, 0.3, 0.4, -1, 0, 1, 2]),
};
const conv: LowRankTensor = {
  kind: 'lowrank',
  shape: [2, 2, 1, 3],
  rows: 6,
  cols: 2,
  rank: 1,
  left: f32([1, -1, 2, 0.5, 0, 3]),
  right: f32([0.25, -4]),
};

describe('decodeLowRank', () => {
  it('multiplies the factors into a dense kernel, every rank summed', () => {
    const out = decodeLowRank(spec, 'fc.kernel', fc);
    expect(out.shape).toEqual([3, 4]);
    expect(out.shape).not.toBe(fc.shape);
    // Row 2 is 0 * right[0] + 3 * right[1]: only the second rank contributes.
    expect(Array.from(out.data)).toEqual(close(product(fc)));
    expect(Array.from(out.data.subarray(8))).toEqual(close([-3, 0, 3, 6]));
  });

  it("lays a conv kernel's matrix back into its own layout", () => {
    const out = decodeLowRank(spec, 'conv.kernel', conv);
    expect(out.shape).toEqual([2, 2, 1, 3]);
    expect(Array.from(toMatrixArray(out.data, out.shape, 'conv'))).toEqual(close(product(conv)));
    // The view is not the layout: the raw product would be a different tensor.
    expect(Array.from(out.data)).not.toEqual(close(product(conv)));
  });

  it("refuses a tensor the model's spec does not name", () => {
    expect(() => decodeLowRank(spec, 'fc2.kernel', fc)).toThrow(
      "low-rank tensor 'fc2.kernel' is not in the model's spec",
    );
  });
});

describe('decodeParams', () => {
  const wire: WireParams = {
    'fc.bias': { kind: 'dense', shape: [4], data: f32([1, 2, 3, 4]) },
    'fc.kernel': fc,
    'conv.kernel': {
      kind: 'sparse',
      shape: [2, 2, 1, 3],
      indices: Uint32Array.from([0, 11]),
      values: f32([5, -6]),
    },
  };

  it('decodes dense, sparse and low-rank tensors by kind', () => {
    const out = decodeParams(wire, spec);
    expect(Object.keys(out)).toEqual(['fc.bias', 'fc.kernel', 'conv.kernel']);
    expect(out['fc.bias']).toEqual({ shape: [4], data: f32([1, 2, 3, 4]) });
    expect(Array.from(out['fc.kernel']!.data)).toEqual(close(product(fc)));
    expect(out['conv.kernel']).toEqual({
      shape: [2, 2, 1, 3],
      data: f32([5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -6]),
    });
  });

  it('refuses low-rank factors when no spec is given, naming the tensor', () => {
    const { 'fc.kernel': _, ...plain } = wire;
    expect(Object.keys(decodeParams(plain))).toEqual(['fc.bias', 'conv.kernel']);
    expect(() => decodeParams(wire)).toThrow(
      "'fc.kernel' arrived as low-rank factors, which this algorithm does not expect",
    );
  });
});
