/**
 * What our webgpu kernels use of `@tensorflow/tfjs-backend-webgpu` (an optional dependency, so
 * only its shape is declared here): running a WGSL program, built-in kernels by name, freeing.
 * A program's `getUserCode` defines `fn main()`; tfjs adds the buffers (`result`, then one per
 * input name), the `uniforms` struct (input and output shapes, then the program's own fields)
 * and the entry point, which sets `localId`, `localIndex`, `workgroupId` and calls `main`.
 */
import type {
  DataId,
  KernelConfig,
  NamedAttrMap,
  NamedTensorInfoMap,
  TensorInfo,
} from '@tensorflow/tfjs-core';
import { getKernel } from '@tensorflow/tfjs-core';

export interface WebgpuProgram {
  variableNames: string[];
  uniforms?: string;
  workgroupSize: [number, number, number];
  dispatchLayout: { x: number[]; y?: number[]; z?: number[] };
  dispatch: [number, number, number];
  outputShape: number[];
  shaderKey: string;
  /** Adds `uniforms.size`, the output's element count. */
  size?: boolean;
  getUserCode(): string;
}

export interface WebgpuBackend {
  runWebGPUProgram(
    program: WebgpuProgram,
    inputs: TensorInfo[],
    dtype: 'float32',
    uniforms: { type: 'int32' | 'float32'; data: number[] }[],
  ): TensorInfo;
  disposeData(dataId: DataId): boolean;
}

/** The webgpu backend's built-in kernels that ours replace, saved when ours are registered. */
export const builtinWebgpuKernels = new Map<string, KernelConfig>();

/** Runs the webgpu backend's kernel `name` (the built-in one where ours replaced it). */
export function runBuiltin(
  backend: WebgpuBackend,
  name: string,
  inputs: NamedTensorInfoMap,
  attrs: object,
): TensorInfo {
  const config = builtinWebgpuKernels.get(name) ?? getKernel(name, 'webgpu');
  if (!config) throw new Error(`webgpu kernel '${name}' is not registered`);
  const out = config.kernelFunc({
    inputs,
    backend: backend as never,
    attrs: attrs as NamedAttrMap,
  });
  if (Array.isArray(out)) throw new Error(`webgpu kernel '${name}' returned several tensors`);
  return out;
}
