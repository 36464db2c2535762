/**
 * The SGD parameter update as one op: `w - lr * (g + terms)`, optionally soft-thresholded, in one
 * pass over the tensor. Written with tf ops, FedSLR's stage-1 update (a linear term, a proximal
 * pull, weight decay) takes ten kernel calls and as many full-size temporaries per tensor, and
 * the stage-2 update with its L1 prox nine (tf's Sign alone costs more than the whole fused op).
 *
 * The result is bit for bit the tf-ops formulation ({@link sgdUpdateReference}): every operation
 * is one float32 add, subtract or multiply, in the same order, rounded to float32 after each
 * (WebAssembly SIMD has no fused multiply-add, and one float64 operation on float32 values
 * rounded to float32 equals the float32 operation). Terms are added to g left to right:
 *   scaled: g + x * coef    decay: g + w * coef    pull: g + (w - x) * coef
 * then v = w - g * lr, and with a threshold tau: sign(v) * max(|v| - tau, 0) (sign(0) = 0).
 *
 * On wasm the loop is WebAssembly SIMD assembled here, one small module per program (the kinds
 * of terms in order, with or without the threshold), compiled once and instantiated on the
 * backend's own memory: one pass with w and the running gradient in registers. On cpu, and for
 * the last n % 4 elements on wasm, plain loops.
 * webgpu has its own kernel (`webgpu/sgd_update.ts`, registered with the backend). Other
 * backends, other dtypes and mismatched shapes take the reference path.
 */
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';

const KERNEL = 'FedslrSgdUpdate';

/** One term added to the gradient (see the module comment for the formulas). */
export type UpdateTerm =
  | { kind: 'scaled'; x: tf.Tensor; coef: number }
  | { kind: 'decay'; coef: number }
  | { kind: 'pull'; x: tf.Tensor; coef: number };

/** The kernels' codes for the kinds of term (attribute `kinds`). */
export const KIND_CODES = { scaled: 0, decay: 1, pull: 2 } as const;

interface UpdateAttrs {
  /** Per term: 0 scaled, 1 decay, 2 pull. */
  kinds: number[];
  coefs: number[];
  lr: number;
  /** The soft threshold, or -1 for none. */
  tau: number;
}

/** A term as the loops see it: its code, float32 coefficient and input (the decay's is w). */
interface LoopTerm {
  kind: number;
  coef: number;
  x: Float32Array;
}

const f32 = Math.fround;

/** Plain loops (the cpu kernel, and the wasm kernel's tail of fewer than 4 elements). */
function updateRange(
  w: Float32Array,
  g: Float32Array,
  terms: readonly LoopTerm[],
  lr: number,
  tau: number,
  out: Float32Array,
  start: number,
  end: number,
): void {
  for (let i = start; i < end; i++) {
    const wi = w[i]!;
    let gi = g[i]!;
    for (const t of terms) {
      const v = t.x[i]!;
      gi = f32(gi + f32((t.kind === KIND_CODES.pull ? f32(wi - v) : v) * t.coef));
    }
    const v = f32(wi - f32(gi * lr));
    if (tau < 0) {
      out[i] = v;
    } else {
      const r = Math.max(f32(Math.abs(v) - tau), 0);
      out[i] = v < 0 ? -r : v > 0 ? r : 0;
    }
  }
}

// --- The WebAssembly module -------------------------------------------------------------------

const I32 = 0x7f;
const F32 = 0x7d;
const V128 = 0x7b;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const str = (s: string): number[] => vec([...s].map((c) => [c.charCodeAt(0)]));
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

