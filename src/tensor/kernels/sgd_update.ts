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
 * On wasm the loops are a small hand-assembled WebAssembly SIMD module that shares the backend's
 * memory, run block by block so that every intermediate stays in cache; on cpu, plain loops.
 * Other backends, other dtypes and mismatched shapes take the reference path.
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

const KIND_CODES = { scaled: 0, decay: 1, pull: 2 } as const;

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
 * A function of `params` (i32 byte offsets first, then one f32 scalar, then the i32 element
 * count, a multiple of 4) looping over 16-byte lanes with byte index `i`; `value` pushes the
 * v128 to store at `params[0] + i`. Locals after the params: i, end, the splatted scalar, then
 * `extra` v128 locals set up by `prologue`.
 */
function lanes(
  offsets: number,
  value: (at: (param: number) => number[], scalar: number[], extra: number) => number[],
  prologue: (extra: number) => number[] = () => [],
  extraLocals = 0,
): { params: number[]; body: number[] } {
  const params = [...Array(offsets).fill(I32), F32, I32];
  const scalarParam = offsets;
  const countParam = offsets + 1;
  const i = params.length;
  const end = i + 1;
  const scalar = i + 2;
  const extra = i + 3;
  const at = (p: number) => [...get(p), ...get(i), 0x6a, ...load];
  const locals = vec([
    [2, I32],
    [1 + extraLocals, V128],
  ]);
  const body = [
    ...locals,
    ...get(scalarParam),
    ...f32x4.splat,
    ...set(scalar),
    ...get(countParam),
    0x41,
    ...sleb(2),
    0x74, // i32.shl: end = count * 4 bytes
    ...set(end),
    ...prologue(extra),
    0x02,
    0x40, // block
    0x03,
    0x40, // loop
    ...get(i),
    ...get(end),
    0x4f, // i32.ge_u
    0x0d,
    1, // br_if out of the block
    ...get(0),
    ...get(i),
    0x6a,
    ...value(at, get(scalar), extra),
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
  return { params, body };
}

/** The exported functions, in order: each takes byte offsets, a scalar and a count. */
const FUNCTIONS = {
  /** dst = a + x * k */
  axpy: lanes(3, (at, k) => [...at(1), ...at(2), ...k, ...f32x4.mul, ...f32x4.add]),
  /** dst = a + (w - x) * k */
  pull: lanes(4, (at, k) => [
    ...at(1),
    ...at(2),
    ...at(3),
    ...f32x4.sub,
    ...k,
    ...f32x4.mul,
    ...f32x4.add,
  ]),
  /** dst = w - g * lr */
  step: lanes(3, (at, lr) => [...at(1), ...at(2), ...lr, ...f32x4.mul, ...f32x4.sub]),
  /** dst = sign(v) * max(|v| - tau, 0) for v = dst, sign(0) = 0 */
  shrink: lanes(
    1,
    (at, tau, extra) => [
      ...at(0),
      ...f32x4.abs,
      ...tau,
      ...f32x4.sub,
      ...get(extra),
      ...f32x4.max,
      ...at(0),
      ...get(extra),
      ...f32x4.lt,
      ...get(extra + 1),
      ...v128and,
      ...v128or,
    ],
    (extra) => [...v128const(0), ...set(extra), ...v128const(0x80000000), ...set(extra + 1)],
    2,
  ),
};

type LaneFunctions = {
  [K in keyof typeof FUNCTIONS]: (...args: number[]) => void;
};

function moduleBytes(): Uint8Array {
  const fns = Object.values(FUNCTIONS);
  const names = Object.keys(FUNCTIONS);
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec(fns.map((f) => [0x60, ...vec(f.params.map((p) => [p])), ...vec([])]))),
    ...section(2, vec([[...str('env'), ...str('memory'), 0x02, 0x00, 0x00]])),
    ...section(3, vec(fns.map((_, i) => uleb(i)))),
    ...section(7, vec(names.map((n, i) => [...str(n), 0x00, ...uleb(i)]))),
    ...section(10, vec(fns.map((f) => [...uleb(f.body.length), ...f.body]))),
  ];
  return Uint8Array.from(bytes);
}

/** The parts of the WebAssembly API used here (the project's type libraries lack it). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (
    module: object,
    imports: Record<string, Record<string, unknown>>,
  ) => { exports: unknown };
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

let compiled: object | undefined;
const instances = new WeakMap<WasmMemory, LaneFunctions | null>();

/**
 * Our functions instantiated on the backend's memory (which its module exports), or null where
 * that cannot be done (a build without the export, a shared memory, no SIMD): the kernel then
 * runs the plain loops over the heap, with the same results.
 */
function laneFunctions(backend: BackendWasm): LaneFunctions | null {
  const memory = (backend.wasm as unknown as { asm?: { memory?: WasmMemory } }).asm?.memory;
  if (!memory) return null;
  if (!instances.has(memory)) {
    let fns: LaneFunctions | null = null;
    try {
      compiled ??= new wasmApi.Module(moduleBytes());
      fns = new wasmApi.Instance(compiled, { env: { memory } }).exports as LaneFunctions;
    } catch {
      fns = null;
    }
    instances.set(memory, fns);
  }
  return instances.get(memory)!;
}

/** Elements per block: the block's inputs and output stay in cache between the passes. */
const BLOCK = 2048;

function wasmKernel({ inputs, backend, attrs }: Parameters<KernelFunc>[0]): TensorInfo {
  const b = backend as BackendWasm;
  const { kinds, coefs, lr, tau } = attrs as unknown as UpdateAttrs;
  const { w, g } = inputs as Record<'w' | 'g', TensorInfo>;
  const fns = laneFunctions(b);
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
  const lanesEnd = fns ? n - (n % 4) : 0;
  for (let s = 0; fns && s < lanesEnd; s += BLOCK) {
    const len = Math.min(BLOCK, lanesEnd - s);
    const o = s * 4;
    let src = gAt + o;
    kinds.forEach((k, j) => {
      if (k === KIND_CODES.pull) fns.pull(outAt + o, src, wAt + o, xAt[j]! + o, coef32[j]!, len);
      else fns.axpy(outAt + o, src, xAt[j]! + o, coef32[j]!, len);
      src = outAt + o;
    });
    fns.step(outAt + o, wAt + o, src, lr32, len);
    if (tau32 >= 0) fns.shrink(outAt + o, tau32, len);
  }
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

function ensureKernel(backend: string): boolean {
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
