import { describe, expect, it } from 'vitest';
import {
  dense,
  denseOrSparse,
  pack,
  reviveTensor,
  sparse,
  sparseToDense,
  unpack,
  wireParamCount,
} from './wire.js';

const p = (data: number[], shape = [data.length]) => ({ shape, data: Float32Array.from(data) });

describe('wire encodings', () => {
  it('round-trip dense and sparse tensors through MessagePack, also from a Node Buffer', () => {
    const a = p([0, 1.5, 0, 0, -2, 0], [2, 3]);
    for (const t of [dense(a), sparse(a)]) {
      const bytes = pack({ t });
      for (const input of [
        bytes,
        Buffer.concat([Buffer.alloc(3), Buffer.from(bytes)]).subarray(3),
      ]) {
        const back = reviveTensor((unpack(input) as { t: unknown }).t, 't');
        const values =
          back.kind === 'sparse'
            ? sparseToDense(back).data
            : back.kind === 'dense'
              ? back.data
              : null;
        expect(Array.from(values!)).toEqual(Array.from(a.data));
        expect(back.shape).toEqual([2, 3]);
      }
    }
  });

  it('choose sparse only when it carries fewer numbers, and count what is sent', () => {
    expect(denseOrSparse(p([0, 0, 0, 1])).kind).toBe('sparse');
    expect(denseOrSparse(p([1, 0, 1, 0])).kind).toBe('dense');
    expect(wireParamCount(sparse(p([0, 0, 3, 0])))).toBe(1);
    expect(wireParamCount(dense(p([0, 0, 3, 0])))).toBe(4);
  });

  it('reject malformed tensors, naming where', () => {
    expect(() =>
      reviveTensor({ kind: 'dense', shape: [3], data: new Uint8Array(8) }, 'msg.w'),
    ).toThrow(/msg\.w: sizes do not match shape \[3\]/);
    expect(() =>
      reviveTensor({ kind: 'dense', shape: [1], data: new Uint8Array(3) }, 'msg.w'),
    ).toThrow(/msg\.w\.data: expected float32 bytes/);
    expect(() => reviveTensor({ kind: 'other', shape: [1] }, 'w')).toThrow(
      /w\.kind: expected dense, lowrank or sparse/,
    );
    const s = sparse(p([0, 1]));
    const bad = {
      ...s,
      indices: new Uint8Array(new Uint32Array([5]).buffer),
      values: new Uint8Array(s.values.buffer),
    };
    expect(() => reviveTensor(bad, 'w')).toThrow(/sizes do not match/);
    expect(() => reviveTensor(null, 'w')).toThrow(/w: expected a tensor with a shape/);
  });
});
