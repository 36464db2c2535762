/**
 * FedSLR's server state between rounds: rank-2 factors (built from U sqrt(S) and sqrt(S) V^T)
 * that decode, also after MessagePack, to U (S - mu/alpha) V^T; the SVT warm start handed from
 * one round to the next unchanged; P_i's start; the personal density count. And the state as
 * stored: the server codec keeps W, D, the factors and every kind of SVT hint field through the
 * checkpoint bytes; the client codec refuses a non-positive lambda; a client without P_i is
 * refused; the density target adapts lambda towards 1.5 x the target.
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { decodeLowRank, decodeParams } from '../codec/params.js';
import { decodeServerState, encodeServerState } from '../codec/state.js';
import { pack, reviveTensor, unpack, type WireParams } from '../codec/wire.js';
import { plantedMatrix } from '../linalg/planted.js';
import type { SvtHint } from '../linalg/svt.js';
import { createModel } from '../models/index.js';
import { initBackend } from '../tensor/backend.js';
import type { ParamArrays } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { disposeData, toTensors } from '../train/loop.js';
import { DENSITY_HEADROOM, nextLambda } from './density_target.js';
import {
  FEDSLR_DEFAULTS,
  type FedSLRServer,
  fedslr,
  fedslrAlgorithm,
  fedslrServerCodec,
  initialSparse,
} from './fedslr.js';
import type { AlgorithmContext, ClientRun, Upload } from './types.js';

/** Every SVT call's warm start and the one it returned, in call order. */
const svtCalls = vi.hoisted(() => [] as { given?: SvtHint; returned: SvtHint }[]);
vi.mock('../linalg/svt.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../linalg/svt.js')>();
  return {
    ...real,
    svt: async (...args: Parameters<typeof real.svt>) => {
      const r = await real.svt(...args);
      svtCalls.push({ given: args[4]?.hint, returned: r.hint });
      return r;
    },
  };
});

beforeAll(async () => {
  await initBackend('wasm');
});

function ctx(inputs: number, classes: number): AlgorithmContext {
  return {
    model: createModel('mlp', { inputShape: [inputs, 1, 1], classes, hidden: [] }),
    numClients: 1,
    train: { lr: 0.1, lrDecay: 1, weightDecay: 0, batchSize: 1, epochs: 1 },
  };
}
const upload = (params: ParamArrays): Upload => ({
  round: 0,
  params: Object.fromEntries(
    Object.entries(params).map(([k, v]) => [k, { kind: 'dense' as const, ...v }]),
  ),
  numSamples: 1,
  trainLoss: 0,
  trainAcc: 0,
});

/** Orthonormal columns (rows x cols, row-major) by Gram-Schmidt on seeded normals. */
function orthonormal(rows: number, cols: number, rng: Rng): number[][] {
  const out: number[][] = [];
  while (out.length < cols) {
    let v = Array.from({ length: rows }, () => rng.normal());
    for (const q of out) {
      const d = v.reduce((a, x, i) => a + x * q[i]!, 0);
      v = v.map((x, i) => x - d * q[i]!);
    }
    const n = Math.hypot(...v);
    out.push(v.map((x) => x / n));
  }
  return out; // out[k] is column k
}

/** sum_k s_k u_k v_k^T as a row-major rows x cols array. */
function compose(u: number[][], s: number[], v: number[][]): number[] {
  const [rows, cols] = [u[0]!.length, v[0]!.length];
  const m = new Array<number>(rows * cols).fill(0);
  s.forEach((sk, k) => {
    for (let i = 0; i < rows; i++)
      for (let j = 0; j < cols; j++) m[i * cols + j]! += sk * u[k]![i]! * v[k]![j]!;
  });
  return m;
}

const maxGap = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

describe('FedSLR factors of rank 2', () => {
  it('thresholds to U (S - tau) V^T and sends it as rank-2 factors that decode to it, also after MessagePack', async () => {
    const rng = new Rng(31);
    const [rows, cols] = [6, 5];
    const u = orthonormal(rows, 5, rng);
    const v = orthonormal(cols, 5, rng);
    const s = [3, 2, 0.05, 0.01, 0.001];
    // alpha 0.1, mu 0.01: tau = 0.1 keeps 2.9 and 1.9; 2 * (6 + 5) = 22 numbers < 30.
    const algo = fedslr(ctx(rows, cols), { ...FEDSLR_DEFAULTS, alpha: 0.1, mu: 0.01 });
    const w: ParamArrays = {
      'out.kernel': { shape: [rows, cols], data: Float32Array.from(compose(u, s, v)) },
      'out.bias': { shape: [cols], data: Float32Array.from([0.1, -0.2, 0.3, 0, 0.5]) },
    };
    const r = await algo.server.aggregate(algo.server.initServer(w), 0, [
      { client: 0, upload: upload(w) },
    ]);
    const want = compose(u, [2.9, 1.9], v);
    const global = r.server.global['out.kernel']!;
    expect(global.shape).toEqual([rows, cols]);
    expect(maxGap(global.data, want)).toBeLessThan(1e-5);
    expect(r.stats.ranks).toEqual({ 'out.kernel': { rank: 2, full: 5 } });
    // The typed state keeps the kernel's factors (and nothing for the bias) ...
    expect(r.server.factors['out.kernel']!.left.shape).toEqual([rows, 2]);
    expect(r.server.factors['out.kernel']!.right.shape).toEqual([2, cols]);
    expect(Object.keys(r.server.factors)).toEqual(['out.kernel']);
    // ... and stores them, through the server codec, as the two factor tensors only.
    const stored = algo.server.codec.toRecord(r.server).tensors['factors']!;
    expect(stored['out.kernel:left']!.shape).toEqual([rows, 2]);
    expect(stored['out.kernel:right']!.shape).toEqual([2, cols]);
    expect(Object.keys(stored).sort()).toEqual(['out.kernel:left', 'out.kernel:right']);

    const down = algo.server.download(r.server, 1, 0);
    const k = down.params['out.kernel']!;
    expect(k.kind === 'lowrank' && [k.rows, k.cols, k.rank]).toEqual([rows, cols, 2]);
    expect(down.params['out.bias']!.kind).toBe('dense');
    const spec = ctx(rows, cols).model.spec;
    const decode = (params: WireParams) => decodeParams(params, spec);
    expect(maxGap(decode(down.params)['out.kernel']!.data, want)).toBeLessThan(1e-5);
    const raw = unpack(pack(down)) as { params: Record<string, unknown> };
    const wire = Object.fromEntries(
      Object.entries(raw.params).map(([n, t]) => [n, reviveTensor(t, n)]),
    );
    const back = decode(wire);
    expect(maxGap(back['out.kernel']!.data, want)).toBeLessThan(1e-5);
    expect(Array.from(back['out.bias']!.data)).toEqual(Array.from(w['out.bias']!.data));
    expect(() => decodeLowRank(spec, 'nope', k as never)).toThrow(
      /low-rank tensor 'nope' is not in the model's spec/,
    );
  });
});

