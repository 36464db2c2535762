/** FedSLR's budgeted server steps and FedAvg's downlink budget, on planted spectra. */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { denseParams, pack, type WireParams } from '../codec/wire.js';
import { denseTensorBytes } from '../codec/wire_size.js';
import { toMatrixArray } from '../linalg/matrix_view.js';
import { plantedMatrix } from '../linalg/planted.js';
import { lowRankPays } from '../linalg/prox.js';
import { createModel } from '../models/index.js';
import { initBackend } from '../tensor/backend.js';
import type { ParamArrays, ParamSpec } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { disposeData, toTensors } from '../train/loop.js';
import { fedavg, fedavgAlgorithm } from './fedavg.js';
import { FEDSLR_DEFAULTS, factoredDownload, fedslr } from './fedslr.js';
import { type BudgetMode, budgetStep, matrixWireBytes, svtSchema } from './svt_modes.js';
import type { Algorithm, AlgorithmContext } from './types.js';

beforeAll(async () => {
  await initBackend('wasm');
});

const model = createModel('mlp', { inputShape: [30, 1, 1], classes: 10, hidden: [40] });
const ctx: AlgorithmContext = {
  model,
  numClients: 1,
  train: { lr: 0.1, lrDecay: 1, weightDecay: 0, batchSize: 5, epochs: 1 },
};
// Planted spectra: 30 x 40 with s_i = 2 * 0.8^i (30 values), 40 x 10 with s_i = 1 / (i + 1).
const S1 = Array.from({ length: 30 }, (_, i) => 2 * 0.8 ** i);
const S2 = Array.from({ length: 10 }, (_, i) => 1 / (i + 1));
const [k1, b1, k2, b2] = model.spec;
const V: ParamArrays = {
  [k1!.name]: { shape: [30, 40], data: plantedMatrix(30, 40, S1, 1) },
  [b1!.name]: { shape: [40], data: Float32Array.from({ length: 40 }, (_, i) => i / 40) },
  [k2!.name]: { shape: [40, 10], data: plantedMatrix(40, 10, S2, 2) },
  [b2!.name]: { shape: [10], data: new Float32Array(10).fill(0.5) },
};
const upload = (p: ParamArrays) => ({
  params: denseParams(p),
  numSamples: 1,
  trainLoss: 0,
  trainAcc: 0,
});

/** The budgeted step on V and the download that carries its result in round 1. */
function stepOf(svt: BudgetMode) {
  const step = budgetStep(model.spec, V, svt, 1);
  const server = { global: step.global, factors: step.factors };
  return { agg: { stats: { ranks: step.ranks } }, down: factoredDownload(model.spec, server, 1) };
}
/** FedAvg's first round: init V, one client that uploads V unchanged. */
async function roundOf<S, C>(algo: Algorithm<S, C>) {
  const { server } = algo;
  const agg = await server.aggregate(server.initServer(V), 0, [
    { client: 0, upload: { round: 0, ...upload(V) } },
  ]);
  return { agg, down: server.download(agg.server, 1, 0) };
}
const fedslrWith = (svt: BudgetMode) => fedslr(ctx, { ...FEDSLR_DEFAULTS, svt });
const ranksOf = (a: { stats: { ranks?: Record<string, { rank: number }> } }) =>
  Object.values(a.stats.ranks!).map((r) => r.rank);
const denseBytes = pack({ round: 1, params: denseParams(V) }).byteLength;

/** Every low-rank tensor of a download is smaller than dense, and 1-D tensors are dense. */
function checkHonest(params: WireParams) {
  for (const p of model.spec) {
    const t = params[p.name]!;
    if (p.shape.length === 1) expect(t.kind).toBe('dense');
    if (t.kind === 'lowrank') expect(lowRankPays(t.rows, t.cols, t.rank)).toBe(true);
  }
}

