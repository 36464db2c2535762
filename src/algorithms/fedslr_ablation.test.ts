/** FedSLR's ablation switches remove exactly their stage: SVT (sparse only) or stage 2 (low-rank only). */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeParams } from '../codec/params.js';
import { denseParams } from '../codec/wire.js';
import { createModel } from '../models/index.js';
import { initBackend } from '../tensor/backend.js';
import type { ParamArrays } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { disposeData, toTensors } from '../train/loop.js';
import { FEDSLR_DEFAULTS, type FedSLRAblation, fedslr } from './fedslr.js';

beforeAll(async () => {
  await initBackend('wasm');
});

const model = createModel('mlp', { inputShape: [3, 1, 1], classes: 2, hidden: [] });
const ctx = {
  model,
  numClients: 1,
  train: { lr: 0.5, lrDecay: 1, weightDecay: 0, batchSize: 1, epochs: 1 },
};
const arr = (shape: number[], data: number[]) => ({ shape, data: Float32Array.from(data) });

// V = 2 u1 v1^T + 0.05 u2 v2^T: thresholding at mu/alpha = 0.1 keeps rank 1.
const u1 = [1 / Math.sqrt(2), 1 / Math.sqrt(2), 0];
const u2 = [0, 0, 1];
const v1 = [0.6, 0.8];
const v2 = [-0.8, 0.6];
const V = u1.flatMap((a, i) => v1.map((b, j) => 2 * a * b + 0.05 * u2[i]! * v2[j]!));
const w: ParamArrays = { 'out.kernel': arr([3, 2], V), 'out.bias': arr([2], [0.1, 0.2]) };

async function roundOf(ablation: FedSLRAblation) {
  const algo = fedslr(ctx, { ...FEDSLR_DEFAULTS, alpha: 0.1, mu: 0.01, lambda: 0.01, ablation });
  // A client that did not move: D stays 0 and the server's V is w itself.
  const up = { round: 0, params: denseParams(w), numSamples: 1, trainLoss: 0, trainAcc: 0 };
  const agg = await algo.server.aggregate(algo.server.initServer(w), 0, [
    { client: 0, upload: up },
  ]);
  const data = toTensors(Float32Array.from([1, -1, 0.5]), Int32Array.from([1]), [3, 1, 1]);
  const run = { client: 0, round: 0, lr: 0.5, data, rng: new Rng(1) };
  const before = tf.memory().numTensors;
  const down = algo.server.download(agg.server, 1, 0);
  const r = await algo.client.train(down, algo.client.initClient(0, w), run);
  expect(tf.memory().numTensors).toBe(before);
  // The client evaluates what it was sent, decoded.
  const sent = decodeParams(algo.server.evalDownload(agg.server, 1).params, model.spec);
  const personal = await algo.client.personalModel(r.state, sent, run);
  disposeData(data);
  return { algo, agg, state: r.state, sent, personal };
}

describe('FedSLR ablations', () => {
  it('both (default): SVT on the server and a sparse personal part', async () => {
    const { algo, agg, state, sent, personal } = await roundOf('both');
    expect(agg.stats.ranks).toEqual({ 'out.kernel': { rank: 1, full: 2 } });
    expect(Object.keys(state).sort()).toEqual(['dual', 'sparse']);
    expect(personal).not.toEqual(sent);
    expect(algo.client.personalDensity).toBeDefined();
  });

  it('low-rank only: SVT stays, stage 2 is gone and the personal model is the global one', async () => {
    const { algo, agg, state, sent, personal } = await roundOf('low-rank-only');
    expect(agg.stats.ranks).toEqual({ 'out.kernel': { rank: 1, full: 2 } });
    expect(Object.keys(state)).toEqual(['dual']);
    expect(personal).toBe(sent);
    expect(algo.hasPersonal).toBe(true);
    expect(algo.client.personalDensity).toBeUndefined();
  });

  it('sparse only: no SVT (the server keeps V at full rank, sent dense), stage 2 stays', async () => {
    const { algo, agg, state, personal } = await roundOf('sparse-only');
    expect(agg.stats.ranks).toBeUndefined();
    expect(Array.from(agg.server.global!['out.kernel']!.data)).toEqual(
      V.map((x) => expect.closeTo(x, 6)),
    );
    expect(algo.server.download(agg.server, 1, 0).params['out.kernel']!.kind).toBe('dense');
    expect(Object.keys(state).sort()).toEqual(['dual', 'sparse']);
    const P = state.sparse!;
    expect(Array.from(personal!['out.bias']!.data)).toEqual(
      Array.from(P['out.bias']!.data).map((p, i) => expect.closeTo(p + [0.1, 0.2][i]!, 6)),
    );
    expect(algo.client.personalDensity!(state)).toBeGreaterThan(0);
  });
});
