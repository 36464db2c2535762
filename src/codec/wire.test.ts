import { describe, expect, it } from 'vitest';
import {
  dense,
  denseOrSparse,
  denseParams,
  type LowRankTensor,
  pack,
  reviveTensor,
  sparse,
  sparseToDense,
  unpack,
  wireParamCount,
  wireParamsCount,
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

describe('low-rank wire tensors', () => {
  // A 3x2 matrix as rank-1 factors: left 3x1, right 1x2.
  const lowRank = (): LowRankTensor => ({
    kind: 'lowrank',
    shape: [3, 2],
    rows: 3,
    cols: 2,
    rank: 1,
    left: Float32Array.from([1, -2, 0.5]),
    right: Float32Array.from([3, 0.25]),
  });
  const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer.slice(0));

  it('round-trip through MessagePack with both factors, and count rank * (rows + cols) numbers', () => {
    const t = lowRank();
    const back = reviveTensor((unpack(pack({ t })) as { t: unknown }).t, 't');
    expect(back).toEqual(t);
    expect(wireParamCount(t)).toBe(5);
    expect(wireParamsCount({ t, b: dense(p([1, 2])) })).toBe(7);
  });

  it('reject factors whose sizes do not match the matrix view or the shape', () => {
    const raw = (over: Partial<Record<keyof LowRankTensor, unknown>>) => {
      const t = { ...lowRank(), ...over };
      return {
        ...t,
        left: bytesOf(t.left as Float32Array),
        right: bytesOf(t.right as Float32Array),
      };
    };
    expect(() => reviveTensor(raw({}), 'w')).not.toThrow();
    expect(() => reviveTensor(raw({ rows: 2 }), 'w')).toThrow(
      /w: sizes do not match shape \[3,2\]/,
    );
    expect(() => reviveTensor(raw({ left: Float32Array.from([1, 2]) }), 'w')).toThrow(/sizes/);
    expect(() => reviveTensor(raw({ right: Float32Array.from([1]) }), 'w')).toThrow(/sizes/);
    expect(() => reviveTensor(raw({ rank: 2 }), 'w')).toThrow(/sizes/);
  });
});

describe('sparse wire tensors at their limits', () => {
  const raw = (indices: number[], values: number[], shape = [4]) => ({
    kind: 'sparse',
    shape,
    indices: new Uint8Array(Uint32Array.from(indices).buffer),
    values: new Uint8Array(Float32Array.from(values).buffer),
  });

  it('accept the last index and reject one past it, or more indices than values', () => {
    expect(
      sparseToDense(reviveTensor(raw([3], [7]), 'w') as ReturnType<typeof sparse>).data,
    ).toEqual(Float32Array.from([0, 0, 0, 7]));
    expect(() => reviveTensor(raw([4], [7]), 'w')).toThrow(/w: sizes do not match shape \[4\]/);
    expect(() => reviveTensor(raw([0, 1], [7]), 'w')).toThrow(/sizes do not match/);
    expect(() => reviveTensor({ ...raw([0], [1]), indices: [0] }, 'w')).toThrow(
      /^w\.indices: expected uint32 bytes$/,
    );
    expect(() => reviveTensor({ ...raw([0], [1]), indices: new Uint8Array(3) }, 'w')).toThrow(
      /w\.indices: expected uint32 bytes/,
    );
  });

  it('keep every non-zero with its flat index', () => {
    const s = sparse(p([0, -1, 0, 2.5, 0, 0]));
    expect(Array.from(s.indices)).toEqual([1, 3]);
    expect(Array.from(s.values)).toEqual([-1, 2.5]);
    expect(s.shape).toEqual([6]);
    expect(wireParamCount(s)).toBe(2);
    expect(sparseToDense(s).shape).toEqual([6]);
  });

  it('encode a whole set dense, and leave undefined fields out of a message', () => {
    const set = { a: p([1, 2]), b: p([0, 0, 0]) };
    const w = denseParams(set);
    expect(Object.values(w).map((t) => t.kind)).toEqual(['dense', 'dense']);
    expect(w['b']!.kind === 'dense' && w['b']!.data).toBe(set.b.data);
    expect(unpack(pack({ x: 1, y: undefined }))).toEqual({ x: 1 });
  });
});
