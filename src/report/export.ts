/**
 * Exporting a run's final models as safetensors in PyTorch layout and PyTorch names (EXPORT.md
 * documents both): a client's personal model, the global model, or the global model's low-rank
 * factors.
 */
import type { ParamArrays, ParamInfo, ParamSpec } from '../tensor/params.js';
import { InputError } from '../util/errors.js';
import { encodeSafetensors, type NamedTensor } from './safetensors.js';

/** What export needs of a run's final state (src/sim/final.ts's FinalState has all of it). */
export interface FinalModels {
  modelName: string;
  /** The round the state is from. */
  round?: number;
  config?: { algorithm: { name: string } };
  spec: ParamSpec;
  global?: ParamArrays;
  factors?: Record<
    string,
    { left: Float32Array; right: Float32Array; rank: number; rows: number; cols: number }
  >;
  numClients: number;
  personal(client: number): Promise<ParamArrays | null>;
}

export type ExportWhat =
  | { kind: 'global' }
  | { kind: 'factors' }
  | { kind: 'client'; client: number };

/** Bad input for an export. */
export class ExportInputError extends InputError {
  override name = 'ExportInputError';
}

/** Row-major `data` of `shape` with its axes reordered: output axis k is input axis perm[k]. */
export function permute(
  data: Float32Array,
  shape: readonly number[],
  perm: readonly number[],
): { data: Float32Array; shape: number[] } {
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p]!);
  const inStrides = new Array<number>(rank);
  let s = 1;
  for (let k = rank - 1; k >= 0; k--) {
    inStrides[k] = s;
    s *= shape[k]!;
  }
  const strideOfOut = perm.map((p) => inStrides[p]!);
  const out = new Float32Array(data.length);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let k = 0; k < rank; k++) src += idx[k]! * strideOfOut[k]!;
    out[o] = data[src]!;
    for (let k = rank - 1; k >= 0; k--) {
      if (++idx[k]! < outShape[k]!) break;
      idx[k] = 0;
    }
  }
  return { data: out, shape: outShape };
}

/** The PyTorch name of a parameter: `.kernel` and norm `.scale` become `.weight`, `.offset` `.bias`. */
export function torchName(p: ParamInfo): string {
  const swap = (from: string, to: string) =>
    p.name.endsWith(from) ? p.name.slice(0, -from.length) + to : p.name;
  switch (p.role) {
    case 'conv':
    case 'dense':
      return swap('.kernel', '.weight');
    case 'normScale':
      return swap('.scale', '.weight');
    case 'normOffset':
      return swap('.offset', '.bias');
    default:
      return p.name;
  }
}

/** A tensor in PyTorch layout: conv [kh,kw,in,out] -> [out,in,kh,kw]; dense [in,out] -> [out,in]. */
export function toTorch(p: ParamInfo, data: Float32Array): NamedTensor {
  const t =
    p.role === 'conv'
      ? permute(data, p.shape, [3, 2, 0, 1])
      : p.role === 'dense'
        ? permute(data, p.shape, [1, 0])
        : { data, shape: [...p.shape] };
  return { name: torchName(p), ...t };
}

function modelTensors(spec: ParamSpec, params: ParamArrays, what: string): NamedTensor[] {
  return spec.map((p) => {
    const a = params[p.name];
    if (!a) throw new ExportInputError(`${what} has no tensor '${p.name}'`);
    if (a.data.length !== p.shape.reduce((x, y) => x * y, 1)) {
      throw new ExportInputError(
        `${what}: '${p.name}' has ${a.data.length} values for shape [${p.shape}]`,
      );
    }
    return toTorch(p, a.data);
  });
}

/**
 * The factors `U` [rows, r] and `V` [r, cols] with `U @ V` = the PyTorch-side matrix of a weight:
 * a dense layer's weight [out, in] itself; a conv weight [o, i, kh, kw] viewed as
 * `w.permute(0, 2, 1, 3).reshape(o * kh, i * kw)` (FEDSLR.md's matrix view).
 */
