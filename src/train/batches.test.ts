import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createModel } from '../models/index.js';
import { parseConfig } from '../sim/config.js';
import { initBackend } from '../tensor/backend.js';
import { gatherRows } from '../tensor/kernels/gather_rows.js';
import type { Params } from '../tensor/params.js';
import { disposeParams, toArrays } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { batchIndices, epochBatches, LAST_BATCH_MODES, type LastBatch } from './batches.js';
import { disposeData, makeStep, toTensors, trainLocal } from './loop.js';

beforeAll(async () => {
  await initBackend('wasm');
});

const sizes = (batches: Int32Array[]) => batches.map((b) => b.length);
const sorted = (batches: Int32Array[]) =>
  batches.flatMap((b) => Array.from(b)).sort((a, b) => a - b);
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('the batches of an epoch', () => {
  it('are the same for every lastBatch mode when n is a multiple of the batch size', () => {
    for (const n of [20, 60, 100]) {
      const perm = new Rng(n).permutation(n);
      const keep = epochBatches(perm, 20, 'keep');
      expect(sizes(keep)).toEqual(Array(n / 20).fill(20));
      for (const mode of LAST_BATCH_MODES) expect(epochBatches(perm, 20, mode)).toEqual(keep);
    }
  });

  it('n = k * batch + 1: keep takes k + 1 steps, merge and drop k', () => {
    const k = 4;
    const perm = new Rng(3).permutation(k * 20 + 1);
    expect(sizes(epochBatches(perm, 20, 'keep'))).toEqual([20, 20, 20, 20, 1]);
    expect(sizes(epochBatches(perm, 20, 'merge'))).toEqual([20, 20, 20, 21]);
    expect(sizes(epochBatches(perm, 20, 'drop'))).toEqual([20, 20, 20, 20]);
    // The merged batch is the last full slice plus the short one, in permutation order.
    expect(Array.from(epochBatches(perm, 20, 'merge')[3]!)).toEqual(Array.from(perm.slice(60)));
  });

  it('keep and merge use every sample once per epoch; drop leaves out only the short batch', () => {
    for (const n of [1, 7, 20, 41, 59, 61]) {
      const perm = new Rng(n).permutation(n);
      expect(sorted(epochBatches(perm, 20, 'keep'))).toEqual(range(n));
      expect(sorted(epochBatches(perm, 20, 'merge'))).toEqual(range(n));
      const dropped = epochBatches(perm, 20, 'drop');
      expect(sizes(dropped).every((s) => s === 20)).toBe(true);
      expect(dropped.flatMap((b) => Array.from(b))).toEqual(
        Array.from(perm.slice(0, n - (n % 20))),
      );
    }
  });

  it('fewer samples than the batch size: keep and merge take one short step, drop none', () => {
    const perm = new Rng(1).permutation(7);
    expect(sizes(epochBatches(perm, 20, 'keep'))).toEqual([7]);
    expect(sizes(epochBatches(perm, 20, 'merge'))).toEqual([7]);
    expect(epochBatches(perm, 20, 'drop')).toEqual([]);
  });

  it('draws the same seeded permutation per epoch whatever the mode', () => {
    const rng = new Rng(5);
    const perms = [rng.permutation(41), rng.permutation(41), rng.permutation(41)];
    for (const mode of LAST_BATCH_MODES) {
      const epochs = batchIndices(41, 20, 3, new Rng(5), mode);
      expect(epochs).toHaveLength(3);
      epochs.forEach((batches, e) => {
        const used = batches.flatMap((b) => Array.from(b));
        expect(used).toEqual(Array.from(perms[e]!.slice(0, used.length)));
      });
    }
  });

  it('rejects a batch size that is not a positive integer', () => {
    expect(() => batchIndices(10, 0, 1, new Rng(1))).toThrow(/batchSize: expected an integer >= 1/);
    expect(() => batchIndices(10, 2.5, 1, new Rng(1))).toThrow(/batchSize/);
  });

  it('takes batches of one sample, and refuses an epoch count that is not an integer >= 0', () => {
    const ones = batchIndices(3, 1, 1, new Rng(1))[0]!;
    expect(ones.map((b) => b.length)).toEqual([1, 1, 1]);
    expect(ones.map((b) => b[0]).sort()).toEqual([0, 1, 2]);
    expect(batchIndices(10, 2, 0, new Rng(1))).toEqual([]);
    for (const epochs of [-1, 1.5])
      expect(() => batchIndices(10, 2, epochs, new Rng(1))).toThrow(
        `epochs: expected an integer >= 0, got ${epochs}`,
      );
  });

  it('plans no epoch at all for a client without samples', () => {
    expect(batchIndices(0, 5, 3, new Rng(1))).toEqual([]);
  });
});

