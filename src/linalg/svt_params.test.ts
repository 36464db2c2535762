import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../tensor/backend.js';
import { disposeParams, type ParamSpec, type Params } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { toMatrixArray } from './matrix_view.js';
import { lowRankPays } from './prox.js';
import { svt } from './svt.js';
import { svtParams } from './svt_params.js';

beforeAll(async () => {
  await initBackend('cpu');
});

const SPEC: ParamSpec = [
  { name: 'conv.kernel', shape: [3, 3, 4, 8], role: 'conv' },
  { name: 'gn.scale', shape: [8], role: 'normScale' },
  { name: 'fc.kernel', shape: [20, 10], role: 'dense' },
  { name: 'fc.bias', shape: [10], role: 'bias' },
];

function randomParams(seed: number): Params {
  const rng = new Rng(seed);
  const out: Params = {};
  for (const p of SPEC) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    out[p.name] = tf.tensor(
      Float32Array.from({ length: n }, () => rng.normal() * 0.3),
      [...p.shape],
    );
  }
  return out;
}

describe('svtParams', () => {
  it('thresholds every matrix view exactly and leaves 1-D tensors alone', async () => {
    const params = randomParams(1);
    const before = tf.memory().numTensors;
    const tau = 0.9;
    const res = await svtParams(params, SPEC, tau);
    for (const p of SPEC) {
      const got = res.params[p.name]!;
      expect(got.shape).toEqual([...p.shape]);
      const src = params[p.name]!.dataSync() as Float32Array;
      if (p.role === 'normScale' || p.role === 'bias') {
        expect(Array.from(got.dataSync())).toEqual(Array.from(src));
        expect(res.ranks.perTensor[p.name]).toBeUndefined();
        continue;
      }
      const [r, c] = p.role === 'conv' ? [8 * 3, 4 * 3] : [20, 10];
      const want = await svt(toMatrixArray(src, p.shape, p.role), r, c, tau, { method: 'jacobi' });
      const gotM = toMatrixArray(got.dataSync() as Float32Array, p.shape, p.role);
      let err = 0;
      let nrm = 0;
      want.matrix.forEach((x, i) => {
        err += (x - gotM[i]!) ** 2;
        nrm += x * x;
      });
      expect(Math.sqrt(err / nrm)).toBeLessThan(1e-5);
      expect(res.ranks.perTensor[p.name]).toEqual({ rank: want.rank, fullRank: Math.min(r, c) });
      expect(want.rank).toBeLessThan(Math.min(r, c));
      const f = res.factors[p.name];
      expect(f !== undefined).toBe(lowRankPays(r, c, want.rank));
      if (f) {
        expect(f.rank).toBe(want.rank);
        expect(f.left.length).toBe(r * want.rank);
      }
    }
    expect(res.ranks.rank).toBe(
      res.ranks.perTensor['conv.kernel']!.rank + res.ranks.perTensor['fc.kernel']!.rank,
    );
    expect(res.ranks.fullRank).toBe(12 + 10);
    disposeParams(res.params);
    expect(tf.memory().numTensors).toBe(before);
    // The state carries each matrix's rank into the next call.
    expect(res.state.hints['fc.kernel']!.rank).toBe(res.ranks.perTensor['fc.kernel']!.rank);
    const again = await svtParams(params, SPEC, tau, { state: res.state });
    expect(again.ranks.rank).toBe(res.ranks.rank);
    disposeParams(again.params, params);
  });

  it('omits factors where they do not pay, unless asked', async () => {
    const params = randomParams(2);
    const res = await svtParams(params, SPEC, 1e-4);
    expect(res.ranks.ratio).toBe(1);
    expect(Object.keys(res.factors)).toEqual([]);
    const all = await svtParams(params, SPEC, 1e-4, { factors: 'always' });
    expect(Object.keys(all.factors).sort()).toEqual(['conv.kernel', 'fc.kernel']);
    disposeParams(res.params, all.params, params);
  });

  it('names a missing parameter and leaks nothing when it fails', async () => {
    const params = randomParams(3);
    const before = tf.memory().numTensors;
    const partial: Params = { 'conv.kernel': params['conv.kernel']! };
    await expect(svtParams(partial, SPEC, 0.1)).rejects.toThrow(/gn\.scale/);
    expect(tf.memory().numTensors).toBe(before);
    disposeParams(params);
  });
});
