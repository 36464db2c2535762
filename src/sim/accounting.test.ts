/**
 * The metrics of one small FedSLR run against independent counts:
 *
 * - down/up bytes and parameters of every round equal the sums over the messages the algorithm
 *   really produced (each packed with MessagePack; numbers counted per wire tensor);
 * - low-rank downloads survive pack -> unpack -> revive -> decode as the server's global model;
 * - global and personal accuracy, weighted accuracy, spread and p10/p50/p90 equal a float64
 *   forward pass over every client's test set (one is larger than the evaluation batch of 500),
 *   with numpy's linear-interpolation percentiles;
 * - rank ratio and mean personal density equal counts over the server's ranks and the clients'
 *   sparse parts.
 *
 * And, on baselines: SCAFFOLD's extra tensors are counted both ways; an algorithm without a
 * global (local; FedRep, whose shared body is no model) or personal model (FedAvg) reports none, nor ranks or densities; a client
 * without a test set is left out of the summaries.
 */
import { describe, expect, it } from 'vitest';
import type { FedSLRClient } from '../algorithms/fedslr.js';
import type { Algorithm, Download, ServerStats, Upload } from '../algorithms/types.js';
import { pack, reviveTensor, unpack, type WireParams } from '../codec/wire.js';
import type { ClientData } from '../data/clients.js';
import type { ParamArrays } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { parseConfig } from './config.js';
import type { EvalRecord, RunEvent } from './events.js';
import { InProcessFleet } from './fleet_local.js';
import { setup } from './setup.js';
import { initialState, type Simulation, simulate } from './simulate.js';
import { MemoryStore } from './store.js';

const SHAPE = [4, 4, 1] as const;
const DIM = 16;
const CLASSES = 3;
/** Test-set sizes; client 0's is larger than evaluate's batch of 500. */
const TEST_SIZES = [620, 40, 55, 70, 30, 90];

/** Samples labelled by the largest of three fixed linear scores, plus noise. */
function samples(n: number, rng: Rng): ClientData['train'] {
  const x = Float32Array.from({ length: n * DIM }, () => rng.normal());
  const y = Int32Array.from({ length: n }, (_, s) => {
    const row = x.subarray(s * DIM, (s + 1) * DIM);
    const scores = [0, 1, 2].map(
      (c) => row.reduce((a, v, i) => a + v * Math.sin(1 + i * (c + 1)), 0) + rng.normal(),
    );
    return scores.indexOf(Math.max(...scores));
  });
  return { x, y, size: n };
}

function clientsData(): ClientData[] {
  const rng = new Rng(17);
  return TEST_SIZES.map((testSize, id) => ({
    id,
    train: samples(30 + 5 * id, rng),
    test: samples(testSize, rng),
    shape: SHAPE,
    classes: CLASSES,
  }));
}

/**
 * Wraps the algorithm's server and client parts so every download, evaluation download, upload
 * and server step they produce is recorded.
 */
function recording(algorithm: Algorithm) {
  const { server, client } = algorithm;
  const log = {
    downloads: new Map<number, Download[]>(),
    /** The server's global model each download (training or evaluation) was made from. */
    sent: [] as { download: Download; global: ParamArrays }[],
    /** Each evaluation download, in order (one per evaluation). */
    evals: [] as Download[],
    uploads: new Map<number, Upload[]>(),
    stats: [] as ServerStats[],
  };
  const push = <T>(m: Map<number, T[]>, round: number, v: T) => {
    m.set(round, [...(m.get(round) ?? []), v]);
  };
  const wrapped: Algorithm = {
    ...algorithm,
    server: {
      ...server,
      download(state, round, c) {
        const d = server.download(state, round, c);
        push(log.downloads, round, d);
        log.sent.push({ download: d, global: server.global(state)! });
        return d;
      },
      evalDownload(state, round) {
        const d = server.evalDownload(state, round);
        log.evals.push(d);
        log.sent.push({ download: d, global: server.global(state)! });
        return d;
      },
      async aggregate(state, round, uploads) {
        const r = await server.aggregate(state, round, uploads);
        log.stats.push(r.stats);
        return r;
      },
    },
    client: {
      ...client,
      async train(down, state, run) {
        const r = await client.train(down, state, run);
        push(log.uploads, run.round, r.upload);
        return r;
      },
    },
  };
  return { wrapped, log };
}

