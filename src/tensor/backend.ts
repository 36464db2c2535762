/**
 * tfjs backend selection. In Node the default is `wasm` (XNNPACK, SIMD) with our own kernels
 * registered where it is missing one or slow (see `kernels/`); `cpu` is the reference and
 * fallback; `tensorflow` (tfjs-node) is used by `auto` when the user has installed it; `webgpu`
 * (optional packages, see `webgpu.ts`) only when asked for.
 */
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import './gradients.js';
import { loadWebgpu } from './webgpu.js';

// On its first use in Node, tfjs's cpu backend prints a banner asking to install tfjs-node. fedslr
// already uses tfjs-node when it is installed (backend auto or tensorflow), and the cpu backend is
// its reference, used on purpose; so the cpu backend is registered again (same class, same
// priority) as already past its first use. Other tfjs warnings are left on.
if (tf.engine().registry['cpu'] === undefined) {
  tf.removeBackend('cpu');
  tf.registerBackend('cpu', () => Object.assign(new MathBackendCPU(), { firstUse: false }), 1);
}

export type BackendName = 'auto' | 'wasm' | 'cpu' | 'tensorflow' | 'webgpu';
export const BACKEND_NAMES: readonly BackendName[] = [
  'auto',
  'wasm',
  'cpu',
  'tensorflow',
  'webgpu',
];

let wasmLoaded = false;
let tfnodeLoaded: boolean | null = null;
/** XNNPACK threads of this thread's wasm backend, once it is initialised. */
let wasmThreadCount = 0;
/** Why the threaded build was not used, when threads were asked for and it could not be. */
let wasmThreadNote: string | undefined;

/** The wasm backend package's thread setting, from the copy of the package in use. */
let setWasmThreadsCount: ((n: number) => void) | undefined;

async function loadWasm(): Promise<void> {
  if (wasmLoaded) return;
  setWasmThreadsCount = (await import('@tensorflow/tfjs-backend-wasm')).setThreadsCount;
  const { registerWasmKernels } = await import('./kernels/register.js');
  registerWasmKernels();
  wasmLoaded = true;
}

export interface BackendOptions {
  /**
   * XNNPACK threads for the wasm backend (Node's main thread only; worker threads always use one,
   * since the simulator runs one worker per core). 0: one per core. Fixed by the first wasm
   * initialisation in a thread. Results do not depend on it.
   */
  threads?: number;
}

/** Threads of the wasm backend in use (1 when single-threaded), and why not more if it failed. */
export function wasmThreads(): { threads: number; note?: string } {
  return wasmThreadNote
    ? { threads: wasmThreadCount, note: wasmThreadNote }
    : { threads: wasmThreadCount };
}

/** XNNPACK threads when `backend` (a name initBackend returned) is wasm, else 0. */
export function backendThreads(backend: string): number {
  return backend === 'wasm' ? wasmThreadCount : 0;
}

async function setWasmBackend(threads: number): Promise<boolean> {
  if (wasmThreadCount > 0 || typeof process === 'undefined' || !process.versions?.node)
    return tf.setBackend('wasm');
  const { isMainThread } = await import('node:worker_threads');
  const { availableParallelism } = await import('node:os');
  const { MAX_WASM_THREADS, prepareWasmThreads } = await import('./wasm_threads.js');
  const want = isMainThread
    ? Math.min(threads === 0 ? availableParallelism() : threads, MAX_WASM_THREADS)
    : 1;
  const setup =
    want > 1 && setWasmThreadsCount ? prepareWasmThreads(want, setWasmThreadsCount) : undefined;
  if (setup && 'reason' in setup) wasmThreadNote = setup.reason;
  try {
    const ok = await tf.setBackend('wasm');
    wasmThreadCount = ok ? 1 : 0;
    return ok;
  } finally {
    if (setup && 'finish' in setup) {
      const got = setup.finish();
      if (wasmThreadCount > 0) wasmThreadCount = got;
      if (got !== want) wasmThreadNote = `asked for ${want} threads, the backend runs ${got}`;
    }
  }
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

/** The last initialisation asked for; the next waits for it (see initBackend). */
let initialising: Promise<unknown> = Promise.resolve();

/**
 * Selects and initialises a backend; returns the name of the backend now in use. Calls run one
 * after another, in the order made: tfjs's registration and its `setBackend` are not safe to
 * interleave (two concurrent 'wasm' initialisations in one process fail), and a process hosting
 * several clients starts them concurrently.
 */
export function initBackend(
  name: BackendName = 'auto',
  opts: BackendOptions = {},
): Promise<string> {
  const run = initialising.then(() => initBackendNow(name, opts));
  initialising = run.catch(() => undefined);
  return run;
}

async function initBackendNow(name: BackendName, opts: BackendOptions): Promise<string> {
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
  if (target === 'webgpu') await loadWebgpu();
  if (tf.getBackend() !== target || !tf.findBackend(target)) {
    const ok =
      target === 'wasm' ? await setWasmBackend(opts.threads ?? 0) : await tf.setBackend(target);
    if (!ok) throw new Error(`backend '${target}' failed to initialise`);
  }
  await tf.ready();
  return tf.getBackend();
}
