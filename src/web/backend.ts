/**
 * The tfjs backend of a browser client's worker: `wasm` by default (XNNPACK, threaded when the
 * page is cross-origin isolated, which `fedslr serve` makes it; the numbers of Node's wasm
 * backend), `webgl` where the browser has WebGL (tfjs draws on an OffscreenCanvas in the worker),
 * `webgpu` where it has WebGPU, `cpu` as the plain-JavaScript reference. The webgl, webgpu and
 * cpu backends are separate chunks of the bundle, loaded only when chosen.
 */
import * as tf from '@tensorflow/tfjs-core';
import '../tensor/gradients.js';

export const WEB_BACKENDS = ['wasm', 'webgl', 'webgpu', 'cpu'] as const;
export type WebBackend = (typeof WEB_BACKENDS)[number];

/** The chosen backend cannot run in this browser. */
export class BackendUnavailableError extends Error {
  override name = 'BackendUnavailableError';
}

interface GpuAdapterLike {
  info?: { description?: string; vendor?: string; architecture?: string };
}

/**
 * Sets up `name`; `wasmDir` is the URL of the folder holding tfjs's .wasm files. Returns a
 * description of the backend in use ("wasm (4 threads)", "webgpu (vendor ...)").
 */
export async function initWebBackend(name: WebBackend, wasmDir: string): Promise<string> {
  let detail = '';
  if (name === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(wasmDir);
    const { registerWasmKernels } = await import('../tensor/kernels/register.js');
    registerWasmKernels();
  } else if (name === 'webgl') {
    detail = webglDescription();
    await import('@tensorflow/tfjs-backend-webgl');
  } else if (name === 'webgpu') {
    const gpu = (navigator as { gpu?: { requestAdapter(): Promise<GpuAdapterLike | null> } }).gpu;
    if (!gpu) throw new BackendUnavailableError('this browser has no WebGPU (navigator.gpu)');
    const adapter = await gpu.requestAdapter();
    if (!adapter) throw new BackendUnavailableError('this browser found no WebGPU adapter');
    const info = adapter.info ?? {};
    detail = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ');
    await import('@tensorflow/tfjs-backend-webgpu');
    const { registerWebgpuKernels } = await import('../tensor/kernels/webgpu/register.js');
    registerWebgpuKernels(/software|swiftshader|llvmpipe/i.test(detail));
  } else await import('@tensorflow/tfjs-backend-cpu');
  let ok = false;
  try {
    ok = await tf.setBackend(name);
  } catch (err) {
    throw new BackendUnavailableError(`the ${name} backend failed to start: ${String(err)}`);
  }
  if (!ok) throw new BackendUnavailableError(`the ${name} backend failed to start`);
  await tf.ready();
  if (name === 'wasm') {
    const { getThreadsCount } = await import('@tensorflow/tfjs-backend-wasm');
    const threads = getThreadsCount();
    detail = threads > 1 ? `${threads} threads` : 'one thread';
  }
  return detail ? `${name} (${detail})` : name;
}

/**
 * The WebGL version and renderer an OffscreenCanvas of this context gets (what tfjs's webgl
 * backend will draw with); BackendUnavailableError without one.
 */
export function webglDescription(): string {
  if (typeof OffscreenCanvas === 'undefined')
    throw new BackendUnavailableError('this browser has no OffscreenCanvas for WebGL');
  const canvas = new OffscreenCanvas(1, 1);
  const gl = canvas.getContext('webgl2') ?? canvas.getContext('webgl');
  if (!gl)
    throw new BackendUnavailableError('this browser gives no WebGL context (webgl2 or webgl)');
  const version =
    typeof WebGL2RenderingContext !== 'undefined' && gl instanceof WebGL2RenderingContext
      ? 'WebGL 2'
      : 'WebGL 1';
  const info = gl.getExtension('WEBGL_debug_renderer_info');
  const renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
  gl.getExtension('WEBGL_lose_context')?.loseContext();
  return `${version}, ${renderer}`;
}