/** Numbers a wire message carries, counted here tensor by tensor. */
function numbers(params: WireParams): number {
  let n = 0;
  for (const t of Object.values(params))
    n +=
      t.kind === 'dense'
        ? t.data.length
        : t.kind === 'lowrank'
          ? t.rank * (t.rows + t.cols)
          : t.values.length;
  return n;
}

/** A wire message after a trip through MessagePack, its tensors decoded to plain float64 arrays. */
function throughWire(down: Download): Record<string, number[]> {
  const raw = unpack(pack(down)) as { params: Record<string, unknown> };
  const out: Record<string, number[]> = {};
  for (const [name, r] of Object.entries(raw.params)) {
    const t = reviveTensor(r, name);
    if (t.kind === 'dense') out[name] = Array.from(t.data);
    else if (t.kind === 'lowrank') {
      // A dense layer's kernel is its own matrix view: left (rows x r) times right (r x cols).
      const m = new Array<number>(t.rows * t.cols).fill(0);
      for (let i = 0; i < t.rows; i++)
        for (let k = 0; k < t.rank; k++)
          for (let j = 0; j < t.cols; j++)
            m[i * t.cols + j]! += t.left[i * t.rank + k]! * t.right[k * t.cols + j]!;
      out[name] = m;
    } else throw new Error(`${name}: FedSLR sends no sparse tensors`);
  }
  return out;
}

/** Decoded values as float32 parameters with the model's shapes (what a client holds). */
function asParams(values: Record<string, number[]>, like: ParamArrays): ParamArrays {
  return Object.fromEntries(
    Object.entries(like).map(([k, v]) => [
      k,
      { shape: v.shape, data: Float32Array.from(values[k]!) },
    ]),
  );
}

/** Correct predictions and summed cross-entropy of the mlp [16 -> 12 ReLU -> 3] in float64. */
function score(p: ParamArrays, data: ClientData['test']): { correct: number; lossSum: number } {
  const w = (k: string) => p[k]!.data;
  const [k1, b1, k2, b2] = [w('fc1.kernel'), w('fc1.bias'), w('out.kernel'), w('out.bias')];
  const hidden = b1.length;
  let correct = 0;
  let lossSum = 0;
  for (let s = 0; s < data.size; s++) {
    const x = data.x.subarray(s * DIM, (s + 1) * DIM);
    const h = Array.from({ length: hidden }, (_, j) => {
      let v = b1[j]!;
      for (let i = 0; i < DIM; i++) v += x[i]! * k1[i * hidden + j]!;
      return Math.max(v, 0);
    });
    const z = Array.from({ length: CLASSES }, (_, c) => {
      let v = b2[c]!;
      for (let j = 0; j < hidden; j++) v += h[j]! * k2[j * CLASSES + c]!;
      return v;
    });
    const top = Math.max(...z);
    const logSum = top + Math.log(z.reduce((a, v) => a + Math.exp(v - top), 0));
    lossSum += logSum - z[data.y[s]!]!;
    if (z.indexOf(top) === data.y[s]) correct++;
  }
  return { correct, lossSum };
}

/** numpy.percentile's default (linear interpolation between order statistics). */
function numpyPercentile(values: number[], q: number): number {
  const v = [...values].sort((a, b) => a - b);
  const pos = (q / 100) * (v.length - 1);
  const lo = Math.floor(pos);
  return v[lo]! + (v[Math.min(lo + 1, v.length - 1)]! - v[lo]!) * (pos - lo);
}

function plus(a: ParamArrays, b: ParamArrays): ParamArrays {
  return Object.fromEntries(
    Object.entries(a).map(([k, v]) => [
      k,
      { shape: v.shape, data: v.data.map((x, i) => x + b[k]!.data[i]!) },
    ]),
  );
}

function density(state: FedSLRClient): number {
  const sets = Object.values(state.sparse!);
  const nnz = sets.reduce((n, a) => n + a.data.filter((x) => x !== 0).length, 0);
  return nnz / sets.reduce((n, a) => n + a.data.length, 0);
}

/**
 * What every field of an evaluation record must be, counted from the models directly. `sent` is
 * the evaluation download as clients decode it (the global model they are evaluated with and the
 * base of their personal models W + P_i).
 */
