/**
 * Parameter sets: a model's trainable tensors as an ordered record of named tensors, plus the spec
 * that says each tensor's shape and role. FedSLR's `W + P`, Ditto's personal copy and FedRep's
 * head/body split are all operations on these sets.
 *
 * Layouts are tfjs's: conv kernels are [kh, kw, in, out]; dense weights are [in, out].
 * Every function that returns tensors returns new ones the caller owns; inputs are never disposed.
 */
import * as tf from '@tensorflow/tfjs-core';

export type Role = 'conv' | 'dense' | 'bias' | 'normScale' | 'normOffset';
export const ROLES: readonly Role[] = ['conv', 'dense', 'bias', 'normScale', 'normOffset'];

export interface ParamInfo {
  readonly name: string;
  readonly shape: readonly number[];
  readonly role: Role;
}
export type ParamSpec = readonly ParamInfo[];

/** Named tensors in spec order. */
export type Params = Record<string, tf.Tensor>;

/** A tensor at rest: shape and float32 values (for state, the wire and worker threads). */
export interface ArrayParam {
  shape: number[];
  data: Float32Array;
}
export type ParamArrays = Record<string, ArrayParam>;

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** True when every value is finite (no NaN, no infinity). */
export function allFinite(a: ArrayLike<number>): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return false;
  return true;
}

export function paramCount(spec: ParamSpec): number {
  return spec.reduce((n, p) => n + sizeOf(p.shape), 0);
}

/** Names of the spec's tensors whose role is one of `roles`. */
export function namesByRole(spec: ParamSpec, roles: readonly Role[]): string[] {
  return spec.filter((p) => roles.includes(p.role)).map((p) => p.name);
}

function sameKeys(a: Params, b: Params, op: string): string[] {
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length || ka.some((k) => !(k in b))) {
    throw new Error(`${op}: parameter sets differ: [${ka.join(', ')}] vs [${kb.join(', ')}]`);
  }
  return ka;
}

/** Applies `fn` to every tensor (inside tidy); returns a new set. */
export function mapParams(a: Params, fn: (t: tf.Tensor, name: string) => tf.Tensor): Params {
  const out: Params = {};
  for (const k of Object.keys(a)) out[k] = tf.tidy(() => fn(a[k]!, k));
  return out;
}

/** Applies `fn` to matching tensors of two sets (inside tidy); returns a new set. */
export function zipParams(
  a: Params,
  b: Params,
  fn: (x: tf.Tensor, y: tf.Tensor, name: string) => tf.Tensor,
  op = 'zipParams',
): Params {
  const out: Params = {};
  for (const k of sameKeys(a, b, op)) out[k] = tf.tidy(() => fn(a[k]!, b[k]!, k));
  return out;
}

export const add = (a: Params, b: Params): Params => zipParams(a, b, (x, y) => tf.add(x, y), 'add');
export const sub = (a: Params, b: Params): Params => zipParams(a, b, (x, y) => tf.sub(x, y), 'sub');
export const scale = (a: Params, s: number): Params => mapParams(a, (x) => tf.mul(x, s));
/** `s * x + y`. */
export const axpy = (s: number, x: Params, y: Params): Params =>
  zipParams(x, y, (xi, yi) => tf.add(tf.mul(xi, s), yi), 'axpy');
export const clone = (a: Params): Params => mapParams(a, (x) => x.clone());
export const zerosLike = (a: Params): Params => mapParams(a, (x) => tf.zerosLike(x));

/** Unweighted mean, or weighted by `weights` (normalised here). */
export function mean(sets: readonly Params[], weights?: readonly number[]): Params {
  if (sets.length === 0) throw new Error('mean: no parameter sets');
  if (weights && weights.length !== sets.length) {
    throw new Error(`mean: ${weights.length} weights for ${sets.length} sets`);
  }
  const total = weights ? weights.reduce((s, w) => s + w, 0) : sets.length;
  if (!(total > 0)) throw new Error('mean: weights must sum to a positive number');
  const first = sets[0]!;
  for (const s of sets) sameKeys(first, s, 'mean');
  return mapParams(first, (_, k) => {
    let acc = tf.zerosLike(first[k]!);
    sets.forEach((s, i) => {
      acc = tf.add(acc, tf.mul(s[k]!, (weights ? weights[i]! : 1) / total));
    });
    return acc;
  });
}

/** Sum over all tensors of the element-wise product. */
export function dot(a: Params, b: Params): number {
  return tf.tidy(() => {
    let s = tf.scalar(0);
    for (const k of sameKeys(a, b, 'dot')) s = tf.add(s, tf.sum(tf.mul(a[k]!, b[k]!)));
    return s.dataSync()[0]!;
  });
}

/** Euclidean norm of the whole set. */
export function norm(a: Params): number {
  return Math.sqrt(dot(a, a));
}

/** The tensors named in `names`, in that order (not copies). */
export function select(a: Params, names: readonly string[]): Params {
  const out: Params = {};
  for (const n of names) {
    if (!(n in a))
      throw new Error(`select: no parameter '${n}' (have ${Object.keys(a).join(', ')})`);
    out[n] = a[n]!;
  }
  return out;
}

export function disposeParams(...sets: (Params | undefined)[]): void {
  for (const s of sets) if (s) for (const t of Object.values(s)) t.dispose();
}

/**
 * Copies tensors out to plain arrays, waiting for each backend read (the only kind WebGPU has in
 * Node). Training and evaluation use this; the values are those of {@link toArrays}.
 */
export async function readArrays(a: Params): Promise<ParamArrays> {
  const out: ParamArrays = {};
  for (const [k, t] of Object.entries(a)) {
    out[k] = { shape: [...t.shape], data: new Float32Array((await t.data()) as Float32Array) };
  }
  return out;
}

/** Copies tensors out to plain arrays (synchronously; not on WebGPU in Node, see readArrays). */
export function toArrays(a: Params): ParamArrays {
  const out: ParamArrays = {};
  for (const [k, t] of Object.entries(a)) {
    out[k] = { shape: [...t.shape], data: new Float32Array(t.dataSync() as Float32Array) };
  }
  return out;
}

/** Makes tensors from plain arrays (the data is copied into the backend). */
export function fromArrays(a: ParamArrays): Params {
  const out: Params = {};
  for (const [k, v] of Object.entries(a)) {
    if (v.data.length !== sizeOf(v.shape)) {
      throw new Error(`fromArrays: '${k}' has ${v.data.length} values for shape [${v.shape}]`);
    }
    out[k] = tf.tensor(v.data, v.shape, 'float32');
  }
  return out;
}

/** Checks that a set has exactly the spec's names and shapes. */
export function checkAgainstSpec(
  a: Params | ParamArrays,
  spec: ParamSpec,
  what = 'parameters',
): void {
  const names = spec.map((p) => p.name);
  const keys = Object.keys(a);
  const missing = names.filter((n) => !(n in a));
  const extra = keys.filter((k) => !names.includes(k));
  if (missing.length || extra.length) {
    throw new Error(
      `${what}: ${missing.length ? `missing [${missing.join(', ')}]` : ''}${missing.length && extra.length ? '; ' : ''}${extra.length ? `unexpected [${extra.join(', ')}]` : ''}`,
    );
  }
  for (const p of spec) {
    const shape = [...a[p.name]!.shape];
    if (shape.length !== p.shape.length || shape.some((d, i) => d !== p.shape[i])) {
      throw new Error(`${what}: '${p.name}' has shape [${shape}], expected [${p.shape}]`);
    }
  }
}