describe('FedSLR svt modes on planted spectra', () => {
  it('relative soft-thresholds at the fraction of each largest value', () => {
    // 0.3 * 2 = 0.6: 2 * 0.8^i > 0.6 for i <= 5; 0.3 * 1 = 0.3: 1/(i+1) > 0.3 for i <= 2.
    const { agg, down } = stepOf({ mode: 'relative', fraction: 0.3 });
    expect(ranksOf(agg)).toEqual([6, 3]);
    checkHonest(down.params);
  });

  it('energy keeps the smallest rank holding the fraction of each squared spectrum', () => {
    const share = (s: number[], r: number) =>
      s.slice(0, r).reduce((a, x) => a + x * x, 0) / s.reduce((a, x) => a + x * x, 0);
    const [r1, r2] = ranksOf(stepOf({ mode: 'energy', fraction: 0.9 }).agg);
    expect(share(S1, r1!)).toBeGreaterThanOrEqual(0.9);
    expect(share(S1, r1! - 1)).toBeLessThan(0.9);
    expect(share(S2, r2!)).toBeGreaterThanOrEqual(0.9);
    expect(share(S2, r2! - 1)).toBeLessThan(0.9);
  });

  it('rank caps every matrix at a count or a fraction of its full rank', () => {
    expect(ranksOf(stepOf({ mode: 'rank', rank: 4 }).agg)).toEqual([4, 4]);
    expect(ranksOf(stepOf({ mode: 'rank', fraction: 0.5 }).agg)).toEqual([15, 5]);
  });

  it('bytes: the encoded download never exceeds the budget, and one more value would', () => {
    for (const fraction of [0.1, 0.25, 0.4, 0.6, 0.9]) {
      const { agg, down } = stepOf({ mode: 'bytes', fraction });
      const budget = Math.floor(fraction * denseBytes);
      const bytes = pack(down).byteLength;
      expect(bytes).toBeLessThanOrEqual(budget);
      checkHonest(down.params);
      // Adding the next value of any matrix (to dense when factors stop paying) breaks it.
      model.spec
        .filter((p) => p.shape.length === 2)
        .forEach((p, j) => {
          const [rows, cols] = p.shape as [number, number];
          const r = ranksOf(agg)[j]!;
          if (r === Math.min(rows, cols)) return;
          const more =
            matrixWireBytes(p.shape, rows, cols, r + 1) - matrixWireBytes(p.shape, rows, cols, r);
          expect(bytes + more).toBeGreaterThan(budget);
        });
    }
  });

  it('bytes: an absolute budget holds too, and an impossible one says what is possible', () => {
    const { down } = stepOf({ mode: 'bytes', bytes: 3000 });
    expect(pack(down).byteLength).toBeLessThanOrEqual(3000);
    expect(() => stepOf({ mode: 'bytes', bytes: 400 })).toThrow(
      /downlink budget of 400 bytes .*cannot be met/,
    );
  });

  it('FedSLR runs the step on its aggregate: a rank cap holds after a round', async () => {
    const algo = fedslrWith({ mode: 'rank', rank: 4 });
    const { agg, down } = await roundOf(algo);
    expect(ranksOf(agg)).toEqual([4, 4]);
    expect(Object.values(down.params).filter((t) => t.kind === 'lowrank')).toHaveLength(2);
  });

  it("round 0's download meets the budget as well", () => {
    const algo = fedslrWith({ mode: 'bytes', fraction: 0.3 });
    const down = algo.server.download(algo.server.initServer(V), 0, 0);
    expect(pack(down).byteLength).toBeLessThanOrEqual(
      Math.floor(0.3 * pack({ round: 0, params: denseParams(V) }).byteLength),
    );
  });

  it('budgets the download of the next round, whose number is part of its bytes', async () => {
    // Round 127's aggregate is sent in round 128, whose number packs in one byte more than 126's:
    // at 2345 bytes that byte decides a rank (the step for round 126 would keep one more value).
    const budget = { mode: 'bytes', bytes: 2345 } as const;
    const ranksFor = (round: number) =>
      ranksOf({ stats: { ranks: budgetStep(model.spec, V, budget, round).ranks } });
    expect(ranksFor(128)).toEqual([4, 3]);
    expect(ranksFor(126)).toEqual([4, 4]);
    const algo = fedslrWith(budget);
    // One client uploading W unchanged: D stays zero and the aggregate is V itself.
    const agg = await algo.server.aggregate({ global: V, factors: {}, hints: {} }, 127, [
      { client: 0, upload: { round: 127, ...upload(V) } },
    ]);
    expect(ranksOf(agg)).toEqual([4, 3]);
    expect(pack(algo.server.download(agg.server, 128, 0)).byteLength).toBeLessThanOrEqual(2345);
  });
});

