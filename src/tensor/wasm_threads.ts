/**
 * Multi-threaded XNNPACK for the wasm backend in Node.
 *
 * tfjs-backend-wasm 4.22 ships a threaded SIMD build but never picks it in Node
 * (tensorflow/tfjs#3830), for two reasons this module works around:
 * - The pthread worker script is handed to `new Worker` as a blob URL, which Node's worker_threads
 *   cannot load, and that worker would load the main script from a blob URL too. We write the
 *   package's own worker script (wasm-out/) to a temporary file that loads the package's
 *   wasm-out/tfjs-backend-wasm-threaded-simd.js instead, and answer tfjs's one
 *   `URL.createObjectURL` call for it with that file's path.
 * - The module sizes its XNNPACK thread pool when it starts, as
 *   emscripten_num_logical_cores() / 2 (tfjs assumes two hyperthreads per core), which reads
 *   `os.cpus()` in Node. During start-up `os.cpus()` reports 2 * threads entries.
 * Both patches are undone as soon as the backend is ready. The emscripten pool's worker threads
 * are then unref'd, so they never keep a finished process alive. Results are the same as with one
 * thread: XNNPACK splits products and convolutions by output tiles, each summed by one thread in
 * the same order (tests compare a training run bit for bit).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';

const require = createRequire(import.meta.url);

/** The emscripten pool holds 8 workers; a larger XNNPACK pool would need more than it can make. */
export const MAX_WASM_THREADS = 8;

/** The worker script's lines that load the main script from a URL or blob. */
const LOAD_MAIN_SCRIPT =
  /if\(typeof e\.data\.urlOrBlob=="string"\)\{importScripts\(e\.data\.urlOrBlob\)\}else\{[^}]*\}/;

interface EmscriptenWorker {
  unref(): void;
}
interface WasmModule {
  PThread?: { unusedWorkers: EmscriptenWorker[]; runningWorkers: EmscriptenWorker[] };
  tfjs: { getThreadsCount(): number };
}

export type ThreadSetup = { finish: () => number } | { reason: string };

/**
 * Prepares the first initialisation of the wasm backend to load its threaded build with
 * `threads` XNNPACK threads; `setThreadsCount` is that of the copy of @tensorflow/tfjs-backend-wasm
 * in use (loading another copy would register every kernel twice). Call `finish()` once
 * `tf.setBackend('wasm')` has settled (whatever its outcome): it undoes the patches and returns
 * the thread count the backend reports. Returns a reason instead when the installed package does
 * not look as expected; the backend then loads its single-threaded build as usual.
 */
export function prepareWasmThreads(
  threads: number,
  setThreadsCount: (n: number) => void,
): ThreadSetup {
  if (!Number.isInteger(threads) || threads < 2 || threads > MAX_WASM_THREADS)
    return { reason: `threads must be an integer in 2..${MAX_WASM_THREADS}, got ${threads}` };
  let wasmOut: string;
  let contents: string;
  try {
    wasmOut = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '..', 'wasm-out');
    contents = require(join(wasmOut, 'tfjs-backend-wasm-threaded-simd.worker.js'))
      .wasmWorkerContents as string;
  } catch (err) {
    return { reason: `no threaded build found (${(err as Error).message})` };
  }
  const mainScript = join(wasmOut, 'tfjs-backend-wasm-threaded-simd.js');
  if (typeof contents !== 'string' || !existsSync(mainScript))
    return { reason: `no threaded build in ${wasmOut}` };
  // tfjs escapes the newlines inside the script's string literals the same way before use.
  const escaped = contents.replace(/\n/g, '\\n');
  const script = escaped.replace(LOAD_MAIN_SCRIPT, `importScripts(${JSON.stringify(mainScript)});`);
  if (script === escaped)
    return { reason: 'the threaded worker script of this tfjs-backend-wasm version is not known' };
  const dir = mkdtempSync(join(os.tmpdir(), 'fedslr-wasm-'));
  const workerFile = join(dir, 'pthread-worker.cjs');
  writeFileSync(workerFile, script);
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));

  const createObjectURL = URL.createObjectURL;
  const cpus = os.cpus;
  URL.createObjectURL = (obj: Blob) =>
    obj instanceof Blob && obj.type === 'application/javascript'
      ? workerFile
      : createObjectURL(obj);
  os.cpus = () => {
    const one = cpus()[0]!;
    return Array.from({ length: 2 * threads }, () => one);
  };
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  setThreadsCount(threads);
  return {
    finish: () => {
      URL.createObjectURL = createObjectURL;
      os.cpus = cpus;
      const backend = tf.findBackend('wasm') as unknown as { wasm: WasmModule } | null;
      if (!backend) return 1;
      const pool = backend.wasm.PThread;
      if (pool) for (const w of [...pool.unusedWorkers, ...pool.runningWorkers]) w.unref();
      return backend.wasm.tfjs.getThreadsCount();
    },
  };
}
