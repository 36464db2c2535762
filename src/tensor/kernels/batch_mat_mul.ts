/**
 * BatchMatMul for the wasm backend. The built-in kernel uses XNNPACK only without transposes
 * (a plain loop otherwise, 10-20x slower), and XNNPACK re-packs the right operand every time it
 * is a new tensor (about 5 ns per element: 8 ms for a 3136x512 weight, more than the product).
 *
 * So each 2-D product C = op(A) op(B) is computed either as NN(op(A), op(B)) or as
 * NN(op(B)^T, op(A)^T)^T, materialising the transposes that are needed with the (fast) wasm
 * Transpose kernel, whichever moves and packs fewer elements. Batched products (batch > 1) go
 * to the built-in kernel.
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { BatchMatMulAttrs, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { broadcast_util, util } from '@tensorflow/tfjs-core';
import { builtinKernels, free, reshape, run, transpose } from './wasm.js';

/** Measured cost per element (ns) of XNNPACK packing a new right operand, and of a transpose. */
const PACK_NS = 5;
const TRANSPOSE_NS = 1;

/** Plan for C[m, n] = op(A)[m, k] op(B)[k, n]: whether to compute C^T = op(B)^T op(A)^T. */
export function productOrder(
  m: number,
  k: number,
  n: number,
  transposeA: boolean,
  transposeB: boolean,
): 'direct' | 'swapped' {
  const direct =
    (transposeA ? m * k * TRANSPOSE_NS : 0) +
    (transposeB ? k * n * TRANSPOSE_NS : 0) +
    k * n * PACK_NS;
  const swapped =
    (transposeB ? 0 : k * n * TRANSPOSE_NS) +
    (transposeA ? 0 : m * k * TRANSPOSE_NS) +
    m * k * PACK_NS +
    m * n * TRANSPOSE_NS;
  return swapped < direct ? 'swapped' : 'direct';
}

export const batchMatMul: KernelFunc = (args) => {
  const wasm = args.backend as BackendWasm;
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = args.attrs as unknown as BatchMatMulAttrs;
  const builtin = builtinKernels.get('BatchMatMul');
  if (!builtin) throw new Error('BatchMatMul (wasm): the built-in kernel was not saved');
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  if (
    a.dtype !== 'float32' ||
    b.dtype !== 'float32' ||
    util.sizeFromShape(outerA) !== 1 ||
    util.sizeFromShape(outerB) !== 1
  ) {
    return builtin.kernelFunc(args);
  }
  const [a0, a1] = a.shape.slice(-2) as [number, number];
  const [b0, b1] = b.shape.slice(-2) as [number, number];
  const [m, k] = transposeA ? [a1, a0] : [a0, a1];
  const [kb, n] = transposeB ? [b1, b0] : [b0, b1];
  if (k !== kb) {
    throw new Error(
      `BatchMatMul: inner dimensions ${k} and ${kb} of shapes [${a.shape}] and [${b.shape}] (transposeA=${transposeA}, transposeB=${transposeB}) must match`,
    );
  }
  const outShape = broadcast_util.assertAndGetBroadcastShape(outerA, outerB).concat([m, n]);
  const order = productOrder(m, k, n, transposeA, transposeB);
  if (order === 'direct' && !transposeA && !transposeB) return builtin.kernelFunc(args);

  const temps: TensorInfo[] = [];
  const matrix = (x: TensorInfo, rows: number, cols: number, flip: boolean): TensorInfo => {
    const x3 = reshape(wasm, x, flip ? [cols, rows] : [1, rows, cols]);
    temps.push(x3);
    if (!flip) return x3;
    const t = transpose(wasm, x3, [1, 0]);
    const t3 = reshape(wasm, t, [1, rows, cols]);
    temps.push(t, t3);
    return t3;
  };
  const nn = (left: TensorInfo, right: TensorInfo): TensorInfo =>
    run(wasm, 'BatchMatMul', { a: left, b: right }, { transposeA: false, transposeB: false });

  let out: TensorInfo;
  if (order === 'direct') {
    const c = nn(matrix(a, m, k, transposeA), matrix(b, k, n, transposeB));
    out = reshape(wasm, c, outShape);
    temps.push(c);
  } else {
    const ct = nn(matrix(b, n, k, !transposeB), matrix(a, k, m, !transposeA));
    const ct2 = reshape(wasm, ct, [n, m]);
    const c = transpose(wasm, ct2, [1, 0]);
    out = reshape(wasm, c, outShape);
    temps.push(ct, ct2, c);
  }
  free(wasm, ...temps);
  return out;
};

export const batchMatMulConfig: KernelConfig = {
  kernelName: 'BatchMatMul',
  backendName: 'wasm',
  kernelFunc: batchMatMul,
};
