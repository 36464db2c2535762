import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../tensor/backend.js';
import { Rng } from '../tensor/rng.js';
import {
  fromMatrix,
  fromMatrixArray,
  hasMatrixView,
  matrixShape,
  toMatrix,
  toMatrixArray,
} from './matrix_view.js';

beforeAll(async () => {
  await initBackend('cpu');
});

/**
 * Builds a random PyTorch-layout kernel W[o, i, a, b], the same kernel in tfjs layout
 * K[a, b, i, o], and the matrix PyTorch gives: W.transpose(1, 2).reshape(o * kh, i * kw).
 */
function reference(kh: number, kw: number, ci: number, co: number, seed: number) {
  const rng = new Rng(seed);
  const w = Float32Array.from({ length: co * ci * kh * kw }, () => rng.normal());
  const wAt = (o: number, i: number, a: number, b: number) => w[((o * ci + i) * kh + a) * kw + b]!;
  const k = new Float32Array(w.length);
  for (let a = 0; a < kh; a++)
    for (let b = 0; b < kw; b++)
      for (let i = 0; i < ci; i++)
        for (let o = 0; o < co; o++) k[((a * kw + b) * ci + i) * co + o] = wAt(o, i, a, b);
  // transpose(1, 2) gives T[o, a, i, b]; a row-major reshape flattens (o, a) and (i, b).
  const m = new Float32Array(w.length);
  let n = 0;
  for (let o = 0; o < co; o++)
    for (let a = 0; a < kh; a++)
      for (let i = 0; i < ci; i++) for (let b = 0; b < kw; b++) m[n++] = wAt(o, i, a, b);
  return { k, m, shape: [kh, kw, ci, co] };
}

const SHAPES: [number, number, number, number][] = [
  [3, 3, 2, 4],
  [5, 5, 1, 32],
  [1, 1, 7, 3],
  [2, 3, 5, 1],
  [3, 1, 1, 1],
];

describe('conv matrix view', () => {
  it.each(SHAPES)('kernel [%i,%i,%i,%i] maps to the PyTorch matrix and back', (kh, kw, ci, co) => {
    const { k, m, shape } = reference(kh, kw, ci, co, kh * 1000 + kw * 100 + ci * 10 + co);
    expect(matrixShape(shape, 'conv')).toEqual([co * kh, ci * kw]);
    expect(Array.from(toMatrixArray(k, shape, 'conv'))).toEqual(Array.from(m));
    expect(Array.from(fromMatrixArray(m, shape, 'conv'))).toEqual(Array.from(k));

    const before = tf.memory().numTensors;
    const kt = tf.tensor(k, shape);
    const mt = toMatrix(kt, 'conv');
    expect(mt.shape).toEqual([co * kh, ci * kw]);
    expect(Array.from(mt.dataSync())).toEqual(Array.from(m));
    const back = fromMatrix(mt, shape, 'conv');
    expect(back.shape).toEqual(shape);
    expect(Array.from(back.dataSync())).toEqual(Array.from(k));
    tf.dispose([kt, mt, back]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('dense and 1-D views', () => {
  it('a dense weight is its own matrix; 1-D roles have no view', () => {
    const d = Float32Array.from([1, 2, 3, 4, 5, 6]);
    expect(matrixShape([2, 3], 'dense')).toEqual([2, 3]);
    expect(Array.from(toMatrixArray(d, [2, 3], 'dense'))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(fromMatrixArray(d, [2, 3], 'dense'))).toEqual([1, 2, 3, 4, 5, 6]);
    for (const role of ['bias', 'normScale', 'normOffset'] as const) {
      expect(hasMatrixView(role)).toBe(false);
      expect(matrixShape([4], role)).toBeNull();
    }
    expect(hasMatrixView('conv')).toBe(true);
  });

  it('names the bad shape in its errors', () => {
    expect(() => matrixShape([3, 3, 2], 'conv')).toThrow(/4-D/);
    expect(() => matrixShape([3], 'dense')).toThrow(/2-D/);
    const t = tf.zeros([2, 2]);
    expect(() => fromMatrix(t, [1, 1, 2, 3], 'conv')).toThrow(/\[3,2\]/);
    expect(() => toMatrix(t, 'bias')).toThrow(/bias/);
    t.dispose();
  });
});