function factorTensors(
  p: ParamInfo,
  f: NonNullable<FinalModels['factors']>[string],
): NamedTensor[] {
  const { left, right, rank, rows, cols } = f;
  if (left.length !== rows * rank || right.length !== rank * cols) {
    throw new ExportInputError(
      `factors of '${p.name}': left has ${left.length} values and right ${right.length} for a ` +
        `[${rows} x ${cols}] matrix of rank ${rank}`,
    );
  }
  const base = torchName(p);
  if (p.role === 'dense') {
    // The tfjs matrix is [in, out] = left @ right, so PyTorch's [out, in] = right^T @ left^T.
    return [
      { name: `${base}_u`, ...permute(right, [rank, cols], [1, 0]) },
      { name: `${base}_v`, ...permute(left, [rows, rank], [1, 0]) },
    ];
  }
  return [
    { name: `${base}_u`, data: left, shape: [rows, rank] },
    { name: `${base}_v`, data: right, shape: [rank, cols] },
  ];
}

const algo = (f: FinalModels): string =>
  f.config ? `algorithm ${f.config.algorithm.name}` : 'its algorithm';

/** The tensors and metadata of one export, in spec order. */
export async function exportTensors(
  final: FinalModels,
  what: ExportWhat,
  source: string,
): Promise<{ tensors: NamedTensor[]; metadata: Record<string, string> }> {
  const metadata: Record<string, string> = {
    format: 'pt',
    'fedslr.model': final.modelName,
    'fedslr.export': what.kind,
    'fedslr.layout': 'pytorch: conv weight [out, in, kh, kw], dense weight [out, in]',
  };
  if (final.round !== undefined) metadata['fedslr.round'] = String(final.round);
  if (what.kind === 'client') {
    if (!Number.isInteger(what.client) || what.client < 0 || what.client >= final.numClients) {
      throw new ExportInputError(
        `client ${what.client} does not exist: run '${source}' has clients 0..${final.numClients - 1}`,
      );
    }
    const params = await final.personal(what.client);
    if (!params) {
      throw new ExportInputError(
        `run '${source}' keeps no personal models (${algo(final)} has none); export the global ` +
          'model with --global',
      );
    }
    metadata['fedslr.client'] = String(what.client);
    return { tensors: modelTensors(final.spec, params, `client ${what.client}'s model`), metadata };
  }
  if (!final.global) {
    throw new ExportInputError(
      `run '${source}' keeps no global model (${algo(final)} has none); export a client's model ` +
        'with --client <i>',
    );
  }
  if (what.kind === 'global') {
    return { tensors: modelTensors(final.spec, final.global, 'the global model'), metadata };
  }
  const factors = final.factors;
  if (!factors || Object.keys(factors).length === 0) {
    throw new ExportInputError(
      `run '${source}' keeps no low-rank factors: at its final round no weight matrix of the ` +
        `global model (${algo(final)}) was low-rank enough to be sent as factors ` +
        '(rank * (rows + cols) < rows * cols); export the dense model with --global',
    );
  }
  const tensors: NamedTensor[] = [];
  const ranks: Record<string, number> = {};
  for (const p of final.spec) {
    const f = factors[p.name];
    if (f) {
      tensors.push(...factorTensors(p, f));
      ranks[torchName(p)] = f.rank;
    } else {
      tensors.push(...modelTensors([p], final.global, 'the global model'));
    }
  }
  metadata['fedslr.ranks'] = JSON.stringify(ranks);
  return { tensors, metadata };
}

/** The safetensors bytes of one export. */
export async function exportSafetensors(
  final: FinalModels,
  what: ExportWhat,
  source: string,
  extraMetadata: Record<string, string> = {},
): Promise<Uint8Array> {
  const { tensors, metadata } = await exportTensors(final, what, source);
  return encodeSafetensors(tensors, { ...metadata, ...extraMetadata });
}
