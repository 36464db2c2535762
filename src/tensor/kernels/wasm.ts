/**
 * Helpers for kernels built from the wasm backend's own kernels: run a built-in kernel by name,
 * free intermediates, and read or write a tensor's float32 data in place on the wasm heap.
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type {
  KernelConfig,
  NamedAttrMap,
  NamedTensorInfoMap,
  TensorInfo,
} from '@tensorflow/tfjs-core';
import { getKernel } from '@tensorflow/tfjs-core';

/** The built-in wasm kernels that ours replace, saved when ours are registered. */
export const builtinKernels = new Map<string, KernelConfig>();

/**
 * Runs the wasm backend's kernel `name` (the built-in one where we registered our own) on
 * `inputs`. The caller owns the returned tensor and frees it with {@link free}.
 */
export function run(
  backend: BackendWasm,
  name: string,
  inputs: NamedTensorInfoMap,
  attrs: NamedAttrMap = {},
): TensorInfo {
  const config = builtinKernels.get(name) ?? getKernel(name, 'wasm');
  if (!config) throw new Error(`wasm kernel '${name}' is not registered`);
  const out = config.kernelFunc({ inputs, backend, attrs });
  if (Array.isArray(out)) throw new Error(`wasm kernel '${name}' returned several tensors`);
  return out;
}

/** Frees intermediate tensors made inside a kernel. */
export function free(backend: BackendWasm, ...infos: TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

export function reshape(backend: BackendWasm, x: TensorInfo, shape: number[]): TensorInfo {
  return run(backend, 'Reshape', { x }, { shape });
}

export function transpose(backend: BackendWasm, x: TensorInfo, perm: number[]): TensorInfo {
  return run(backend, 'Transpose', { x }, { perm });
}

/** Conv2D (NHWC, explicit padding [top, bottom, left, right]). */
export function conv2d(
  backend: BackendWasm,
  x: TensorInfo,
  filter: TensorInfo,
  pads: readonly [number, number, number, number],
  strides: [number, number],
  dilations: [number, number],
): TensorInfo {
  const pad = [
    [0, 0],
    [pads[0], pads[1]],
    [pads[2], pads[3]],
    [0, 0],
  ];
  return run(backend, 'Conv2D', { x, filter }, {
    strides,
    pad,
    dataFormat: 'NHWC',
    dilations,
    dimRoundingMode: undefined,
  } as unknown as NamedAttrMap);
}

/** A float32 view of `info`'s data on the wasm heap; valid until the next allocation. */
export function heapF32(backend: BackendWasm, info: TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(info) as Float32Array;
}

/**
 * x[:, top + p*sh, left + q*sw, :] for p < rows, q < cols, as a new [n, rows, cols, c] tensor
 * (the built-in StridedSlice takes 11 ms where this takes 0.2).
 */
export function subsample(
  backend: BackendWasm,
  x: TensorInfo,
  top: number,
  left: number,
  rows: number,
  cols: number,
  sh: number,
  sw: number,
): TensorInfo {
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const out = backend.makeOutput([n, rows, cols, c], 'float32');
  const heap = new Float32Array(heapF32(backend, out).buffer);
  const src = backend.getMemoryOffset(x.dataId) / 4;
  let d = backend.getMemoryOffset(out.dataId) / 4;
  for (let b = 0; b < n; b++) {
    for (let p = 0; p < rows; p++) {
      const row = src + ((b * h + top + p * sh) * w + left) * c;
      for (let q = 0; q < cols; q++) {
        const s = row + q * sw * c;
        heap.copyWithin(d, s, s + c);
        d += c;
      }
    }
  }
  return out;
}

/** Checks that every input is float32 (our kernels compute in float32 only). */
export function assertFloat32(kernel: string, inputs: Record<string, TensorInfo>): void {
  for (const [name, t] of Object.entries(inputs)) {
    if (t.dtype !== 'float32') {
      throw new Error(`${kernel}: input '${name}' must be float32, got ${t.dtype}`);
    }
  }
}
