/**
 * Conv2DBackpropFilter for the webgpu backend, as one tiled matrix product over the batch.
 *
 * dW[i, j, c, o] = sum over (n, p, q) of x[n, p*sh - top + i, q*sw - left + j, c] * dy[n, p, q, o],
 * that is dW = A^T B with rows m = (i, j, c) of the filter (M = kh*kw*ci), columns o (N = co) and
 * the reduction over k = (n, p, q) (K = batch * outHeight * outWidth): A[k, m] is the input value
 * tap m reads at output position k (0 in the padding), B = dy as a [K, N] matrix.
 *
 * tfjs's own kernel gives each of the M*N outputs one thread that walks all of K alone: on the
 * cnn, M*N is 800 threads for a K of 15680. Here a workgroup of 16x16 threads computes a 32x32
 * tile of dW (2x2 per thread) over one slice of K, loading 32x32 tiles of A (gathered from x on
 * the fly, no im2col buffer) and of B into workgroup memory; the K slices ("split K") give a GPU
 * enough workgroups when M*N is small, and a Sum over the slices adds their partial products.
 * Supports NHWC (what fedslr's models use); NCHW goes to tfjs's kernel.
 */
import type {
  Conv2DBackpropFilterAttrs,
  KernelConfig,
  KernelFunc,
  TensorInfo,
} from '@tensorflow/tfjs-core';
import { backend_util } from '@tensorflow/tfjs-core';
import { runBuiltin, type WebgpuBackend, type WebgpuProgram } from './webgpu.js';

/** Output tile (rows and columns of dW) of one workgroup, and the K step of its loop. */
const TILE = 32;
/** At least this many K values per slice, so a slice's loads pay for its partial sums. */
const MIN_SLICE = 128;
/** Enough workgroups to occupy a large GPU (an H100/H200 has 132 multiprocessors). */
const TARGET_WORKGROUPS = 256;

/** How many slices K is cut into, and the length of each (a multiple of the tile). */
export function splitK(m: number, n: number, k: number): { slices: number; chunk: number } {
  const tiles = Math.ceil(m / TILE) * Math.ceil(n / TILE);
  const want = Math.max(
    1,
    Math.min(Math.ceil(TARGET_WORKGROUPS / tiles), Math.floor(k / MIN_SLICE)),
  );
  const chunk = Math.ceil(Math.ceil(k / want) / TILE) * TILE;
  return { slices: Math.ceil(k / chunk), chunk };
}

class FilterGradientProgram implements WebgpuProgram {
  readonly variableNames = ['x', 'dy'];
  readonly uniforms =
    'M : i32, N : i32, K : i32, chunk : i32, steps : i32, ci : i32, kw : i32, inH : i32, inW : i32, outH : i32, outW : i32, sh : i32, sw : i32, top : i32, left : i32,';
  readonly workgroupSize: [number, number, number] = [16, 16, 1];
  readonly dispatchLayout = { x: [2], y: [1], z: [0] };
  readonly dispatch: [number, number, number];
  readonly outputShape: number[];
  readonly shaderKey = 'fedslrConv2DBackpropFilterTiled';

  constructor(m: number, n: number, slices: number) {
    this.outputShape = [slices, m, n];
    this.dispatch = [Math.ceil(n / TILE), Math.ceil(m / TILE), slices];
  }

