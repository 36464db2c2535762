/**
 * Conv2DBackpropFilter for the wasm backend (which has none), as one forward convolution.
 *
 * dW[i, j, c, o] = sum over (n, p, q) of x[n, p*sh - top + i, q*sw - left + j, c] * dy[n, p, q, o].
 * With x seen as [c, h, w, n] (channels as the batch, the batch as channels) and dy as a filter
 * [p, q, n, o], this is a convolution with dilation = stride whose output is [c, kh, kw, o]:
 * XNNPACK does it at forward-convolution speed.
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type {
  Conv2DBackpropFilterAttrs,
  KernelConfig,
  KernelFunc,
  TensorInfo,
} from '@tensorflow/tfjs-core';
import { backend_util } from '@tensorflow/tfjs-core';
import { assertFloat32, conv2d, free, run, transpose } from './wasm.js';

type Shape4 = [number, number, number, number];

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