describe("the budgeted step's model and factors", () => {
  /** A conv kernel before a dense weight (different matrix views), both of full rank. */
  const mixed: ParamSpec = [
    { name: 'c.kernel', shape: [2, 2, 1, 3], role: 'conv' },
    { name: 'c.bias', shape: [3], role: 'bias' },
    { name: 'd.kernel', shape: [6, 4], role: 'dense' },
  ];
  const rng = new Rng(11);
  const M: ParamArrays = Object.fromEntries(
    mixed.map((p) => {
      const size = p.shape.reduce((a, b) => a * b, 1);
      return [
        p.name,
        { shape: [...p.shape], data: Float32Array.from({ length: size }, () => rng.normal()) },
      ];
    }),
  );
  const sumSq = (a: Float32Array) => a.reduce((t, x) => t + x * x, 0);

  it('relative shrinks each kept singular value by the fraction of the largest', () => {
    // ||X||_F^2 is the sum of its squared singular values: (s_i - 0.3 s_1)^2 over those kept.
    const { global } = budgetStep(model.spec, V, { mode: 'relative', fraction: 0.3 }, 1);
    const shrunk = (s: number[]) => s.reduce((t, x) => t + Math.max(0, x - 0.3 * s[0]!) ** 2, 0);
    expect(sumSq(global[k1!.name]!.data)).toBeCloseTo(shrunk(S1), 4);
    expect(sumSq(global[k2!.name]!.data)).toBeCloseTo(shrunk(S2), 4);
  });

  it('cut soft keeps the hard cut ranks, each value reduced by the largest one dropped', () => {
    // ||X||_F^2 = sum over the kept values of (s_i - s_r)^2, s_r the first value cut.
    const soft = budgetStep(model.spec, V, { mode: 'rank', rank: 5, cut: 'soft' }, 1);
    const hard = budgetStep(model.spec, V, { mode: 'rank', rank: 5 }, 1);
    expect(soft.ranks).toEqual(hard.ranks);
    const shrunk = (s: number[]) => s.slice(0, 5).reduce((t, x) => t + (x - s[5]!) ** 2, 0);
    expect(sumSq(soft.global[k1!.name]!.data)).toBeCloseTo(shrunk(S1), 4);
    expect(sumSq(soft.global[k2!.name]!.data)).toBeCloseTo(shrunk(S2), 4);
    // The factors carry the shrunk values: the product of a left and right column pair.
    const { left, right } = soft.factors[k1!.name]!;
    const r = left.shape[1]!;
    const product = Array.from({ length: 30 * 40 }, (_, i) => {
      let x = 0;
      for (let j = 0; j < r; j++)
        x += left.data[Math.floor(i / 40) * r + j]! * right.data[j * 40 + (i % 40)]!;
      return x;
    });
    const m = toMatrixArray(soft.global[k1!.name]!.data, [30, 40], 'dense');
    expect(Math.max(...product.map((x, i) => Math.abs(x - m[i]!)))).toBeLessThan(1e-5);
  });

  it('cut soft meets a byte budget as the hard cut does', () => {
    for (const cut of ['soft', undefined] as const) {
      const { down } = stepOf({ mode: 'bytes', fraction: 0.3, ...(cut ? { cut } : {}) });
      expect(pack(down).byteLength).toBeLessThanOrEqual(Math.floor(0.3 * denseBytes));
    }
    const soft = budgetStep(model.spec, V, { mode: 'bytes', fraction: 0.3, cut: 'soft' }, 1);
    const hard = budgetStep(model.spec, V, { mode: 'bytes', fraction: 0.3 }, 1);
    expect(soft.ranks).toEqual(hard.ranks);
    // A matrix the budget leaves whole is not shrunk.
    const whole = budgetStep(model.spec, V, { mode: 'rank', rank: 40, cut: 'soft' }, 1);
    expect(whole.global[k1!.name]).toBe(V[k1!.name]);
  });

  it('takes cut only where a budget cuts: energy, rank, bytes', () => {
    expect(svtSchema.parse({ mode: 'energy', fraction: 0.9, cut: 'soft' })).toEqual({
      mode: 'energy',
      fraction: 0.9,
      cut: 'soft',
    });
    expect(svtSchema.parse({ mode: 'bytes', fraction: 0.4 })).toEqual({
      mode: 'bytes',
      fraction: 0.4,
    });
    expect(svtSchema.safeParse({ mode: 'relative', fraction: 0.3, cut: 'soft' }).success).toBe(
      false,
    );
    const bad = svtSchema.safeParse({ mode: 'bytes', fraction: 0.4, cut: 'gentle' });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.path).toEqual(['cut']);
  });

  it('keeps each truncated matrix in its own layout, equal to the factors it is sent as', () => {
    const { global, factors, ranks } = budgetStep(mixed, M, { mode: 'rank', rank: 1 }, 1);
    expect(ranks).toEqual({ 'c.kernel': { rank: 1, full: 2 }, 'd.kernel': { rank: 1, full: 4 } });
    expect(global['c.bias']).toBe(M['c.bias']);
    for (const p of mixed.filter((q) => q.role !== 'bias')) {
      const [rows, cols] = p.role === 'conv' ? [6, 2] : [6, 4];
      const { left, right } = factors[p.name]!;
      expect([left.shape, right.shape]).toEqual([
        [rows, 1],
        [1, cols],
      ]);
      const product = Array.from({ length: rows * cols }, (_, i) => {
        const [r, c] = [Math.floor(i / cols), i % cols];
        return left.data[r]! * right.data[c]!;
      });
      expect(global[p.name]!.shape).toEqual(p.shape);
      const view = toMatrixArray(global[p.name]!.data, p.shape, p.role);
      expect(Array.from(view)).toEqual(product.map((x) => expect.closeTo(x, 5)));
    }
  });

  it('keeps a matrix it does not cut as the same tensor, with no factors', () => {
    const { global, factors } = budgetStep(mixed, M, { mode: 'rank', rank: 4 }, 1);
    for (const p of mixed) expect(global[p.name]).toBe(M[p.name]);
    expect(factors).toEqual({});
  });

  it('takes an undefined byte count as no byte count', () => {
    const byFraction = budgetStep(model.spec, V, { mode: 'bytes', fraction: 0.3 }, 1);
    const alsoUndefined = { mode: 'bytes', fraction: 0.3, bytes: undefined } as const;
    expect(budgetStep(model.spec, V, alsoUndefined, 1).ranks).toEqual(byFraction.ranks);
  });

  it('names an impossible budget with its bytes, the dense download and the fixed part', () => {
    // The fixed part: 1-D tensors and the message envelope; the dense download is its exact size.
    const fixed = denseBytes - denseTensorBytes([30, 40]) - denseTensorBytes([40, 10]);
    const limit = Math.floor(0.01 * denseBytes);
    expect(() => budgetStep(model.spec, V, { mode: 'bytes', fraction: 0.01 }, 1)).toThrow(
      new RegExp(
        `^downlink budget of ${limit} bytes \\(0.01 of the dense ${denseBytes}\\) cannot be met: .* plus ${fixed} bytes of 1-D tensors and message$`,
      ),
    );
    expect(() => budgetStep(model.spec, V, { mode: 'bytes', bytes: 400 }, 1)).toThrow(
      /^downlink budget of 400 bytes \(bytes\) cannot be met: /,
    );
  });

  it('refuses a rank mode with neither rank nor fraction, and a model tensor missing from V', () => {
    expect(() => budgetStep(model.spec, V, { mode: 'rank' }, 1)).toThrow(
      'svt mode rank: give rank or fraction',
    );
    const { [b1!.name]: _, ...partial } = V;
    expect(() => budgetStep(model.spec, partial, { mode: 'energy', fraction: 0.9 }, 1)).toThrow(
      `svt energy: no tensor '${b1!.name}' in the model`,
    );
  });

  it('svt takes exactly one of the two keys of rank and bytes', () => {
    const issues = (v: object) => svtSchema.safeParse(v).error?.issues;
    expect(issues({ mode: 'rank', rank: 3 })).toBeUndefined();
    expect(issues({ mode: 'rank' })).toEqual([
      expect.objectContaining({
        code: 'custom',
        path: [],
        message: 'mode rank takes exactly one of rank, fraction',
      }),
    ]);
    expect(issues({ mode: 'bytes', fraction: 0.5, bytes: 900 })).toEqual([
      expect.objectContaining({
        code: 'custom',
        path: ['bytes'],
        message: 'mode bytes takes exactly one of fraction, bytes, got both',
      }),
    ]);
  });
});