function expectRecord(sim: Simulation, rec: EvalRecord, states: FedSLRClient[], sent: ParamArrays) {
  const accOf = (model: (c: number) => ParamArrays) =>
    sim.clients.map((c) => {
      const r = score(model(c.id), c.test);
      return { acc: r.correct / c.test.size, loss: r.lossSum / c.test.size, correct: r.correct };
    });
  const kinds = {
    global: accOf(() => sent),
    personal: accOf((c) => plus(sent, states[c]!.sparse!)),
  };
  for (const [kind, rows] of Object.entries(kinds)) {
    const got = rec[kind as 'global' | 'personal']!;
    const acc = rows.map((r) => r.acc);
    const mean = acc.reduce((a, b) => a + b, 0) / acc.length;
    const want = {
      acc: mean,
      acc_weighted: rows.reduce((a, r) => a + r.correct, 0) / TEST_SIZES.reduce((a, b) => a + b, 0),
      acc_std: Math.sqrt(acc.reduce((a, v) => a + (v - mean) ** 2, 0) / acc.length),
      acc_p10: numpyPercentile(acc, 10),
      acc_p50: numpyPercentile(acc, 50),
      acc_p90: numpyPercentile(acc, 90),
    };
    for (const [key, value] of Object.entries(want)) {
      expect(Number.isFinite(value), `${kind}.${key}`).toBe(true);
      expect(got[key as keyof typeof want], `${kind}.${key}`).toBeCloseTo(value, 9);
    }
    const loss = rows.reduce((a, r) => a + r.loss, 0) / rows.length;
    expect(Number.isFinite(loss)).toBe(true);
    expect(got.loss, `${kind}.loss`).toBeCloseTo(loss, 4);
  }
  expect(rec.personal_density).toBeCloseTo(
    states.reduce((a, s) => a + density(s), 0) / states.length,
    12,
  );
}

interface SmallRun {
  sim: Simulation;
  events: RunEvent[];
  /**
   * Each evaluation with the client states it evaluated and the evaluation download they were
   * sent, decoded independently (MessagePack trip, float64 factor products).
   */
  evaluated: { record: EvalRecord; states: FedSLRClient[]; sent: ParamArrays }[];
  log: ReturnType<typeof recording>['log'];
}

async function smallRun(): Promise<SmallRun> {
  const config = parseConfig({
    seed: 2,
    rounds: 3,
    evalEvery: 1,
    clients: { count: TEST_SIZES.length, sampling: { kind: 'count', k: 3 } },
    algorithm: { name: 'fedslr', alpha: 0.1, mu: 0.05, lambda: 0.01 },
    model: { name: 'mlp', hidden: [12] },
    train: { backend: 'wasm', lr: 0.1, epochs: 1, batchSize: 10 },
    runtime: { workers: 1 },
  });
  const made = await setup(config, { clients: clientsData() });
  const rec = recording(made.sim.algorithm);
  const sim: Simulation = { ...made.sim, algorithm: rec.wrapped };
  const run: SmallRun = { sim, events: [], evaluated: [], log: rec.log };
  const st = initialState(sim);
  const store = new MemoryStore(sim.algorithm.client.codec);
  const fleet = new InProcessFleet(sim, store);
  for await (const e of simulate(sim, st, () => 0, fleet)) {
    run.events.push(e);
    if (e.type !== 'eval') continue;
    const states = sim.clients.map(
      (c) => (store.get(c.id) ?? sim.algorithm.client.initClient(c.id, sim.init)) as FedSLRClient,
    );
    const sent = throughWire(rec.log.evals.at(-1)!);
    run.evaluated.push({ record: e.record, states, sent: asParams(sent, made.sim.init) });
  }
  await fleet.close();
  return run;
}