const simd = (op: number): number[] => [0xfd, ...uleb(op)];
const get = (i: number) => [0x20, ...uleb(i)];
const set = (i: number) => [0x21, ...uleb(i)];
const load = [...simd(0x00), 0, 0];
const store = [...simd(0x0b), 0, 0];
const f32x4 = {
  splat: simd(0x13),
  lt: simd(0x43),
  abs: simd(0xe0),
  add: simd(0xe4),
  sub: simd(0xe5),
  mul: simd(0xe6),
  max: simd(0xe9),
};
const v128and = simd(0x4e);
const v128or = simd(0x50);
const v128const = (word: number) => [
  ...simd(0x0c),
  ...Array.from({ length: 4 }, () => [
    word & 0xff,
    (word >>> 8) & 0xff,
    (word >>> 16) & 0xff,
    word >>> 24,
  ]).flat(),
];

/**
 * The module for one program (the term kinds in order, and whether to threshold): one exported
 * function `update(out, w, g, x_0 .. x_k-1, lr, tau, coef_0 .. coef_k-1, n)` (byte offsets, f32
 * scalars, an element count that is a multiple of 4) that makes one pass over the four-lane
 * groups, keeping w and the running gradient in registers. A decay term's x is unused.
 */
function programBytes(kinds: readonly number[], shrink: boolean, shared: boolean): Uint8Array {
  const k = kinds.length;
  const [OUT, W, G] = [0, 1, 2];
  const x = (j: number) => 3 + j;
  const LR = 3 + k;
  const TAU = LR + 1;
  const coef = (j: number) => TAU + 1 + j;
  const N = TAU + 1 + k;
  const params = [...Array(3 + k).fill(I32), F32, F32, ...Array(k).fill(F32), I32];
  // Locals: i, end; then v128: lr, tau, zero, sign mask, w, acc, coef_0 .. coef_k-1.
  const i = params.length;
  const end = i + 1;
  const [lrv, tauv, zero, signMask, wv, acc] = [i + 2, i + 3, i + 4, i + 5, i + 6, i + 7];
  const coefv = (j: number) => i + 8 + j;
  const at = (p: number) => [...get(p), ...get(i), 0x6a, ...load];
  const term = (j: number): number[] => {
    const scaled =
      kinds[j] === KIND_CODES.decay
        ? get(wv)
        : kinds[j] === KIND_CODES.pull
          ? [...get(wv), ...at(x(j)), ...f32x4.sub]
          : at(x(j));
    return [...get(acc), ...scaled, ...get(coefv(j)), ...f32x4.mul, ...f32x4.add, ...set(acc)];
  };
  const threshold = [
    ...get(acc),
    ...f32x4.abs,
    ...get(tauv),
    ...f32x4.sub,
    ...get(zero),
    ...f32x4.max,
    ...get(acc),
    ...get(zero),
    ...f32x4.lt,
    ...get(signMask),
    ...v128and,
    ...v128or,
    ...set(acc),
  ];
  const body = [
    ...vec([
      [2, I32],
      [6 + k, V128],
    ]),
    ...get(LR),
    ...f32x4.splat,
    ...set(lrv),
    ...get(TAU),
    ...f32x4.splat,
    ...set(tauv),
    ...v128const(0),
    ...set(zero),
    ...v128const(0x80000000),
    ...set(signMask),
    ...kinds.flatMap((_, j) => [...get(coef(j)), ...f32x4.splat, ...set(coefv(j))]),
    ...get(N),
    0x41,
    ...sleb(2),
    0x74, // i32.shl: end = n * 4 bytes
    ...set(end),
    0x02,
    0x40, // block
    0x03,
    0x40, // loop
    ...get(i),
    ...get(end),
    0x4f, // i32.ge_u
    0x0d,
    1, // br_if out of the block
    ...at(W),
    ...set(wv),
    ...at(G),
    ...set(acc),
    ...kinds.flatMap((_, j) => term(j)),
    // acc = w - acc * lr
    ...get(wv),
    ...get(acc),
    ...get(lrv),
    ...f32x4.mul,
    ...f32x4.sub,
    ...set(acc),
    ...(shrink ? threshold : []),
    ...get(OUT),
    ...get(i),
    0x6a,
    ...get(acc),
    ...store,
    ...get(i),
    0x41,
    ...sleb(16),
    0x6a,
    ...set(i),
    0x0c,
    0, // br to the loop
    0x0b,
    0x0b,
    0x0b,
  ];
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec([[0x60, ...vec(params.map((t) => [t])), ...vec([])]])),
    // The memory import: no maximum, or (the threaded build's) shared with at most 4 GiB.
    ...section(
      2,
      vec([
        [
          ...str('env'),
          ...str('memory'),
          0x02,
          ...(shared ? [0x03, 0x00, ...uleb(65536)] : [0x00, 0x00]),
        ],
      ]),
    ),
    ...section(3, vec([uleb(0)])),
    ...section(7, vec([[...str('update'), 0x00, ...uleb(0)]])),
    ...section(10, vec([[...uleb(body.length), ...body]])),
  ];
  return Uint8Array.from(bytes);
}

