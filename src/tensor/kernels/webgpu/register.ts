/** Registers fedslr's own kernels on the webgpu backend (where tfjs's are slow). */
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { getKernel, registerKernel, unregisterKernel } from '@tensorflow/tfjs-core';
import { conv2dBackpropFilterConfig } from './conv2d_backprop_filter.js';
import { builtinWebgpuKernels } from './webgpu.js';

/** Our webgpu kernels, by kernel name. */
export const WEBGPU_KERNELS: readonly KernelConfig[] = [conv2dBackpropFilterConfig];

const registered = new Set<string>();

/**
 * Registers our kernels on the webgpu backend, replacing the built-in ones (kept, for delegation),
 * unless the adapter is a software one: on lavapipe tfjs's one-thread-per-output kernels measured
 * faster (a CPU runs workgroup barriers and shared tiles at a loss); ours are for GPUs. Call after
 * importing '@tensorflow/tfjs-backend-webgpu'. Idempotent.
 */
export function registerWebgpuKernels(softwareAdapter: boolean): void {
  if (softwareAdapter) return;
  for (const config of WEBGPU_KERNELS) {
    if (registered.has(config.kernelName)) continue;
    const builtin = getKernel(config.kernelName, 'webgpu');
    if (builtin) {
      builtinWebgpuKernels.set(config.kernelName, builtin);
      unregisterKernel(config.kernelName, 'webgpu');
    }
    registerKernel(config);
    registered.add(config.kernelName);
  }
}