describe('FedSLR SVT warm start', () => {
  for (const [path, values] of [
    // Most values cut: the subspace path keeps a basis and a rank.
    ['subspace', Array.from({ length: 10 }, (_, i) => 1 - 0.07 * i)],
    // Every value kept: the polar path keeps its bound and top vector.
    ['polar', Array.from({ length: 120 }, (_, i) => 2 - 0.01 * i)],
  ] as const) {
    it(`hands the ${path} path's hint from one round's SVT to the next unchanged`, async () => {
      svtCalls.length = 0;
      const algo = fedslr(ctx(150, 120), { ...FEDSLR_DEFAULTS, alpha: 0.1, mu: 0.01 });
      const W: ParamArrays = {
        'out.kernel': { shape: [150, 120], data: plantedMatrix(150, 120, [...values], 3) },
        'out.bias': { shape: [120], data: new Float32Array(120) },
      };
      const r1 = await algo.server.aggregate(algo.server.initServer(W), 0, [
        { client: 0, upload: upload(W) },
      ]);
      const r2 = await algo.server.aggregate(r1.server, 1, [
        { client: 0, upload: upload(r1.server.global) },
      ]);
      await algo.server.aggregate(r2.server, 2, [{ client: 0, upload: upload(r2.server.global) }]);
      expect(svtCalls).toHaveLength(3);
      expect(svtCalls[0]!.given).toEqual({ fullRank: true });
      const fields = Object.keys(svtCalls[0]!.returned).sort();
      expect(fields).toEqual(
        path === 'subspace'
          ? expect.arrayContaining(['basis', 'fullRank', 'rank'])
          : expect.arrayContaining(['fullRank', 'polarL', 'topVector']),
      );
      expect(svtCalls[1]!.given).toEqual(svtCalls[0]!.returned);
      expect(svtCalls[2]!.given).toEqual(svtCalls[1]!.returned);
    });
  }
});

describe('FedSLR client state', () => {
  it('starts P_i from the initial dense weights and biases, with the same shapes when zero', () => {
    const model = ctx(3, 2).model;
    const init: ParamArrays = {
      'out.kernel': { shape: [3, 2], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
      'out.bias': { shape: [2], data: Float32Array.from([7, 8]) },
    };
    const fromInit = initialSparse(model.spec, init, 'init');
    expect(fromInit['out.kernel']!.data).toBe(init['out.kernel']!.data);
    expect(fromInit['out.bias']!.data).toBe(init['out.bias']!.data);
    const zeros = initialSparse(model.spec, init, 'zeros');
    expect(zeros['out.kernel']).toEqual({ shape: [3, 2], data: new Float32Array(6) });
    expect(zeros['out.bias']).toEqual({ shape: [2], data: new Float32Array(2) });
  });

  it('counts the personal density as non-zeros over all entries of P_i', () => {
    const algo = fedslr(ctx(3, 2), FEDSLR_DEFAULTS);
    expect(algo.name).toBe('fedslr');
    const sparse: ParamArrays = {
      'out.kernel': { shape: [3, 2], data: Float32Array.from([0, 1, 0, 0, -2, 0]) },
      'out.bias': { shape: [2], data: Float32Array.from([0, 3]) },
    };
    expect(algo.client.personalDensity!({ sparse })).toBe(3 / 8);
  });

  it('needs the global model to build a personal one', () => {
    const algo = fedslr(ctx(3, 2), FEDSLR_DEFAULTS);
    const run = undefined as never;
    expect(() => algo.client.personalModel({ sparse: {} }, undefined, run)).toThrow(
      /^fedslr: personal model needs the global model$/,
    );
  });
});

const f32 = (xs: number[]) => Float32Array.from(xs);
const set = (shape: number[], xs: number[]) => ({ shape, data: f32(xs) });
const smallCtx: AlgorithmContext = {
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
  const algo = fedslr(smallCtx, { density: 0.3 });

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
    const W = toArraysOf(smallCtx.model);
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
    const adapt = fedslr(smallCtx, { density: 0.3, personalEpochs: 0, lambda: 2e-3 });
    const data = toTensors(f32([1, 0, 2, -1, 1, 0]), Int32Array.from([0, 1]), [3, 1, 1]);
    const W = toArraysOf(smallCtx.model);
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