type ProgramFn = (...args: number[]) => void;

/** The parts of the WebAssembly API used here (the project's type libraries lack it). */
interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (
    module: object,
    imports: Record<string, Record<string, unknown>>,
  ) => { exports: unknown };
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

const modules = new Map<string, object>();
const instances = new WeakMap<WasmMemory, Map<string, ProgramFn | null>>();

/**
 * The compiled program instantiated on the backend's memory (which the single-threaded module
 * exports and the threaded one imports as shared memory), or null where that cannot be done (no
 * such memory, no SIMD): the kernel then runs the plain loops over the heap, with the same
 * results.
 */
function programFn(
  backend: BackendWasm,
  kinds: readonly number[],
  shrink: boolean,
): ProgramFn | null {
  const module = backend.wasm as unknown as {
    asm?: { memory?: WasmMemory };
    wasmMemory?: WasmMemory;
  };
  const memory = module.asm?.memory ?? module.wasmMemory;
  if (!memory) return null;
  const shared =
    typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  const key = `${kinds.join('')}${shrink ? 't' : ''}${shared ? 's' : ''}`;
  let fns = instances.get(memory);
  if (!fns) {
    fns = new Map();
    instances.set(memory, fns);
  }
  if (!fns.has(key)) {
    let fn: ProgramFn | null = null;
    try {
      if (!modules.has(key))
        modules.set(key, new wasmApi.Module(programBytes(kinds, shrink, shared)));
      const compiled = modules.get(key)!;
      fn = (new wasmApi.Instance(compiled, { env: { memory } }).exports as { update: ProgramFn })
        .update;
    } catch {
      fn = null;
    }
    fns.set(key, fn);
  }
  return fns.get(key)!;
}

