/**
 * The optional WebGPU backend (`@tensorflow/tfjs-backend-webgpu`). Browsers provide
 * `navigator.gpu`; Node gets it from the npm package `webgpu` (Dawn's bindings, with prebuilt
 * binaries). Both packages are optional dependencies, never required: a missing package or a
 * machine without a WebGPU adapter is an InputError that says what to install.
 *
 * WebGPU has no synchronous read-back in Node (`dataSync` needs an OffscreenCanvas), so code
 * that may run on it reads tensors with `await t.data()` (see `params.ts`'s `readArrays`).
 */
import { InputError } from '../util/errors.js';

const INSTALL_HINT =
  'npm install webgpu @tensorflow/tfjs-backend-webgpu@4.22.0 (optional dependencies of fedslr)';
const ADAPTER_HINT =
  "a GPU with a Vulkan, Metal or D3D12 driver, or without one a software Vulkan driver (Mesa 25's lavapipe: Debian bookworm-backports' mesa-vulkan-drivers; Debian 12's Mesa 22 is too old for Dawn)";

/** Description of the adapter in use, once the backend is loaded ('' before). */
let adapterDescription = '';
let loaded: Promise<void> | undefined;

/** Imports a package whose name the type checker and bundlers must not resolve (optional). */
async function importOptional(name: readonly string[]): Promise<Record<string, unknown>> {
  return (await import(name.join('/'))) as Record<string, unknown>;
}

interface GpuAdapterLike {
  info?: { description?: string; vendor?: string; device?: string; architecture?: string };
}
interface GpuLike {
  requestAdapter(): Promise<GpuAdapterLike | null>;
}

/** `navigator.gpu`, installing Dawn's in Node when there is none. */
async function gpuEntry(): Promise<GpuLike> {
  const nav = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator;
  if (nav?.gpu) return nav.gpu;
  if (typeof process === 'undefined' || !process.versions?.node) {
    throw new InputError(
      "backend 'webgpu': this browser has no WebGPU (navigator.gpu); use backend 'wasm'",
    );
  }
  let dawn: Record<string, unknown>;
  try {
    dawn = await importOptional(['webgpu']);
  } catch (e) {
    throw new InputError(
      `backend 'webgpu' needs the package 'webgpu' in Node (${(e as Error).message.split('\n')[0]}): ${INSTALL_HINT}`,
    );
  }
  const create = dawn['create'] as (flags: string[]) => GpuLike;
  // tfjs's webgpu backend refers to GPUBufferUsage, GPUMapMode, ... as globals, as in browsers.
  Object.assign(globalThis, dawn['globals'] as object);
  const gpu = create([]);
  // navigator is a getter-only global in Node 21+; define gpu on it, or a navigator object on 20.
  if (nav) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true });
  return gpu;
}

async function load(): Promise<void> {
  const gpu = await gpuEntry();
  const adapter = await gpu.requestAdapter();
  if (!adapter) {
    throw new InputError(
      `backend 'webgpu': no WebGPU adapter on this machine; it needs ${ADAPTER_HINT}`,
    );
  }
  const info = adapter.info ?? {};
  adapterDescription =
    info.description || [info.vendor, info.architecture, info.device].filter(Boolean).join(' ');
  try {
    await importOptional(['@tensorflow', 'tfjs-backend-webgpu']);
  } catch (e) {
    throw new InputError(
      `backend 'webgpu' needs the package '@tensorflow/tfjs-backend-webgpu' (${(e as Error).message.split('\n')[0]}): ${INSTALL_HINT}`,
    );
  }
  const { registerWebgpuKernels } = await import('./kernels/webgpu/register.js');
  registerWebgpuKernels(
    /software|swiftshader|llvmpipe/i.test(`${info.architecture} ${adapterDescription}`),
  );
}

/** Loads the WebGPU entry point, checks for an adapter and registers tfjs's webgpu backend. */
export function loadWebgpu(): Promise<void> {
  loaded ??= load().catch((e: unknown) => {
    loaded = undefined;
    throw e;
  });
  return loaded;
}

/** The WebGPU adapter's description ('llvmpipe: Mesa ...' on lavapipe), '' before loading. */
export function webgpuAdapter(): string {
  return adapterDescription;
}

/** Whether the WebGPU backend can be loaded here (packages and an adapter present). */
export async function webgpuAvailable(): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    await loadWebgpu();
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}
