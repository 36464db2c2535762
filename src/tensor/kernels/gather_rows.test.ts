import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../backend.js';
import { Rng } from '../rng.js';
import { onBoth, randomTensor } from './compare.js';
import { gatherRows } from './gather_rows.js';

const CASES: [number[], number[]][] = [
  [
    [7, 4, 3, 2],
    [6, 0, 3, 3, 1],
  ],
  [
    [5, 3],
    [4, 4, 0],
  ],
  [[9], [8, 2, 5]],
  [[3, 2, 2, 1], []],
  [[1, 28, 28, 1], [0]],
];

describe('gatherRows', () => {
  it.each(CASES.map(([s, idx], i) => [JSON.stringify(s), JSON.stringify(idx), s, idx, i] as const))(
    'equals tf.gather on cpu and wasm: x %s, rows %s',
    async (_, __, shape, idx, i) => {
      const make = (gather: (x: tf.Tensor, rows: Int32Array) => tf.Tensor) => () => {
        const x = randomTensor(Rng.derive(47, i), shape);
        const labels = tf.tensor1d(
          Int32Array.from({ length: shape[0]! }, (_, j) => 3 * j - 7),
          'int32',
        );
        const rows = Int32Array.from(idx);
        return [gather(x, rows), gather(labels, rows)];
      };
      const want = await onBoth(make((x, rows) => tf.gather(x, tf.tensor1d(rows, 'int32'))));
      const got = await onBoth(make(gatherRows));
      for (const b of ['cpu', 'wasm'] as const) {
        expect(got[b].shapes).toEqual(want[b].shapes);
        got[b].values.forEach((v, j) =>
          expect(Array.from(v)).toEqual(Array.from(want[b].values[j]!)),
        );
      }
    },
  );

  it('keeps the dtype and names an index out of range', async () => {
    await initBackend('wasm');
    const y = tf.tensor1d([4, 5, 6], 'int32');
    const r = gatherRows(y, Int32Array.from([2, 0]));
    expect(r.dtype).toBe('int32');
    expect(Array.from(r.dataSync())).toEqual([6, 4]);
    expect(() => gatherRows(y, Int32Array.from([3]))).toThrow(/index 3 out of range for 3 rows/);
    tf.dispose([y, r]);
  });
});