describe('trainLocal with train.lastBatch', () => {
  const model = createModel('mlp', { inputShape: [4, 4, 1], classes: 3, hidden: [5] });
  function data(n: number) {
    const rng = new Rng(n);
    const x = Float32Array.from({ length: n * 16 }, () => rng.normal());
    const y = Int32Array.from({ length: n }, (_, i) => i % 3);
    return toTensors(x, y, [4, 4, 1]);
  }
  const train = async (w: Params, n: number, lastBatch?: LastBatch) => {
    const d = data(n);
    const opts = { model, data: d, epochs: 2, batchSize: 20, lr: 0.1, rng: new Rng(9) };
    const r = await trainLocal(w, lastBatch ? { ...opts, lastBatch } : opts);
    disposeData(d);
    return r;
  };

  it('keep (the default) is the loop it replaced: a fresh permutation per epoch, consecutive slices', async () => {
    const w = model.init(new Rng(2));
    const d = data(61);
    const rng = new Rng(9);
    const step = makeStep({ model });
    let ref = w;
    for (let e = 0; e < 2; e++) {
      const perm = rng.permutation(61);
      for (let s = 0; s < 61; s += 20) {
        const idx = perm.subarray(s, Math.min(61, s + 20));
        const [xb, yb] = [gatherRows(d.x, idx), gatherRows(d.y, idx)];
        const r = step(ref, xb, yb, 0.1);
        tf.dispose([xb, yb, r.lossSum, r.correct]);
        if (ref !== w) disposeParams(ref);
        ref = r.params;
      }
    }
    const byDefault = await train(w, 61);
    const keep = await train(w, 61, 'keep');
    expect(byDefault.steps).toBe(8);
    expect(toArrays(byDefault.params)).toEqual(toArrays(ref));
    expect(toArrays(keep.params)).toEqual(toArrays(ref));
    disposeParams(w, ref, byDefault.params, keep.params);
    disposeData(d);
  });

  it('gives bitwise the same model in every mode when n is a multiple of the batch size', async () => {
    const w = model.init(new Rng(3));
    const runs = await Promise.all(LAST_BATCH_MODES.map((mode) => train(w, 60, mode)));
    for (const r of runs) {
      expect(r.steps).toBe(6);
      expect(toArrays(r.params)).toEqual(toArrays(runs[0]!.params));
    }
    disposeParams(w, ...runs.map((r) => r.params));
  });

  it('takes one step fewer per epoch with merge or drop when n = k * batch + 1, and leaks nothing', async () => {
    const w = model.init(new Rng(4));
    const live = tf.memory().numTensors;
    const [keep, merge, drop] = await Promise.all(
      LAST_BATCH_MODES.map((mode) => train(w, 61, mode)),
    );
    expect([keep!.steps, merge!.steps, drop!.steps]).toEqual([8, 6, 6]);
    expect(toArrays(merge!.params)).not.toEqual(toArrays(drop!.params));
    disposeParams(keep!.params, merge!.params, drop!.params);
    expect(tf.memory().numTensors).toBe(live);
    disposeParams(w);
  });

  it('drop on a client smaller than one batch takes no step and reports NaN, not zero', async () => {
    const w = model.init(new Rng(5));
    const r = await train(w, 7, 'drop');
    expect(r.steps).toBe(0);
    expect(r.epochs.map((e) => e.loss)).toEqual([Number.NaN, Number.NaN]);
    expect(toArrays(r.params)).toEqual(toArrays(w));
    disposeParams(w, r.params);
  });
});

describe('the train.lastBatch setting', () => {
  it('defaults to keep (the authors’ DataLoader) and refuses other values, naming the field', () => {
    expect(parseConfig({ seed: 0 }).train.lastBatch).toBe('keep');
    expect(parseConfig({ train: { lastBatch: 'merge' } }).train.lastBatch).toBe('merge');
    expect(() => parseConfig({ train: { lastBatch: 'pad' } })).toThrow(/train\.lastBatch/);
  });
});