/** Bytes and numbers of every round equal those of the messages as packed and sent. */
function checkBytes({ events, evaluated, log }: SmallRun): void {
  const ends = events.flatMap((e) => (e.type === 'round-end' ? [e] : []));
  expect(ends).toHaveLength(3);
  let down = 0;
  let up = 0;
  for (const e of ends) {
    const downs = log.downloads.get(e.round)!;
    const ups = log.uploads.get(e.round)!;
    expect(downs).toHaveLength(3);
    expect(ups).toHaveLength(3);
    const bytes = (ms: unknown[]) => ms.reduce<number>((a, m) => a + pack(m).byteLength, 0);
    expect(e.down_bytes).toBe(bytes(downs));
    // Uploads are counted without the round they now carry (simulate.ts keeps byte counts
    // comparable with runs made before it): the packed upload less that one field.
    expect(e.up_bytes).toBe(bytes(ups.map(({ round: _round, ...payload }) => payload)));
    expect(ups.every((u) => u.round === e.round)).toBe(true);
    expect(e.down_params).toBe(downs.reduce((a, d) => a + numbers(d.params), 0));
    expect(e.up_params).toBe(ups.reduce((a, u) => a + numbers(u.params), 0));
    expect(e.train_loss).toBeCloseTo(ups.reduce((a, u) => a + u.trainLoss, 0) / ups.length, 12);
    // 16*12 + 12 + 12*3 + 3 numbers in a dense model.
    expect(e.dense_down_params).toBe(3 * 243);
    down += e.down_bytes;
    up += e.up_bytes;
  }
  const last = evaluated.at(-1)!.record;
  expect(last.down_bytes).toBe(down);
  expect(last.up_bytes).toBe(up);
  // Uploads are dense and downloads partly low-rank: the two directions differ.
  expect(up).toBeGreaterThan(down);
}

/**
 * Low-rank factors of the training and evaluation downloads decode, after MessagePack, to the
 * server's global model.
 */
function checkLowRankWire({ log }: SmallRun): void {
  expect(log.evals).toHaveLength(3);
  expect(log.sent).toHaveLength(3 * 3 + 3);
  const kinds = log.sent.flatMap((s) => Object.values(s.download.params).map((t) => t.kind));
  expect(kinds).toContain('lowrank');
  expect(kinds).toContain('dense');
  for (const { download, global } of log.sent) {
    const decoded = throughWire(download);
    for (const [name, t] of Object.entries(download.params)) {
      const want = global[name]!.data;
      const err = Math.max(...decoded[name]!.map((v, i) => Math.abs(v - want[i]!)));
      expect(err, name).toBeLessThan(1e-5);
      if (t.kind === 'lowrank') expect(t.rank * (t.rows + t.cols)).toBeLessThan(t.rows * t.cols);
    }
  }
}

/** Accuracies, spread, percentiles, density and rank ratio equal independent counts. */
function checkRecords({ sim, evaluated, log }: SmallRun): void {
  expect(evaluated.map((e) => e.record.round)).toEqual([1, 2, 3]);
  evaluated.forEach(({ record: rec, states, sent }, i) => {
    expectRecord(sim, rec, states, sent);
    const ranks = log.stats[i]!.ranks!;
    const vals = Object.values(ranks);
    expect(rec.rank_ratio).toBe(
      vals.reduce((a, r) => a + r.rank, 0) / vals.reduce((a, r) => a + r.full, 0),
    );
    expect(vals.some((r) => r.rank < r.full)).toBe(true);
  });
}

// One test: the run happens inside it, so mutation testing's per-test coverage sees which
// assertions depend on the simulator's code (code run in beforeAll is attributed to no test).
describe('metrics accounting of a small FedSLR run', () => {
  it('counts bytes and numbers as sent, sends factors that decode to W, and reports metrics as counted independently', async () => {
    const run = await smallRun();
    checkBytes(run);
    checkLowRankWire(run);
    checkRecords(run);
  });
});

/**
 * A 2-round run of a baseline on the same clients, except that client 0 has no test set: the
 * evaluation downloads, uploads and round events it produced, recorded as above.
 */
async function baselineRun(name: string) {
  const clients = clientsData().map((c, i) =>
    i === 0 ? { ...c, test: { x: new Float32Array(0), y: new Int32Array(0), size: 0 } } : c,
  );
  const config = parseConfig({
    seed: 4,
    rounds: 2,
    evalEvery: 1,
    clients: { count: clients.length, sampling: { kind: 'count', k: 3 } },
    algorithm: { name },
    model: { name: 'mlp', hidden: [12] },
    train: { backend: 'wasm', lr: 0.1, epochs: 1, batchSize: 10 },
    runtime: { workers: 1 },
  });
  const made = await setup(config, { clients });
  const rec = recording(made.sim.algorithm);
  const sim: Simulation = { ...made.sim, algorithm: rec.wrapped };
  const events: RunEvent[] = [];
  const fleet = new InProcessFleet(sim, new MemoryStore(sim.algorithm.client.codec));
  for await (const e of simulate(sim, initialState(sim), () => 0, fleet)) events.push(e);
  await fleet.close();
  const ends = events.flatMap((e) => (e.type === 'round-end' ? [e] : []));
  const records = events.flatMap((e) => (e.type === 'eval' ? [e.record] : []));
  return { sim, log: rec.log, ends, records };
}