describe('FedAvg with a downlink budget', () => {
  it('sends the truncated mean within the budget, and the client trains from it', async () => {
    const algo = fedavg(ctx, { weighted: true, downlink: 0.3 });
    const { agg, down } = await roundOf(algo);
    expect(pack(down).byteLength).toBeLessThanOrEqual(Math.floor(0.3 * denseBytes));
    checkHonest(down.params);
    expect(Object.values(down.params).some((t) => t.kind === 'lowrank')).toBe(true);
    const data = toTensors(
      new Float32Array(5 * 30).fill(0.1),
      Int32Array.from([0, 1, 2, 3, 4]),
      [30, 1, 1],
    );
    const before = tf.memory().numTensors;
    const r = await algo.client.train(down, algo.client.initClient(0, V), {
      client: 0,
      round: 1,
      lr: 0.1,
      data,
      rng: new Rng(1),
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(Number.isFinite(r.upload.trainLoss)).toBe(true);
    disposeData(data);
    expect(ranksOf(agg).every((r, j) => r <= [30, 10][j]!)).toBe(true);
  });

  it('meets the budget from round 0, sends evaluations as it sends training, sizes for the next round', async () => {
    const algo = fedavg(ctx, { weighted: true, downlinkBytes: 2345 });
    const s0 = algo.server.initServer(V);
    expect(pack(algo.server.download(s0, 0, 0)).byteLength).toBeLessThanOrEqual(2345);
    expect(algo.server.evalDownload(s0, 0)).toEqual(algo.server.download(s0, 0, 0));
    expect(algo.server.global(s0)).toBe(s0.global);
    // As FedSLR's step above: round 127's mean goes out in round 128 (ranks 4 and 3 at 2345
    // bytes; the sizes of round 126 would keep 4 and 4).
    const agg = await algo.server.aggregate(s0, 127, [
      { client: 0, upload: { round: 127, ...upload(V) } },
    ]);
    expect(ranksOf(agg)).toEqual([4, 3]);
    expect(pack(algo.server.download(agg.server, 128, 0)).byteLength).toBeLessThanOrEqual(2345);
  });

  it('takes the budget in bytes as well, and only one of the two forms', async () => {
    const bytes = Math.floor(0.3 * denseBytes);
    const { down } = await roundOf(fedavg(ctx, { weighted: true, downlinkBytes: bytes }));
    expect(pack(down).byteLength).toBeLessThanOrEqual(bytes);
    expect(Object.values(down.params).some((t) => t.kind === 'lowrank')).toBe(true);
    const parse = (o: object) => fedavgAlgorithm.schema.parse({ name: 'fedavg', ...o });
    expect(parse({ downlink: 0.3 }).downlink).toBe(0.3);
    expect(parse({ downlinkBytes: 900 }).downlinkBytes).toBe(900);
    expect(() => parse({ downlink: 0.3, downlinkBytes: 900 })).toThrow(
      /give downlink \(a fraction\) or downlinkBytes, not both/,
    );
  });

  it('at the whole dense budget it is FedAvg bit for bit', async () => {
    const plain = (await roundOf(fedavg(ctx, { weighted: true }))).agg.server.global;
    const full = (await roundOf(fedavg(ctx, { weighted: true, downlink: 1 }))).agg.server.global;
    for (const p of model.spec) expect(full[p.name]!.data).toEqual(plain[p.name]!.data);
  });

  it('without a budget keeps only the mean and reports no ranks', async () => {
    const { agg } = await roundOf(fedavg(ctx, { weighted: true }));
    expect(Object.keys(agg.server)).toEqual(['global']);
    expect(agg.stats).toEqual({});
  });
});
