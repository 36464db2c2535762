/**
 * Sum for the wasm backend when it reduces leading axes, as every bias gradient does (dy summed
 * over the batch and the positions). The built-in kernel first transposes the reduced axes to
 * the end (2.3 ms for [20, 28, 28, 32] over its first three axes). Here the input is read as
 * rows of `cols` values summed column by column: for each output element a float32 running sum
 * from 0 over its inputs in order, which is exactly what the built-in computes after its
 * transpose, so results are bit for bit the same (up to the sign of a NaN made from inf - inf,
 * which wasm and JavaScript set differently). Other reductions, and non-float32 inputs, go to the
 * built-in kernel.
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { KernelConfig, KernelFunc, SumAttrs, TensorInfo } from '@tensorflow/tfjs-core';
import { util } from '@tensorflow/tfjs-core';
import { builtinKernels, heapF32 } from './wasm.js';

const sum: KernelFunc = (args) => {
  const wasm = args.backend as BackendWasm;
  const { x } = args.inputs as { x: TensorInfo };
  const { axis, keepDims } = args.attrs as unknown as SumAttrs;
  const builtin = builtinKernels.get('Sum');
  if (!builtin) throw new Error('Sum (wasm): the built-in kernel was not saved');
  // The built-in sums in the order the axes are given (it moves them to the end in that order),
  // so only [0, 1, .., k-1] in this order is the row-major order used here.
  const axes = util.parseAxisParam(axis, x.shape);
  const k = axes.length;
  const leading = axes.every((a, i) => a === i);
  if (x.dtype !== 'float32' || k === 0 || k === x.shape.length || !leading) {
    return builtin.kernelFunc(args);
  }
  const rows = util.sizeFromShape(x.shape.slice(0, k));
  const cols = util.sizeFromShape(x.shape.slice(k));
  const outShape = keepDims ? x.shape.map((d, i) => (i < k ? 1 : d)) : x.shape.slice(k);
  const out = wasm.makeOutput(outShape, 'float32');
  columnSums(heapF32(wasm, x), heapF32(wasm, out), rows, cols);
  return out;
};

const f32 = Math.fround;
/** Rows per block: a block of the input stays in L1 while four columns at a time are summed. */
const BLOCK_ROWS = 64;

/**
 * acc[c] = float32 running sum of src[r * cols + c] over r = 0, 1, .. in order. Four columns at
 * a time keep their sums in registers over a block of rows (twice as fast as adding each row
 * into `acc`); the order of the additions per column is unchanged.
 */
function columnSums(src: Float32Array, acc: Float32Array, rows: number, cols: number): void {
  acc.fill(0);
  for (let r0 = 0; r0 < rows; r0 += BLOCK_ROWS) {
    const r1 = Math.min(rows, r0 + BLOCK_ROWS);
    let c = 0;
    for (; c + 3 < cols; c += 4) {
      let s0 = acc[c]!;
      let s1 = acc[c + 1]!;
      let s2 = acc[c + 2]!;
      let s3 = acc[c + 3]!;
      for (let i = r0 * cols + c; i < r1 * cols; i += cols) {
        s0 = f32(s0 + src[i]!);
        s1 = f32(s1 + src[i + 1]!);
        s2 = f32(s2 + src[i + 2]!);
        s3 = f32(s3 + src[i + 3]!);
      }
      acc[c] = s0;
      acc[c + 1] = s1;
      acc[c + 2] = s2;
      acc[c + 3] = s3;
    }
    for (; c < cols; c++) {
      let s = acc[c]!;
      for (let i = r0 * cols + c; i < r1 * cols; i += cols) s = f32(s + src[i]!);
      acc[c] = s;
    }
  }
}

export const sumConfig: KernelConfig = {
  kernelName: 'Sum',
  backendName: 'wasm',
  kernelFunc: sum,
};
