/** Registers fedslr's own kernels on the webgpu backend (where tfjs's are slow). */
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { getKernel, registerKernel, unregisterKernel } from '@tensorflow/tfjs-core';
import { conv2dBackpropFilterConfig } from './conv2d_backprop_filter.js';
import { groupNormConfigs } from './group_norm.js';
import { sgdUpdateConfig } from './sgd_update.js';
import { builtinWebgpuKernels } from './webgpu.js';

/** Kernels of fedslr's own ops (tfjs has none): registered on every adapter. */
const OWN_OPS: readonly KernelConfig[] = [sgdUpdateConfig, ...groupNormConfigs];

/**
 * Replacements for tfjs kernels that are slow on a GPU: registered on hardware adapters only. On
 * lavapipe, tfjs's one-thread-per-output kernels measured faster (a CPU runs workgroup barriers
 * and shared tiles at a loss).
 */
const GPU_KERNELS: readonly KernelConfig[] = [conv2dBackpropFilterConfig];

const registered = new Set<string>();

/**
 * Registers our kernels on the webgpu backend, replacing built-in ones (kept, for delegation);
 * the replacements only when the adapter is not a software one. Call after importing
 * '@tensorflow/tfjs-backend-webgpu'. Idempotent.
 */
export function registerWebgpuKernels(softwareAdapter: boolean): void {
  for (const config of softwareAdapter ? OWN_OPS : [...OWN_OPS, ...GPU_KERNELS]) {
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