/** Numbers in the extra tensors a message carries (SCAFFOLD's control variates). */
const extraNumbers = (extra: Record<string, ParamArrays> | undefined) =>
  Object.values(extra ?? {}).reduce(
    (n, set) => n + Object.values(set).reduce((m, a) => m + a.data.length, 0),
    0,
  );

describe('metrics accounting of the baselines', () => {
  it("counts SCAFFOLD's control variates in both directions, as numbers and as bytes", async () => {
    const { log, ends } = await baselineRun('scaffold');
    expect(ends).toHaveLength(2);
    for (const e of ends) {
      const downs = log.downloads.get(e.round)!;
      const ups = log.uploads.get(e.round)!;
      // The model and the server's control variate down; the model and c_i's change up.
      expect(downs.map((d) => extraNumbers(d.extra))).toEqual([243, 243, 243]);
      expect(ups.map((u) => extraNumbers(u.extra))).toEqual([243, 243, 243]);
      expect(e.down_params).toBe(3 * 2 * 243);
      expect(e.up_params).toBe(3 * 2 * 243);
      const bytes = (ms: unknown[]) => ms.reduce<number>((a, m) => a + pack(m).byteLength, 0);
      expect(e.down_bytes).toBe(bytes(downs));
      expect(e.up_bytes).toBe(bytes(ups.map(({ round: _round, ...payload }) => payload)));
      expect(e.dense_down_params).toBe(3 * 243);
    }
  });

  it('reports only the models an algorithm has, summarised over the clients with a test set', async () => {
    const local = await baselineRun('local');
    for (const rec of local.records) {
      expect(rec.global).toBeUndefined();
      expect(rec.personal).toBeDefined();
      expect(rec.rank_ratio).toBeUndefined();
      expect(rec.personal_density).toBeUndefined();
    }
    // Nothing shared: no dense model that the downlink could be compared with.
    expect(local.ends.map((e) => e.dense_down_params)).toEqual([0, 0]);
    // FedRep shares its body, which personal models build on but is no model on its own.
    const fedrep = await baselineRun('fedrep');
    expect(Object.keys(fedrep.log.evals[0]!.params).length).toBeGreaterThan(0);
    for (const rec of fedrep.records) {
      expect(rec.global).toBeUndefined();
      expect(Number.isFinite(rec.personal!.acc)).toBe(true);
    }

    const fedavg = await baselineRun('fedavg');
    expect(fedavg.records.map((r) => r.round)).toEqual([1, 2]);
    fedavg.records.forEach((rec, i) => {
      expect(rec.personal).toBeUndefined();
      expect(rec.rank_ratio).toBeUndefined();
      expect(rec.ranks).toBeUndefined();
      expect(rec.personal_density).toBeUndefined();
      // The global model as clients 1..5 decode it, scored independently; client 0 has no test.
      const sent = asParams(throughWire(fedavg.log.evals[i]!), fedavg.sim.init);
      const tested = fedavg.sim.clients.filter((c) => c.test.size > 0);
      expect(tested).toHaveLength(5);
      const rows = tested.map((c) => score(sent, c.test));
      const acc = rows.map((r, j) => r.correct / tested[j]!.test.size);
      const n = TEST_SIZES.slice(1).reduce((a, b) => a + b, 0);
      expect(rec.global!.acc).toBeCloseTo(acc.reduce((a, b) => a + b, 0) / 5, 9);
      expect(rec.global!.acc_weighted).toBeCloseTo(rows.reduce((a, r) => a + r.correct, 0) / n, 9);
      expect(rec.global!.acc_p10).toBeCloseTo(numpyPercentile(acc, 10), 9);
      const loss = rows.reduce((a, r, j) => a + r.lossSum / tested[j]!.test.size, 0) / 5;
      expect(rec.global!.loss).toBeCloseTo(loss, 4);
    });
  });
});
