/**
 * Conv2DBackpropInput for the wasm backend, as forward convolutions (the built-in one is a plain
 * loop, several times slower than XNNPACK).
 *
 * dx[n, h, w, c] = sum of dy[n, p, q, o] * W[i, j, c, o] over p*sh - top + i = h and
 * q*sw - left + j = w. Split the output rows by phase h mod sh (columns likewise): within one
 * phase, only the taps i = r, r + sh, r + 2sh, ... (r fixed by the phase) meet a row of dy, so the
 * phase is a stride-1 convolution of dy with those taps, flipped and with in/out channels swapped.
 * Stride 1 is one phase; stride s is s*s phases written interleaved into dx.
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type {
  Conv2DBackpropInputAttrs,
  KernelConfig,
  KernelFunc,
  TensorInfo,
} from '@tensorflow/tfjs-core';
import { backend_util } from '@tensorflow/tfjs-core';
import { assertFloat32, conv2d, free, heapF32, run } from './wasm.js';

type Shape4 = [number, number, number, number];

/** Where one output phase (rows or columns) reads dy, and which filter taps it uses. */
interface Phase {
  /** First filter tap of the phase; its taps are r, r + s, ..., r + (taps - 1) * s. */
  r: number;
  taps: number;
  /** dy rows cropped at the start / end, and zero rows padded at the start / end. */
  cropStart: number;
  cropEnd: number;
  padStart: number;
  padEnd: number;
}

/**
 * Phase `rho` of an axis with input size `size`, output (dy) size `outSize`, filter size `k`,
 * stride `s` and leading padding `pad`, producing `count` = ceil(size / s) rows.
 */
function phase(
  rho: number,
  size: number,
  outSize: number,
  k: number,
  s: number,
  pad: number,
): Phase {
  const count = Math.ceil(size / s);
  const r = (rho + pad) % s;
  const qoff = Math.floor((rho + pad) / s);
  const taps = r < k ? Math.ceil((k - r) / s) : 0;
  // Output row m reads dy rows m + qoff - (taps - 1) ... m + qoff.
  const first = qoff - (taps - 1);
  const last = count - 1 + qoff;
  return {
    r,
    taps,
    cropStart: Math.max(0, first),
    cropEnd: Math.max(0, outSize - 1 - last),
    padStart: Math.max(0, -first),
    padEnd: Math.max(0, last - (outSize - 1)),
  };
}

/**
 * The filter of one phase, [rows.taps, cols.taps, outChannels, inChannels]: the phase's taps of
 * `filter` in reverse order, with in and out channels swapped.
 */
function phaseFilter(
  wasm: BackendWasm,
  filter: TensorInfo,
  rows: Phase,
  cols: Phase,
  sh: number,
  sw: number,
): TensorInfo {
  const [, kw, ci, co] = filter.shape as Shape4;
  const out = wasm.makeOutput([rows.taps, cols.taps, co, ci], 'float32');
  const src = heapF32(wasm, filter);
  const dst = heapF32(wasm, out);
  let d = 0;
  for (let u = 0; u < rows.taps; u++) {
    const i = rows.r + (rows.taps - 1 - u) * sh;
    for (let v = 0; v < cols.taps; v++) {
      const j = cols.r + (cols.taps - 1 - v) * sw;
      const base = (i * kw + j) * ci * co;
      for (let o = 0; o < co; o++) {
        for (let c = 0; c < ci; c++) dst[d++] = src[base + c * co + o];
      }
    }
  }
  return out;
}

/** One phase of dx: [batch, ceil(h / sh), ceil(w / sw), inChannels], or null when it is zero. */
function phaseOutput(
  wasm: BackendWasm,
  dy: TensorInfo,
  filter: TensorInfo,
  rows: Phase,
  cols: Phase,
  sh: number,
  sw: number,
): TensorInfo | null {
  const [n, oh, ow, co] = dy.shape as Shape4;
  const height = oh - rows.cropStart - rows.cropEnd;
  const width = ow - cols.cropStart - cols.cropEnd;
  if (rows.taps === 0 || cols.taps === 0 || height <= 0 || width <= 0) return null;
  const temps: TensorInfo[] = [];
  let src = dy;
  if (height < oh || width < ow) {
    src = run(
      wasm,
      'Slice',
      { x: dy },
      { begin: [0, rows.cropStart, cols.cropStart, 0], size: [n, height, width, co] },
    );
    temps.push(src);
  }
  const w = phaseFilter(wasm, filter, rows, cols, sh, sw);
  temps.push(w);
  const out = conv2d(
    wasm,
    src,
    w,
    [rows.padStart, rows.padEnd, cols.padStart, cols.padEnd],
    [1, 1],
    [1, 1],
  );
  free(wasm, ...temps);
  return out;
}

const conv2dBackpropInput: KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = backend as BackendWasm;
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } =
    attrs as unknown as Conv2DBackpropInputAttrs;
  assertFloat32('Conv2DBackpropInput', { dy, filter });
  if (dataFormat !== 'NHWC') {
    throw new Error(`Conv2DBackpropInput (wasm): dataFormat must be 'NHWC', got '${dataFormat}'`);
  }
  const info = backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as Shape4,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight, filterWidth, padInfo } = info;
  const rowPhases = Array.from({ length: sh }, (_, rho) =>
    phase(rho, inHeight, outHeight, filterHeight, sh, padInfo.top),
  );
  const colPhases = Array.from({ length: sw }, (_, rho) =>
    phase(rho, inWidth, outWidth, filterWidth, sw, padInfo.left),
  );
  if (sh === 1 && sw === 1) {
    const out = phaseOutput(wasm, dy, filter, rowPhases[0]!, colPhases[0]!, 1, 1);
    if (out) return out;
  }

  // Several phases: each phase's rows and columns go to every sh-th row and sw-th column of dx.
  const outputs = rowPhases.map((rows) =>
    colPhases.map((cols) => phaseOutput(wasm, dy, filter, rows, cols, sh, sw)),
  );
  const dx = wasm.makeOutput(inputShape, 'float32');
  const heap = new Float32Array(heapF32(wasm, dx).buffer);
  const dxOff = wasm.getMemoryOffset(dx.dataId) / 4;
  const rowCount = Math.ceil(inHeight / sh);
  const colCount = Math.ceil(inWidth / sw);
  const c = inChannels;
  for (let rho = 0; rho < sh; rho++) {
    for (let kappa = 0; kappa < sw; kappa++) {
      const out = outputs[rho]![kappa]!;
      const srcOff = out ? wasm.getMemoryOffset(out.dataId) / 4 : 0;
      for (let b = 0; b < batchSize; b++) {
        for (let m = 0; m < rowCount; m++) {
          const h = m * sh + rho;
          if (h >= inHeight) break;
          for (let q = 0; q < colCount; q++) {
            const w = q * sw + kappa;
            if (w >= inWidth) break;
            const d = dxOff + ((b * inHeight + h) * inWidth + w) * c;
            if (out) {
              const s = srcOff + ((b * rowCount + m) * colCount + q) * c;
              heap.copyWithin(d, s, s + c);
            } else {
              heap.fill(0, d, d + c);
            }
          }
        }
      }
      if (out) free(wasm, out);
    }
  }
  return dx;
};

export const conv2dBackpropInputConfig: KernelConfig = {
  kernelName: 'Conv2DBackpropInput',
  backendName: 'wasm',
  kernelFunc: conv2dBackpropInput,
};
