/**
 * tfjs backend selection. In Node the default is `wasm` (XNNPACK, SIMD) with our own kernels
 * registered where it is missing one or slow (see `kernels/`); `cpu` is the reference and
 * fallback; `tensorflow` (tfjs-node) is used by `auto` when the user has installed it.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import './gradients.js';

export type BackendName = 'auto' | 'wasm' | 'cpu' | 'tensorflow';
export const BACKEND_NAMES: readonly BackendName[] = ['auto', 'wasm', 'cpu', 'tensorflow'];

let wasmLoaded = false;
let tfnodeLoaded: boolean | null = null;

async function loadWasm(): Promise<void> {
  if (wasmLoaded) return;
  await import('@tensorflow/tfjs-backend-wasm');
  const { registerWasmKernels } = await import('./kernels/register.js');
  registerWasmKernels();
  wasmLoaded = true;
}

async function loadTfNode(): Promise<boolean> {
  if (tfnodeLoaded !== null) return tfnodeLoaded;
  try {
    // Optional peer: present only when the user installed it. The name is built at run time so
    // bundlers and the type checker do not try to resolve it.
    const name = ['@tensorflow', 'tfjs-node'].join('/');
    await import(name);
    tfnodeLoaded = true;
  } catch {
    tfnodeLoaded = false;
  }
  return tfnodeLoaded;
}

/** Selects and initialises a backend; returns the name of the backend now in use. */
export async function initBackend(name: BackendName = 'auto'): Promise<string> {
  if (!BACKEND_NAMES.includes(name)) {
    throw new Error(`backend: expected one of ${BACKEND_NAMES.join(', ')}, got '${name}'`);
  }
  let target: string = name;
  if (name === 'auto') {
    target = (await loadTfNode()) ? 'tensorflow' : 'wasm';
  }
  if (target === 'tensorflow' && !(await loadTfNode())) {
    throw new Error(
      "backend 'tensorflow' needs the optional package @tensorflow/tfjs-node (npm install @tensorflow/tfjs-node); use 'wasm' or 'cpu' otherwise",
    );
  }
  if (target === 'wasm') await loadWasm();
  if (tf.getBackend() !== target || !tf.findBackend(target)) {
    const ok = await tf.setBackend(target);
    if (!ok) throw new Error(`backend '${target}' failed to initialise`);
  }
  await tf.ready();
  return tf.getBackend();
}