  getUserCode(): string {
    return `
      var<workgroup> tileA : array<array<f32, ${TILE}>, ${TILE}>;
      var<workgroup> tileB : array<array<f32, ${TILE}>, ${TILE}>;

      // A[k, m]: the input value filter tap m = (i, j, c) reads at output position k = (b, p, q).
      fn loadA(k : i32, m : i32, kEnd : i32) -> f32 {
        if (k >= kEnd || m >= uniforms.M) { return 0.0; }
        let q = k % uniforms.outW;
        let bp = k / uniforms.outW;
        let p = bp % uniforms.outH;
        let b = bp / uniforms.outH;
        let c = m % uniforms.ci;
        let ij = m / uniforms.ci;
        let j = ij % uniforms.kw;
        let i = ij / uniforms.kw;
        let row = p * uniforms.sh - uniforms.top + i;
        let col = q * uniforms.sw - uniforms.left + j;
        if (row < 0 || row >= uniforms.inH || col < 0 || col >= uniforms.inW) { return 0.0; }
        return x[((b * uniforms.inH + row) * uniforms.inW + col) * uniforms.ci + c];
      }

      fn loadB(k : i32, o : i32, kEnd : i32) -> f32 {
        if (k >= kEnd || o >= uniforms.N) { return 0.0; }
        return dy[k * uniforms.N + o];
      }

      fn main() {
        let tx = i32(localId.x);
        let ty = i32(localId.y);
        let n0 = i32(workgroupId.x) * ${TILE};
        let m0 = i32(workgroupId.y) * ${TILE};
        let slice = i32(workgroupId.z);
        let kStart = slice * uniforms.chunk;
        let kEnd = min(kStart + uniforms.chunk, uniforms.K);
        var acc00 = 0.0;
        var acc01 = 0.0;
        var acc10 = 0.0;
        var acc11 = 0.0;
        // The trip count comes from uniforms only, so the barriers are in uniform control flow.
        for (var t = 0; t < uniforms.steps; t++) {
          let k0 = kStart + t * ${TILE};
          for (var e = i32(localIndex); e < ${TILE * TILE}; e += 256) {
            let kk = e / ${TILE};
            let col = e % ${TILE};
            tileA[kk][col] = loadA(k0 + kk, m0 + col, kEnd);
            tileB[kk][col] = loadB(k0 + kk, n0 + col, kEnd);
          }
          workgroupBarrier();
          for (var kk = 0; kk < ${TILE}; kk++) {
            let a0 = tileA[kk][2 * ty];
            let a1 = tileA[kk][2 * ty + 1];
            let b0 = tileB[kk][2 * tx];
            let b1 = tileB[kk][2 * tx + 1];
            acc00 += a0 * b0;
            acc01 += a0 * b1;
            acc10 += a1 * b0;
            acc11 += a1 * b1;
          }
          workgroupBarrier();
        }
        let m = m0 + 2 * ty;
        let o = n0 + 2 * tx;
        let base = slice * uniforms.M * uniforms.N;
        if (m < uniforms.M && o < uniforms.N) { result[base + m * uniforms.N + o] = acc00; }
        if (m < uniforms.M && o + 1 < uniforms.N) { result[base + m * uniforms.N + o + 1] = acc01; }
        if (m + 1 < uniforms.M && o < uniforms.N) { result[base + (m + 1) * uniforms.N + o] = acc10; }
        if (m + 1 < uniforms.M && o + 1 < uniforms.N) { result[base + (m + 1) * uniforms.N + o + 1] = acc11; }
      }
    `;
  }
}

function conv2dBackpropFilter(args: {
  inputs: { x: TensorInfo; dy: TensorInfo };
  backend: WebgpuBackend;
  attrs: Conv2DBackpropFilterAttrs;
}): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x, dy } = inputs;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs;
  if (dataFormat === 'NCHW') return runBuiltin(backend, 'Conv2DBackpropFilter', { x, dy }, attrs);
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const [kh, kw, ci, co] = filterShape;
  const m = kh * kw * ci;
  const k = info.batchSize * info.outHeight * info.outWidth;
  const { slices, chunk } = splitK(m, co, k);
  const program = new FilterGradientProgram(m, co, slices);
  const ints = [
    m,
    co,
    k,
    chunk,
    chunk / TILE,
    ci,
    kw,
    info.inHeight,
    info.inWidth,
    info.outHeight,
    info.outWidth,
    info.strideHeight,
    info.strideWidth,
    info.padInfo.top,
    info.padInfo.left,
  ];
  const partial = backend.runWebGPUProgram(
    program,
    [x, dy],
    'float32',
    ints.map((v) => ({ type: 'int32', data: [v] })),
  );
  const summed =
    slices === 1
      ? partial
      : runBuiltin(backend, 'Sum', { x: partial }, { axis: [0], keepDims: false });
  const out = runBuiltin(backend, 'Reshape', { x: summed }, { shape: filterShape });
  if (summed !== partial) backend.disposeData(summed.dataId);
  backend.disposeData(partial.dataId);
  return out;
}

export const conv2dBackpropFilterConfig: KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: 'webgpu',
  kernelFunc: conv2dBackpropFilter as unknown as KernelFunc,
};