function wasmKernel({ inputs, backend, attrs }: Parameters<KernelFunc>[0]): TensorInfo {
  const b = backend as BackendWasm;
  const { kinds, coefs, lr, tau } = attrs as unknown as UpdateAttrs;
  const { w, g } = inputs as Record<'w' | 'g', TensorInfo>;
  const fn = programFn(b, kinds, tau >= 0);
  const out = b.makeOutput(w.shape, 'float32');
  const n = tf.util.sizeFromShape(w.shape);
  const wAt = b.getMemoryOffset(w.dataId);
  const gAt = b.getMemoryOffset(g.dataId);
  const outAt = b.getMemoryOffset(out.dataId);
  const xAt = kinds.map((k, j) =>
    k === KIND_CODES.decay ? wAt : b.getMemoryOffset(inputs[`x${j}`]!.dataId),
  );
  const lr32 = f32(lr);
  const tau32 = tau < 0 ? -1 : f32(tau);
  const coef32 = coefs.map(f32);
  const lanesEnd = fn ? n - (n % 4) : 0;
  if (fn && lanesEnd > 0) fn(outAt, wAt, gAt, ...xAt, lr32, tau32, ...coef32, lanesEnd);
  if (lanesEnd < n) {
    const heap = new Float32Array((b.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer);
    const view = (at: number) => heap.subarray(at / 4, at / 4 + n);
    const terms = kinds.map((kind, j) => ({ kind, coef: coef32[j]!, x: view(xAt[j]!) }));
    updateRange(view(wAt), view(gAt), terms, lr32, tau32, view(outAt), lanesEnd, n);
  }
  return out;
}

function cpuKernel({ inputs, backend, attrs }: Parameters<KernelFunc>[0]): TensorInfo {
  const b = backend as MathBackendCPU;
  const { kinds, coefs, lr, tau } = attrs as unknown as UpdateAttrs;
  const { w, g } = inputs as Record<'w' | 'g', TensorInfo>;
  const read = (t: TensorInfo) => b.data.get(t.dataId)!.values as Float32Array;
  const wv = read(w);
  const terms = kinds.map((kind, j) => ({
    kind,
    coef: f32(coefs[j]!),
    x: kind === KIND_CODES.decay ? wv : read(inputs[`x${j}`]!),
  }));
  const out = new Float32Array(wv.length);
  updateRange(wv, read(g), terms, f32(lr), tau < 0 ? -1 : f32(tau), out, 0, wv.length);
  return b.makeTensorInfo(w.shape, 'float32', out);
}

export const SGD_UPDATE_KERNELS: readonly KernelConfig[] = [
  { kernelName: KERNEL, backendName: 'wasm', kernelFunc: wasmKernel as KernelFunc },
  { kernelName: KERNEL, backendName: 'cpu', kernelFunc: cpuKernel as KernelFunc },
];

/** Whether `backend` has the kernel: registered (webgpu: by initBackend), or ours to register. */
function ensureKernel(backend: string): boolean {
  if (tf.getKernel(KERNEL, backend)) return true;
  const config = SGD_UPDATE_KERNELS.find((k) => k.backendName === backend);
  if (!config) return false;
  if (!tf.getKernel(KERNEL, backend)) tf.registerKernel(config);
  return true;
}

/** The update written with tf ops: the reference, and the path where the kernel does not apply. */
export function sgdUpdateReference(
  w: tf.Tensor,
  g: tf.Tensor,
  terms: readonly UpdateTerm[],
  lr: number,
  tau?: number,
): tf.Tensor {
  return tf.tidy(() => {
    let acc = g;
    for (const t of terms) {
      const x = t.kind === 'scaled' ? t.x : t.kind === 'decay' ? w : tf.sub(w, t.x);
      acc = tf.add(acc, tf.mul(x, t.coef));
    }
    const v = tf.sub(w, tf.mul(acc, lr));
    return tau === undefined ? v : tf.mul(tf.sign(v), tf.relu(tf.sub(tf.abs(v), tau)));
  });
}

/**
 * `w - lr * (g + terms)`, then soft-thresholded by `tau` when given, as one kernel on cpu and
 * wasm (see the module comment). Returns a new tensor; the inputs are left alone.
 */
export function sgdUpdate(
  w: tf.Tensor,
  g: tf.Tensor,
  terms: readonly UpdateTerm[],
  lr: number,
  tau?: number,
): tf.Tensor {
  if (tau !== undefined && !(tau >= 0 && Number.isFinite(tau))) {
    throw new Error(`sgdUpdate: tau must be a finite number >= 0, got ${tau}`);
  }
  const same = (t: tf.Tensor) => t.dtype === 'float32' && tf.util.arraysEqual(t.shape, w.shape);
  if (
    !same(w) ||
    !same(g) ||
    !terms.every((t) => t.kind === 'decay' || same(t.x)) ||
    !ensureKernel(tf.getBackend())
  ) {
    return sgdUpdateReference(w, g, terms, lr, tau);
  }
  const inputs: Record<string, tf.Tensor> = { w, g };
  terms.forEach((t, j) => {
    if (t.kind !== 'decay') inputs[`x${j}`] = t.x;
  });
  const attrs: UpdateAttrs = {
    kinds: terms.map((t) => KIND_CODES[t.kind]),
    coefs: terms.map((t) => t.coef),
    lr,
    tau: tau ?? -1,
  };
  return tf.engine().runKernel(KERNEL, inputs, attrs as unknown as NamedAttrMap) as tf.Tensor;
}
