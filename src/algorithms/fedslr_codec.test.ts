/**
 * FedSLR's stored state and its guards: the server codec keeps W, D, the factors and every kind
 * of SVT hint field through the checkpoint bytes; the client codec refuses a non-positive lambda;
 * a client without P_i is refused; the density target adapts lambda towards 1.5 x the target.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeServerState, encodeServerState } from '../codec/state.js';
import { createModel } from '../models/index.js';
import { initBackend } from '../tensor/backend.js';
import type { ParamArrays } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { disposeData, toTensors } from '../train/loop.js';
import { DENSITY_HEADROOM, nextLambda } from './density_target.js';
import { type FedSLRServer, fedslr, fedslrAlgorithm, fedslrServerCodec } from './fedslr.js';
import type { AlgorithmContext, ClientRun } from './types.js';

beforeAll(async () => {
  await initBackend('wasm');
});

const f32 = (xs: number[]) => Float32Array.from(xs);
const set = (shape: number[], xs: number[]) => ({ shape, data: f32(xs) });
const ctx: AlgorithmContext = {
  model: createModel('mlp', { inputShape: [3, 1, 1], classes: 2, hidden: [] }),
  numClients: 2,
  train: { lr: 0.1, lrDecay: 1, weightDecay: 0, batchSize: 2, epochs: 1 },
};

describe('the FedSLR server codec', () => {
  const server: FedSLRServer = {
    global: { 'out.kernel': set([3, 2], [1, 2, 3, 4, 5, 6]), 'out.bias': set([2], [7, 8]) },
    dualSum: { 'out.kernel': set([3, 2], [0, 1, 0, 1, 0, 1]), 'out.bias': set([2], [-1, 1]) },
    factors: { 'out.kernel': { left: set([3, 1], [1, 2, 3]), right: set([1, 2], [0.5, -1]) } },
    hints: {
      'out.kernel': { fullRank: false, rank: 1, basis: f32([0.6, 0.8]), polarL: 0.25 },
      'other.kernel': { fullRank: true, topVector: f32([1, 0, 0]) },
    },
  };

  it('keeps W, D, the factors and every hint field through the checkpoint bytes', () => {
    const bytes = encodeServerState(fedslrServerCodec.toRecord(server));
    expect(fedslrServerCodec.fromRecord(decodeServerState(bytes, 's'), 's')).toEqual(server);
  });

  it('leaves D out before the first aggregation, and skips undefined hint fields', () => {
    const { dualSum: _, ...fresh } = server;
    const withUndefined = {
      ...fresh,
      hints: { 'out.kernel': { fullRank: true, rank: undefined, basis: undefined } },
    };
    const record = fedslrServerCodec.toRecord(withUndefined);
    expect(Object.keys(record.tensors).sort()).toEqual(['factors', 'svtHints']);
    expect(record.scalars).toEqual({ 'out.kernel|fullRank|bool': 1 });
    const back = fedslrServerCodec.fromRecord(record, 's');
    expect(back).not.toHaveProperty('dualSum');
    expect(back.hints).toEqual({ 'out.kernel': { fullRank: true } });
  });

  it('reads a hint stored without fullRank as full rank (the SVT default)', () => {
    const back = fedslrServerCodec.fromRecord(
      { global: server.global, tensors: { svtHints: { 'k|basis': set([2], [1, 0]) } } },
      's',
    );
    expect(back.hints).toEqual({ k: { fullRank: true, basis: f32([1, 0]) } });
    expect(back.factors).toEqual({});
  });

  it('names what is missing or cannot be stored', () => {
    expect(() => fedslrServerCodec.fromRecord({ tensors: {} }, 'ck/3')).toThrow(
      'ck/3: the server state lacks W',
    );
    const record = fedslrServerCodec.toRecord(server);
    delete record.tensors['factors']!['out.kernel:right'];
    expect(() => fedslrServerCodec.fromRecord(record, 'ck/3')).toThrow(
      "ck/3: the factors of 'out.kernel' lack their right factor",
    );
    const odd = { ...server, hints: { w: { fullRank: true, method: 'polar' } } } as never;
    expect(() => fedslrServerCodec.toRecord(odd)).toThrow(
      "fedslr: cannot keep SVT hint field 'method' of 'w'",
    );
  });
});

describe('FedSLR client guards', () => {
  const algo = fedslr(ctx, { density: 0.3 });

  it('refuses a stored lambda that is not a positive number', () => {
    const sparse = { 'out.bias': set([2], [0, 1]) };
    for (const lambda of [0, -1, '0.1' as unknown as number]) {
      expect(() =>
        algo.client.codec.fromRecord({ tensors: { sparse }, scalars: { lambda } }, 'clients/1'),
      ).toThrow(`clients/1: the client's lambda must be a positive number, got ${lambda}`);
    }
  });

  it('refuses a client state without P_i, in training and in evaluation', async () => {
    const data = toTensors(f32([1, 0, 2, -1, 1, 0]), Int32Array.from([0, 1]), [3, 1, 1]);
    const W = toArraysOf(ctx.model);
    const down = algo.server.download(algo.server.initServer(W), 0, 0);
    const run: ClientRun = { client: 0, round: 0, lr: 0.1, data, rng: new Rng(2) };
    await expect(algo.client.train(down, {}, run)).rejects.toThrow(
      'fedslr: the client state lacks P_i',
    );
    expect(() => algo.client.personalModel({}, W, run)).toThrow(
      'fedslr: the client state lacks P_i',
    );
    disposeData(data);
  });

  it('adapts lambda towards 1.5 x the target density, measured before the cap', async () => {
    // No stage-2 step: P_i leaves stage 2 as it came in, with density 0.5 (4 of 8 entries).
    const adapt = fedslr(ctx, { density: 0.3, personalEpochs: 0, lambda: 2e-3 });
    const data = toTensors(f32([1, 0, 2, -1, 1, 0]), Int32Array.from([0, 1]), [3, 1, 1]);
    const W = toArraysOf(ctx.model);
    const sparse: ParamArrays = {
      'out.kernel': set([3, 2], [0.5, 0, -0.4, 0, 0.3, 0]),
      'out.bias': set([2], [0, 0.2]),
    };
    const run: ClientRun = { client: 0, round: 0, lr: 0.1, data, rng: new Rng(2) };
    const down = adapt.server.download(adapt.server.initServer(W), 0, 0);
    const r = await adapt.client.train(down, { sparse }, run);
    const target = Math.min(1, DENSITY_HEADROOM * 0.3);
    expect(target).toBeCloseTo(0.45, 12);
    expect(r.state.lambda).toBe(nextLambda(2e-3, 0.5, target));
    expect(r.state.lambda).toBeGreaterThan(2e-3);
    // The cap keeps floor(0.3 * 8) = 2 non-zeros.
    expect(adapt.client.personalDensity!(r.state)).toBe(2 / 8);
    disposeData(data);
  });
});

describe('the FedSLR options', () => {
  it('accept lambda 0 without a density target, and refuse it with one', () => {
    expect(fedslrAlgorithm.schema.parse({ name: 'fedslr', lambda: 0 }).lambda).toBe(0);
    expect(() => fedslrAlgorithm.schema.parse({ name: 'fedslr', lambda: 0, density: 0.2 })).toThrow(
      /lambda must be > 0/,
    );
  });
});

/** The model's initial weights (seed 1) as plain arrays. */
function toArraysOf(model: AlgorithmContext['model']): ParamArrays {
  const p = model.init(new Rng(1));
  const out = Object.fromEntries(
    Object.entries(p).map(([k, t]) => [
      k,
      { shape: [...t.shape], data: t.dataSync() as Float32Array },
    ]),
  );
  for (const t of Object.values(p)) t.dispose();
  return out;
}
