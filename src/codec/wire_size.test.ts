import { describe, expect, it } from 'vitest';
import { pack } from './wire.js';
import { binBytes, denseTensorBytes, lowRankTensorBytes } from './wire_size.js';

const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

describe('wire sizes', () => {
  it('binBytes switches header at the bin8/bin16/bin32 limits', () => {
    for (const n of [0, 1, 255, 256, 65535, 65536, 300000]) {
      expect(binBytes(n)).toBe(pack(new Uint8Array(n)).byteLength);
    }
  });

  it('a dense tensor costs exactly what pack makes of it, across header sizes', () => {
    for (const shape of [[1], [63], [64], [10, 10], [5, 5, 1, 32], [3136, 512], [70000]]) {
      const t = { kind: 'dense', shape, data: new Float32Array(sizeOf(shape)) };
      expect(denseTensorBytes(shape)).toBe(pack(t).byteLength);
    }
  });

  it('low-rank factors cost exactly what pack makes of them, rank 0 and ranks past 127 included', () => {
    const cases: [number[], number, number, number][] = [
      [[4, 3], 4, 3, 0],
      [[4, 3], 4, 3, 1],
      [[5, 5, 1, 32], 160, 5, 2],
      [[3136, 512], 3136, 512, 127],
      [[3136, 512], 3136, 512, 128],
      [[3136, 512], 3136, 512, 300],
      [[1000, 70000], 1000, 70000, 1],
    ];
    for (const [shape, rows, cols, rank] of cases) {
      const t = {
        kind: 'lowrank',
        shape,
        rows,
        cols,
        rank,
        left: new Float32Array(rows * rank),
        right: new Float32Array(rank * cols),
      };
      expect(lowRankTensorBytes(shape, rows, cols, rank)).toBe(pack(t).byteLength);
    }
  });
});
