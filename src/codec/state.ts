/**
 * Client and server state at rest: a `StateRecord` (each algorithm's codec maps its typed state
 * to one) as MessagePack with every tensor dense or sparse, whichever is smaller (FedSLR's
 * personal parts become sparse). Decoding checks every tensor's sizes.
 */
import type { StateRecord } from '../algorithms/types.js';
import type { ArrayParam, ParamArrays } from '../tensor/params.js';
import {
  denseOrSparse,
  pack,
  reviveTensor,
  sparseToDense,
  unpack,
  type WireTensor,
} from './wire.js';

type Sets = Record<string, ParamArrays>;

function encodeSets(sets: Sets): Record<string, Record<string, WireTensor>> {
  const out: Record<string, Record<string, WireTensor>> = {};
  for (const [name, set] of Object.entries(sets)) {
    out[name] = {};
    for (const [k, v] of Object.entries(set)) out[name][k] = denseOrSparse(v);
  }
  return out;
}

function decodeTensor(raw: unknown, where: string): ArrayParam {
  const t = reviveTensor(raw, where);
  if (t.kind === 'lowrank')
    throw new Error(`${where}: low-rank tensors are not used in stored state`);
  return t.kind === 'sparse' ? sparseToDense(t) : { shape: t.shape, data: t.data };
}

function decodeSets(raw: unknown, where: string): Sets {
  if (typeof raw !== 'object' || raw === null)
    throw new Error(`${where}: expected a mapping of tensor sets`);
  const out: Sets = {};
  for (const [name, set] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof set !== 'object' || set === null)
      throw new Error(`${where}.${name}: expected a tensor set`);
    out[name] = {};
    for (const [k, v] of Object.entries(set as Record<string, unknown>))
      out[name][k] = decodeTensor(v, `${where}.${name}.${k}`);
  }
  return out;
}

function decodeScalars(raw: unknown, where: string): Record<string, number> | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'object' || Object.values(raw).some((v) => typeof v !== 'number')) {
    throw new Error(`${where}: expected a mapping of numbers`);
  }
  return raw as Record<string, number>;
}

export function encodeClientState(s: StateRecord): Uint8Array {
  return pack({ tensors: encodeSets(s.tensors), scalars: s.scalars });
}

export function decodeClientState(bytes: Uint8Array, where: string): StateRecord {
  const raw = unpack(bytes) as Record<string, unknown>;
  const state: StateRecord = { tensors: decodeSets(raw?.['tensors'], `${where}: tensors`) };
  const scalars = decodeScalars(raw['scalars'], `${where}: scalars`);
  if (scalars) state.scalars = scalars;
  return state;
}

export function encodeServerState(s: StateRecord): Uint8Array {
  return pack({
    global: s.global ? encodeSets({ g: s.global })['g'] : undefined,
    tensors: encodeSets(s.tensors),
    scalars: s.scalars,
  });
}

export function decodeServerState(bytes: Uint8Array, where: string): StateRecord {
  const raw = unpack(bytes) as Record<string, unknown>;
  const state: StateRecord = { tensors: decodeSets(raw?.['tensors'], `${where}: tensors`) };
  if (raw['global'] !== undefined && raw['global'] !== null)
    state.global = decodeSets({ g: raw['global'] }, `${where}: global`)['g']!;
  const scalars = decodeScalars(raw['scalars'], `${where}: scalars`);
  if (scalars) state.scalars = scalars;
  return state;
}
