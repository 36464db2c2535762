/**
 * Client and server state at rest: round trips (each tensor stored dense or sparse, whichever is
 * smaller, and read back dense), optional parts left out, and the errors for malformed bytes,
 * each naming where.
 */
import { describe, expect, it } from 'vitest';
import type { StateRecord } from '../algorithms/types.js';
import {
  decodeClientState,
  decodeServerState,
  encodeClientState,
  encodeServerState,
} from './state.js';
import { pack, unpack } from './wire.js';

const f32 = (xs: number[]) => Float32Array.from(xs);
const sparsePart = { w: { shape: [2, 3], data: f32([0, 0, 1.5, 0, 0, 0]) } };
const densePart = {
  w: { shape: [2, 3], data: f32([1, 2, 0, 4, 5, 6]) },
  b: { shape: [1], data: f32([7]) },
};

/** The stored message as MessagePack reads it back (tensor kinds visible). */
const stored = (bytes: Uint8Array) =>
  unpack(bytes) as Record<string, Record<string, Record<string, { kind: string }>>>;

describe('client state', () => {
  it('round-trips tensor sets and numbers, storing a mostly-zero tensor sparse', () => {
    const state: StateRecord = {
      tensors: { sparse: sparsePart, dual: densePart },
      scalars: { lambda: 0.002 },
    };
    const bytes = encodeClientState(state);
    expect(decodeClientState(bytes, 'c')).toEqual(state);
    const raw = stored(bytes);
    expect(raw['tensors']!['sparse']!['w']!.kind).toBe('sparse');
    expect(raw['tensors']!['dual']!['w']!.kind).toBe('dense');
  });

  it('reads nil numbers as none', () => {
    const back = decodeClientState(pack({ tensors: {}, scalars: null }), 'c');
    expect(back).toEqual({ tensors: {} });
    expect(back).not.toHaveProperty('scalars');
  });

  it('reads a state without numbers back without a scalars field', () => {
    const back = decodeClientState(encodeClientState({ tensors: { sparse: sparsePart } }), 'c');
    expect(back).toEqual({ tensors: { sparse: sparsePart } });
    expect(back).not.toHaveProperty('scalars');
    expect(decodeClientState(encodeClientState({ tensors: {} }), 'c')).toEqual({ tensors: {} });
  });

  it('names the file and the part that is malformed', () => {
    const bad = (message: unknown) => () => decodeClientState(pack(message), 'clients/3.msgpack');
    expect(bad({ scalars: {} })).toThrow(
      'clients/3.msgpack: tensors: expected a mapping of tensor sets',
    );
    expect(bad(null)).toThrow('clients/3.msgpack: tensors: expected a mapping of tensor sets');
    expect(bad({ tensors: null })).toThrow(
      'clients/3.msgpack: tensors: expected a mapping of tensor sets',
    );
    expect(bad({ tensors: 5 })).toThrow(
      'clients/3.msgpack: tensors: expected a mapping of tensor sets',
    );
    expect(bad({ tensors: { dual: 3 } })).toThrow(
      'clients/3.msgpack: tensors.dual: expected a tensor set',
    );
    expect(bad({ tensors: { dual: null } })).toThrow(
      'clients/3.msgpack: tensors.dual: expected a tensor set',
    );
    expect(
      bad({ tensors: { dual: { w: { kind: 'dense', shape: [2], data: f32([1]) } } } }),
    ).toThrow('clients/3.msgpack: tensors.dual.w: sizes do not match shape [2]');
    const lowRank = {
      kind: 'lowrank',
      shape: [1, 1],
      rows: 1,
      cols: 1,
      rank: 1,
      left: f32([1]),
      right: f32([1]),
    };
    expect(bad({ tensors: { dual: { w: lowRank } } })).toThrow(
      'clients/3.msgpack: tensors.dual.w: low-rank tensors are not used in stored state',
    );
    expect(bad({ tensors: {}, scalars: { lambda: 'x' } })).toThrow(
      'clients/3.msgpack: scalars: expected a mapping of numbers',
    );
    expect(bad({ tensors: {}, scalars: 2 })).toThrow(
      'clients/3.msgpack: scalars: expected a mapping of numbers',
    );
  });
});

describe('server state', () => {
  it('round-trips the global model, tensor sets and numbers', () => {
    const state: StateRecord = {
      global: densePart,
      tensors: { hint: sparsePart },
      scalars: { seen: 3 },
    };
    const bytes = encodeServerState(state);
    expect(decodeServerState(bytes, 's')).toEqual(state);
    expect(stored(bytes)['global']!['w']!.kind).toBe('dense');
  });

  it('reads a nil global model as none', () => {
    const back = decodeServerState(pack({ tensors: {}, global: null }), 's');
    expect(back).toEqual({ tensors: {} });
    expect(back).not.toHaveProperty('global');
  });

  it('leaves out a missing global model and numbers', () => {
    const back = decodeServerState(encodeServerState({ tensors: { dual: densePart } }), 's');
    expect(back).toEqual({ tensors: { dual: densePart } });
    expect(Object.keys(back)).toEqual(['tensors']);
  });

  it('names the file and the part that is malformed', () => {
    const bad = (message: unknown) => () => decodeServerState(pack(message), 'server.msgpack');
    expect(bad({ tensors: {}, global: 4 })).toThrow(
      'server.msgpack: global.g: expected a tensor set',
    );
    expect(
      bad({ tensors: {}, global: { w: { kind: 'dense', shape: [3], data: f32([1]) } } }),
    ).toThrow('server.msgpack: global.g.w: sizes do not match shape [3]');
    expect(bad(null)).toThrow('server.msgpack: tensors: expected a mapping of tensor sets');
    expect(bad({ global: densePart })).toThrow(
      'server.msgpack: tensors: expected a mapping of tensor sets',
    );
    expect(bad({ tensors: {}, scalars: [1, 'a'] })).toThrow(
      'server.msgpack: scalars: expected a mapping of numbers',
    );
  });
});
