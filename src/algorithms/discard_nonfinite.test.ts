/**
 * FedSLR's `discardNonFinite`: a stage 2 that ends with non-finite values in P_i is discarded
 * (P_i and lambda_i stay, the client's count goes up); with it off, or when stage 2 stays finite,
 * the client's results are the same bits as without it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createModel } from '../models/index.js';
import { initBackend } from '../tensor/backend.js';
import { disposeParams, type ParamArrays, readArrays } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { disposeData, toTensors } from '../train/loop.js';
import { FEDSLR_DEFAULTS, type FedSLRClient, fedslr } from './fedslr.js';
import type { AlgorithmContext } from './types.js';

beforeAll(async () => {
  await initBackend('wasm');
});

const ctx: AlgorithmContext = {
  model: createModel('mlp', { inputShape: [3, 1, 1], classes: 2, hidden: [4] }),
  numClients: 2,
  train: { lr: 0.1, lrDecay: 1, weightDecay: 0, batchSize: 1, epochs: 1 },
};
/** The shared initial weights, as arrays. */
async function init(): Promise<ParamArrays> {
  const params = ctx.model.init(new Rng(2));
  const arrays = await readArrays(params);
  disposeParams(params);
  return arrays;
}
const finite = (set: ParamArrays | undefined) =>
  Object.values(set!).every((a) => a.data.every((x) => Number.isFinite(x)));

/** One round of client 0 from `state` at learning rate `lr` (1e30 makes stage 2 overflow). */
async function trainOnce(
  options: Partial<typeof FEDSLR_DEFAULTS>,
  state: FedSLRClient,
  lr: number,
) {
  const algo = fedslr(ctx, { ...FEDSLR_DEFAULTS, ...options });
  const data = toTensors(
    Float32Array.from([1, -2, 0.5, 2, 1, -1, -0.3, 0.7, 1.5]),
    Int32Array.from([0, 1, 1]),
    [3, 1, 1],
  );
  const down = algo.server.download(algo.server.initServer(await init()), 0, 0);
  try {
    return await algo.client.train(down, state, { client: 0, round: 0, lr, data, rng: new Rng(7) });
  } finally {
    disposeData(data);
  }
}

describe('FedSLR discardNonFinite', () => {
  const fresh = async () => fedslr(ctx, FEDSLR_DEFAULTS).client.initClient(0, await init());

  it('keeps a diverged stage 2 by default, as the authors do', async () => {
    const r = await trainOnce({}, await fresh(), 1e30);
    expect(finite(r.state.sparse)).toBe(false);
    expect(r.state.discarded).toBeUndefined();
  });

  it('discards a diverged stage 2: P_i and lambda_i stay, the count goes up, nothing leaks', async () => {
    const start = { ...(await fresh()), lambda: 0.002 };
    const before = tf.memory().numTensors;
    const r = await trainOnce({ discardNonFinite: true, density: 0.5 }, start, 1e30);
    expect(tf.memory().numTensors).toBe(before);
    expect(r.state.sparse).toEqual(start.sparse);
    expect(r.state.lambda).toBe(0.002);
    expect(r.state.discarded).toBe(1);
    const again = await trainOnce({ discardNonFinite: true }, r.state, 1e30);
    expect(again.state.discarded).toBe(2);
    const algo = fedslr(ctx, { ...FEDSLR_DEFAULTS, discardNonFinite: true });
    expect(algo.client.discardedStages!(again.state)).toBe(2);
    expect(algo.client.discardedStages!(await fresh())).toBe(0);
  });

  it('changes nothing where stage 2 stays finite, and keeps the count of earlier discards', async () => {
    const off = await trainOnce({}, await fresh(), 0.1);
    const on = await trainOnce({ discardNonFinite: true }, await fresh(), 0.1);
    expect(on).toEqual(off);
    expect(finite(on.state.sparse)).toBe(true);
    const later = await trainOnce(
      { discardNonFinite: true },
      { ...(await fresh()), discarded: 3 },
      0.1,
    );
    expect(later.state.discarded).toBe(3);
    expect(later.state.sparse).toEqual(on.state.sparse);
  });

  it('stores the count with the client state and refuses a bad one', async () => {
    const { codec } = fedslr(ctx, FEDSLR_DEFAULTS).client;
    const state = { ...(await fresh()), discarded: 2 };
    expect(codec.fromRecord(codec.toRecord(state), 'client 0')).toEqual(state);
    expect(codec.toRecord(await fresh()).scalars).toBeUndefined();
    const bad = codec.toRecord(state);
    bad.scalars = { discarded: 1.5 };
    expect(() => codec.fromRecord(bad, 'client 0')).toThrow(
      /client 0: the client's count of discarded stage-2 results must be a positive integer, got 1.5/,
    );
  });
});
