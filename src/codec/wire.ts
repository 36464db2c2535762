/**
 * Wire encodings of parameter sets: dense float32, low-rank factors and sparse (index, value)
 * pairs, packed with MessagePack. The simulator counts bytes through these same functions, and
 * the network runtime sends what they produce.
 */
import { decode, encode } from '@msgpack/msgpack';
import type { ArrayParam, ParamArrays } from '../tensor/params.js';
import { sizeOf } from '../tensor/params.js';

export interface DenseTensor {
  kind: 'dense';
  shape: number[];
  data: Float32Array;
}

/**
 * A tensor sent as two factors of its matrix view: `left` (rows x rank, U*sqrt(S)) and `right`
 * (rank x cols, sqrt(S)*V^T), both row-major. Decoding needs the matrix view of the tensor's role.
 */
export interface LowRankTensor {
  kind: 'lowrank';
  shape: number[];
  rows: number;
  cols: number;
  rank: number;
  left: Float32Array;
  right: Float32Array;
}

/** Non-zeros of a tensor: flat indices (ascending) and their values. */
export interface SparseTensor {
  kind: 'sparse';
  shape: number[];
  indices: Uint32Array;
  values: Float32Array;
}

export type WireTensor = DenseTensor | LowRankTensor | SparseTensor;
export type WireParams = Record<string, WireTensor>;

export function dense(p: ArrayParam): DenseTensor {
  return { kind: 'dense', shape: [...p.shape], data: p.data };
}

/** Sparse encoding of `p`. */
export function sparse(p: ArrayParam): SparseTensor {
  let nnz = 0;
  for (let i = 0; i < p.data.length; i++) if (p.data[i] !== 0) nnz++;
  const indices = new Uint32Array(nnz);
  const values = new Float32Array(nnz);
  let j = 0;
  for (let i = 0; i < p.data.length; i++) {
    if (p.data[i] !== 0) {
      indices[j] = i;
      values[j++] = p.data[i]!;
    }
  }
  return { kind: 'sparse', shape: [...p.shape], indices, values };
}

/** Dense or sparse, whichever carries fewer numbers (a sparse value costs an index too). */
export function denseOrSparse(p: ArrayParam): DenseTensor | SparseTensor {
  let nnz = 0;
  for (let i = 0; i < p.data.length; i++) if (p.data[i] !== 0) nnz++;
  return 2 * nnz < p.data.length ? sparse(p) : dense(p);
}

/** Numbers a wire tensor carries: what the FL literature counts as "parameters communicated". */
export function wireParamCount(t: WireTensor): number {
  switch (t.kind) {
    case 'dense':
      return t.data.length;
    case 'lowrank':
      return t.left.length + t.right.length;
    case 'sparse':
      return t.values.length;
  }
}

export function wireParamsCount(w: WireParams): number {
  return Object.values(w).reduce((n, t) => n + wireParamCount(t), 0);
}

/** Packs any message whose typed arrays are Float32Array or Uint32Array. */
export function pack(message: unknown): Uint8Array {
  return encode(message, { ignoreUndefined: true });
}

const FLOAT_FIELDS = ['data', 'left', 'right', 'values'] as const;

function asFloat32(v: unknown, where: string): Float32Array {
  if (!(v instanceof Uint8Array) || v.byteLength % 4 !== 0) {
    throw new Error(`${where}: expected float32 bytes`);
  }
  // Copy (also aligns); a Node Buffer's slice() would share its pool instead.
  return new Float32Array(new Uint8Array(v).buffer);
}

const isCount = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Restores a wire tensor's typed arrays after `unpack`, checking sizes against the shape. */
export function reviveTensor(raw: unknown, where: string): WireTensor {
  const r = raw as Record<string, unknown>;
  if (typeof r !== 'object' || r === null || !Array.isArray(r['shape'])) {
    throw new Error(`${where}: expected a tensor with a shape`);
  }
  const shape = r['shape'] as unknown[];
  if (!shape.every(isCount)) throw new Error(`${where}.shape: expected counts, got [${shape}]`);
  if (r['kind'] === 'lowrank')
    for (const f of ['rows', 'cols', 'rank'])
      if (!isCount(r[f])) throw new Error(`${where}.${f}: expected a count, got ${String(r[f])}`);
  const out: Record<string, unknown> = { ...r, shape };
  for (const f of FLOAT_FIELDS) if (f in r) out[f] = asFloat32(r[f], `${where}.${f}`);
  if (r['kind'] === 'sparse') {
    const b = r['indices'];
    if (!(b instanceof Uint8Array) || b.byteLength % 4 !== 0)
      throw new Error(`${where}.indices: expected uint32 bytes`);
    out['indices'] = new Uint32Array(new Uint8Array(b).buffer);
  }
  const t = out as unknown as WireTensor;
  if (!['dense', 'lowrank', 'sparse'].includes(String(r['kind']))) {
    throw new Error(`${where}.kind: expected dense, lowrank or sparse, got ${String(r['kind'])}`);
  }
  if (!sizesMatch(t)) throw new Error(`${where}: sizes do not match shape [${shape}]`);
  return t;
}

/** Whether a wire tensor's arrays have the sizes its shape (and rank) say. */
export function sizesMatch(t: WireTensor): boolean {
  const size = sizeOf(t.shape);
  switch (t.kind) {
    case 'dense':
      return t.data.length === size;
    case 'lowrank':
      return (
        t.rows * t.cols === size &&
        t.left.length === t.rows * t.rank &&
        t.right.length === t.rank * t.cols
      );
    case 'sparse':
      return t.indices.length === t.values.length && t.indices.every((i) => i < size);
  }
}

export function unpack(bytes: Uint8Array): unknown {
  return decode(bytes);
}

/** Decodes a sparse or dense wire tensor to plain values (low-rank needs `linalg`'s view). */
export function sparseToDense(t: SparseTensor): ArrayParam {
  const data = new Float32Array(sizeOf(t.shape));
  t.indices.forEach((idx, j) => {
    data[idx] = t.values[j]!;
  });
  return { shape: [...t.shape], data };
}

/** Wire form of a whole set, every tensor dense. */
export function denseParams(a: ParamArrays): WireParams {
  const out: WireParams = {};
  for (const [k, v] of Object.entries(a)) out[k] = dense(v);
  return out;
}
