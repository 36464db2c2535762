/**
 * MaxPoolGrad for the wasm backend. The built-in kernel revisits every window that covers each
 * input element (17 ms for a 2x2 pool of [20, 28, 28, 32]); here each window is scanned once
 * per channel, and its gradient added at the window's first maximum (the cpu
 * backend's rule for ties and NaN: a strict `>` scan in row-major window order).
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { KernelConfig, KernelFunc, MaxPoolGradAttrs, TensorInfo } from '@tensorflow/tfjs-core';
import { backend_util } from '@tensorflow/tfjs-core';
import { assertFloat32, heapF32 } from './wasm.js';

const maxPoolGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = backend as BackendWasm;
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as MaxPoolGradAttrs;
  assertFloat32('MaxPoolGrad', { dy, input });
  const info = backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const { batchSize, inHeight, inWidth, inChannels: c, outHeight, outWidth } = info;
  const { strideHeight, strideWidth, effectiveFilterHeight, effectiveFilterWidth, padInfo } = info;

  const dx = wasm.makeOutput(input.shape, 'float32');
  const x = heapF32(wasm, input);
  const g = heapF32(wasm, dy);
  const out = heapF32(wasm, dx);
  out.fill(0);
  if (
    effectiveFilterHeight === 2 &&
    effectiveFilterWidth === 2 &&
    strideHeight === 2 &&
    strideWidth === 2 &&
    padInfo.top === 0 &&
    padInfo.left === 0 &&
    2 * outHeight <= inHeight &&
    2 * outWidth <= inWidth
  ) {
    pool2x2(x, g, out, batchSize, inHeight, inWidth, c, outHeight, outWidth);
    return dx;
  }
  for (let b = 0; b < batchSize; b++) {
    for (let oh = 0; oh < outHeight; oh++) {
      const h0 = Math.max(0, oh * strideHeight - padInfo.top);
      const h1 = Math.min(inHeight, oh * strideHeight - padInfo.top + effectiveFilterHeight);
      for (let ow = 0; ow < outWidth; ow++) {
        const w0 = Math.max(0, ow * strideWidth - padInfo.left);
        const w1 = Math.min(inWidth, ow * strideWidth - padInfo.left + effectiveFilterWidth);
        const gBase = ((b * outHeight + oh) * outWidth + ow) * c;
        for (let d = 0; d < c; d++) {
          let best = Number.NEGATIVE_INFINITY;
          let at = -1;
          for (let h = h0; h < h1; h++) {
            for (let w = w0, i = ((b * inHeight + h) * inWidth + w0) * c + d; w < w1; w++, i += c) {
              const v = x[i]!;
              if (v > best) {
                best = v;
                at = i;
              }
            }
          }
          if (at >= 0) out[at] = out[at]! + g[gBase + d]!;
        }
      }
    }
  }
  return dx;
};

/**
 * The common 2x2 pool with stride 2 and every window inside the input: windows do not overlap,
 * so each is scanned once over all channels at a time, its four rows of c values read in
 * order. Same rule as the general loop: strict `>` from -Infinity in row-major window order.
 */
function pool2x2(
  x: Float32Array,
  g: Float32Array,
  out: Float32Array,
  batch: number,
  inHeight: number,
  inWidth: number,
  c: number,
  outHeight: number,
  outWidth: number,
): void {
  const row = inWidth * c;
  for (let b = 0; b < batch; b++) {
    for (let oh = 0; oh < outHeight; oh++) {
      for (let ow = 0; ow < outWidth; ow++) {
        const i00 = ((b * inHeight + 2 * oh) * inWidth + 2 * ow) * c;
        const gBase = ((b * outHeight + oh) * outWidth + ow) * c;
        for (let d = 0; d < c; d++) {
          const i = i00 + d;
          let best = Number.NEGATIVE_INFINITY;
          let at = -1;
          const v00 = x[i]!;
          if (v00 > best) {
            best = v00;
            at = i;
          }
          const v01 = x[i + c]!;
          if (v01 > best) {
            best = v01;
            at = i + c;
          }
          const v10 = x[i + row]!;
          if (v10 > best) {
            best = v10;
            at = i + row;
          }
          if (x[i + row + c]! > best) at = i + row + c;
          if (at >= 0) out[at] = g[gBase + d]!;
        }
      }
    }
  }
}

export const maxPoolGradConfig: KernelConfig = {
  kernelName: 'MaxPoolGrad',
  backendName: 'wasm',
  kernelFunc: maxPoolGrad,
};
