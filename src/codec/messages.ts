/**
 * Whole downloads and uploads from their MessagePack form (`unpack` gives typed arrays back as
 * bytes): every tensor revived and its sizes checked against its shape, every field's type
 * checked. What comes from another process or the network is untrusted; errors name the field.
 * Checks against the model (names and shapes of the spec, finite values) are protocol/checks.ts's.
 */
import type { Download, Upload } from '../algorithms/types.js';
import type { ParamArrays } from '../tensor/params.js';
import { reviveTensor, type WireParams } from './wire.js';

function record(raw: unknown, where: string): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || ArrayBuffer.isView(raw))
    throw new Error(`${where}: expected a mapping`);
  return raw as Record<string, unknown>;
}

function count(raw: unknown, where: string): number {
  if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < 0)
    throw new Error(`${where}: expected a count (an integer of at least 0), got ${String(raw)}`);
  return raw;
}

/** Any number, NaN and infinities included (a diverged client's loss is one). */
function number(raw: unknown, where: string): number {
  if (typeof raw !== 'number') throw new Error(`${where}: expected a number`);
  return raw;
}

function wireParams(raw: unknown, where: string): WireParams {
  const out: WireParams = {};
  for (const [name, t] of Object.entries(record(raw, where)))
    out[name] = reviveTensor(t, `${where}.${name}`);
  return out;
}

function denseSet(raw: unknown, where: string): ParamArrays {
  const out: ParamArrays = {};
  for (const [name, t] of Object.entries(record(raw, where))) {
    const revived = reviveTensor({ ...record(t, `${where}.${name}`), kind: 'dense' }, where);
    if (revived.kind !== 'dense') throw new Error(`${where}.${name}: expected a dense tensor`);
    out[name] = { shape: revived.shape, data: revived.data };
  }
  return out;
}

function extraSets(raw: unknown, where: string): Record<string, ParamArrays> | undefined {
  if (raw === undefined) return undefined;
  const out: Record<string, ParamArrays> = {};
  for (const [set, tensors] of Object.entries(record(raw, where)))
    out[set] = denseSet(tensors, `${where}.${set}`);
  return out;
}

function known(r: Record<string, unknown>, keys: readonly string[], where: string): void {
  const unknown = Object.keys(r).filter((k) => !keys.includes(k));
  if (unknown.length) throw new Error(`${where}: unknown field(s) ${unknown.join(', ')}`);
}

/** A download from its unpacked form. */
export function decodeDownload(raw: unknown, where = 'download'): Download {
  const r = record(raw, where);
  known(r, ['round', 'params', 'extra', 'scalars'], where);
  const down: Download = {
    round: count(r['round'], `${where}.round`),
    params: wireParams(r['params'], `${where}.params`),
  };
  const extra = extraSets(r['extra'], `${where}.extra`);
  if (extra) down.extra = extra;
  if (r['scalars'] !== undefined) {
    const scalars: Record<string, number> = {};
    for (const [k, v] of Object.entries(record(r['scalars'], `${where}.scalars`)))
      scalars[k] = number(v, `${where}.scalars.${k}`);
    down.scalars = scalars;
  }
  return down;
}

/** An upload from its unpacked form. */
export function decodeUpload(raw: unknown, where = 'upload'): Upload {
  const r = record(raw, where);
  known(r, ['round', 'params', 'extra', 'numSamples', 'trainLoss', 'trainAcc'], where);
  const up: Upload = {
    round: count(r['round'], `${where}.round`),
    params: wireParams(r['params'], `${where}.params`),
    numSamples: count(r['numSamples'], `${where}.numSamples`),
    trainLoss: number(r['trainLoss'], `${where}.trainLoss`),
    trainAcc: number(r['trainAcc'], `${where}.trainAcc`),
  };
  const extra = extraSets(r['extra'], `${where}.extra`);
  if (extra) up.extra = extra;
  return up;
}
