/**
 * MaxPoolGrad for the wasm backend. The built-in kernel revisits every window that covers each
 * input element (17 ms for a 2x2 pool of [20, 28, 28, 32]); here each window is scanned once,
 * for all channels together, and its gradient added at the window's first maximum (the cpu
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
  const best = new Float32Array(c);
  const at = new Int32Array(c);
  for (let b = 0; b < batchSize; b++) {
    for (let oh = 0; oh < outHeight; oh++) {
      const h0 = oh * strideHeight - padInfo.top;
      const h1 = Math.min(inHeight, h0 + effectiveFilterHeight);
      for (let ow = 0; ow < outWidth; ow++) {
        const w0 = ow * strideWidth - padInfo.left;
        const w1 = Math.min(inWidth, w0 + effectiveFilterWidth);
        best.fill(Number.NEGATIVE_INFINITY);
        at.fill(-1);
        for (let h = Math.max(0, h0); h < h1; h++) {
          for (let w = Math.max(0, w0); w < w1; w++) {
            const base = ((b * inHeight + h) * inWidth + w) * c;
            for (let d = 0; d < c; d++) {
              const v = x[base + d]!;
              if (v > best[d]!) {
                best[d] = v;
                at[d] = base + d;
              }
            }
          }
        }
        const gBase = ((b * outHeight + oh) * outWidth + ow) * c;
        for (let d = 0; d < c; d++) {
          const i = at[d]!;
          if (i >= 0) out[i] = out[i]! + g[gBase + d]!;
        }
      }
    }
  }
  return dx;
};

export const maxPoolGradConfig: KernelConfig = {
  kernelName: 'MaxPoolGrad',
  backendName: 'wasm',
  kernelFunc: maxPoolGrad,
};
