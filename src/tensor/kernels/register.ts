/** Registers fedslr's own kernels on the wasm backend (where it lacks one or is slow). */
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { getKernel, registerKernel, unregisterKernel } from '@tensorflow/tfjs-core';
import { batchMatMulConfig } from './batch_mat_mul.js';
import { conv2dBackpropFilterConfig } from './conv2d_backprop_filter.js';
import { conv2dBackpropInputConfig } from './conv2d_backprop_input.js';
import { castConfig, identityConfig } from './identity.js';
import { maxPoolGradConfig } from './max_pool_grad.js';
import { sumConfig } from './sum.js';
import { builtinKernels } from './wasm.js';

/** Our wasm kernels, by kernel name. */
export const WASM_KERNELS: readonly KernelConfig[] = [
  conv2dBackpropFilterConfig,
  conv2dBackpropInputConfig,
  batchMatMulConfig,
  maxPoolGradConfig,
  identityConfig,
  castConfig,
  sumConfig,
];

const registered = new Set<string>();

/**
 * Registers our kernels on the wasm backend, replacing built-in ones (kept for delegation and for
 * {@link unregisterWasmKernels}). Call after importing '@tensorflow/tfjs-backend-wasm' and before
 * the backend is first initialised (a replaced kernel's set-up runs at initialisation). Idempotent.
 */
export function registerWasmKernels(): void {
  for (const config of WASM_KERNELS) {
    if (registered.has(config.kernelName)) continue;
    const builtin = getKernel(config.kernelName, 'wasm');
    if (builtin) {
      builtinKernels.set(config.kernelName, builtin);
      unregisterKernel(config.kernelName, 'wasm');
    }
    registerKernel({ ...config, setupFunc: builtin?.setupFunc, disposeFunc: builtin?.disposeFunc });
    registered.add(config.kernelName);
  }
}

/** Restores the wasm backend's built-in kernels (and removes ours where there was none). */
export function unregisterWasmKernels(): void {
  for (const name of registered) {
    unregisterKernel(name, 'wasm');
    const builtin = builtinKernels.get(name);
    if (builtin) registerKernel(builtin);
    builtinKernels.delete(name);
  }
  registered.clear();
}
