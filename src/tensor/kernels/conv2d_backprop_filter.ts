/**
 * Conv2DBackpropFilter for the wasm backend (which has none), as one forward convolution.
 *
 * dW[i, j, c, o] = sum over (n, p, q) of x[n, p*sh - top + i, q*sw - left + j, c] * dy[n, p, q, o].
 * With x seen as [c, h, w, n] (channels as the batch, the batch as channels) and dy as a filter
 * [p, q, n, o], this is a convolution with dilation = stride whose output is [c, kh, kw, o]:
 * XNNPACK does it at forward-convolution speed. A 1x1 filter is a plain product instead:
 * dW = x_s^T dy, with x_s the input rows and columns the strided filter reads.
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type {
  Conv2DBackpropFilterAttrs,
  KernelConfig,
  KernelFunc,
  TensorInfo,
} from '@tensorflow/tfjs-core';
import { backend_util } from '@tensorflow/tfjs-core';
import { batchMatMul } from './batch_mat_mul.js';
import {
  assertFloat32,
  conv2d,
  free,
  heapF32,
  reshape,
  run,
  subsample,
  transpose,
} from './wasm.js';

type Shape4 = [number, number, number, number];

/** First and last output index whose (1x1) filter tap lands inside the input. */
function validRange(
  outSize: number,
  inSize: number,
  stride: number,
  pad: number,
): [number, number] {
  return [Math.ceil(pad / stride), Math.min(outSize - 1, Math.floor((inSize - 1 + pad) / stride))];
}

/** The 1x1 case: dW[0, 0] = x_s^T dy over the output positions that read the input. */
function pointwise(
  wasm: BackendWasm,
  x: TensorInfo,
  dy: TensorInfo,
  info: backend_util.Conv2DInfo,
): TensorInfo {
  const { batchSize: n, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { strideHeight: sh, strideWidth: sw, padInfo } = info;
  const [p0, p1] = validRange(outHeight, inHeight, sh, padInfo.top);
  const [q0, q1] = validRange(outWidth, inWidth, sw, padInfo.left);
  const rows = p1 - p0 + 1;
  const cols = q1 - q0 + 1;
  if (rows <= 0 || cols <= 0) {
    // Every tap lands in the padding: the gradient is zero.
    const zeros = wasm.makeOutput([1, 1, inChannels, outChannels], 'float32');
    heapF32(wasm, zeros).fill(0);
    return zeros;
  }
  const temps: TensorInfo[] = [];
  let xs = x;
  if (rows !== inHeight || cols !== inWidth) {
    const top = p0 * sh - padInfo.top;
    const left = q0 * sw - padInfo.left;
    xs = subsample(wasm, x, top, left, rows, cols, sh, sw);
    temps.push(xs);
  }
  let dys = dy;
  if (rows !== outHeight || cols !== outWidth) {
    dys = run(
      wasm,
      'Slice',
      { x: dy },
      { begin: [0, p0, q0, 0], size: [n, rows, cols, outChannels] },
    );
    temps.push(dys);
  }
  const a = reshape(wasm, xs, [n * rows * cols, inChannels]);
  const b = reshape(wasm, dys, [n * rows * cols, outChannels]);
  const dw = batchMatMul({
    inputs: { a, b },
    backend: wasm,
    attrs: { transposeA: true, transposeB: false },
  }) as TensorInfo;
  const out = reshape(wasm, dw, [1, 1, inChannels, outChannels]);
  free(wasm, ...temps, a, b, dw);
  return out;
}

const conv2dBackpropFilter: KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = backend as BackendWasm;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } =
    attrs as unknown as Conv2DBackpropFilterAttrs;
  assertFloat32('Conv2DBackpropFilter', { x, dy });
  if (dataFormat !== 'NHWC') {
    throw new Error(`Conv2DBackpropFilter (wasm): dataFormat must be 'NHWC', got '${dataFormat}'`);
  }
  const info = backend_util.computeConv2DInfo(
    x.shape as Shape4,
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const { inHeight, inWidth, outHeight, outWidth, strideHeight, strideWidth } = info;
  const { filterHeight, filterWidth, padInfo } = info;
  if (filterHeight === 1 && filterWidth === 1) return pointwise(wasm, x, dy, info);
  // Rows (columns) past the input that the last output row (column) reads; negative means the
  // input's last rows are never read, so they are cropped (a convolution cannot pad negatively).
  const bottom = (outHeight - 1) * strideHeight + filterHeight - padInfo.top - inHeight;
  const right = (outWidth - 1) * strideWidth + filterWidth - padInfo.left - inWidth;

  const temps: TensorInfo[] = [];
  let xs = x;
  if (bottom < 0 || right < 0) {
    xs = run(
      wasm,
      'Slice',
      { x },
      {
        begin: [0, 0, 0, 0],
        size: [
          x.shape[0],
          inHeight + Math.min(0, bottom),
          inWidth + Math.min(0, right),
          x.shape[3],
        ],
      },
    );
    temps.push(xs);
  }
  const xT = transpose(wasm, xs, [3, 1, 2, 0]);
  const dyT = transpose(wasm, dy, [1, 2, 0, 3]);
  temps.push(xT, dyT);
  const out = conv2d(
    wasm,
    xT,
    dyT,
    [padInfo.top, Math.max(0, bottom), padInfo.left, Math.max(0, right)],
    [1, 1],
    [strideHeight, strideWidth],
  );
  temps.push(out);
  const dw = transpose(wasm, out, [1, 2, 0, 3]);
  free(wasm, ...temps);
  return dw;
};

export const conv2dBackpropFilterConfig: KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: 'wasm',
  kernelFunc: conv2dBackpropFilter,
};
