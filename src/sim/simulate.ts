/**
 * The one round loop. It draws clients, moves downloads and uploads between the algorithm's
 * server and client parts (counting them through the codec), keeps every client's state between
 * rounds, and evaluates all clients every `evalEvery` rounds. It yields plain events; writing
 * files is the caller's business (see rundir.ts).
 */
import type { Algorithm, ClientState, ServerState, Upload } from '../algorithms/types.js';
import { lrAt } from '../algorithms/types.js';
import { pack, wireParamsCount } from '../codec/wire.js';
import type { ClientData } from '../data/clients.js';
import type { Model } from '../models/index.js';
import type { ParamArrays } from '../tensor/params.js';
import { disposeParams, fromArrays, paramCount } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import type { DataTensors } from '../train/loop.js';
import { disposeData, evaluate, toTensors } from '../train/loop.js';
import type { RunConfig } from './config.js';
import type { ClientEval, EvalRecord, RunEvent } from './events.js';
import { drawClients } from './sampling.js';
import { summarize } from './stats.js';
import { type ClientStore, MemoryStore } from './store.js';

/** Keys of the random streams: Rng.derive(seed, STREAM, round[, client]). */
export const SAMPLING_STREAM = 0x73616d70;
export const CLIENT_STREAM = 0x636c6e74;
export const EVAL_STREAM = 0x6576616c;

export interface Simulation {
  config: RunConfig;
  model: Model;
  algorithm: Algorithm;
  clients: readonly ClientData[];
  /** The shared initial parameters (server init and the start of personal states). */
  init: ParamArrays;
}

/** Mutable progress of a run: what a checkpoint would hold. */
/** Communication totals since the start; `dense_down_params` is what dense downloads would carry. */
export interface Totals {
  down_params: number;
  down_bytes: number;
  up_params: number;
  up_bytes: number;
  dense_down_params: number;
}

export interface SimState {
  round: number;
  server: ServerState;
  clients: ClientStore;
  /** Clients whose state changed since the last checkpoint. */
  dirty: Set<number>;
  totals: Totals;
}

export function initialState(sim: Simulation, clients: ClientStore = new MemoryStore()): SimState {
  return {
    round: 0,
    server: sim.algorithm.initServer(sim.init),
    clients,
    dirty: new Set(),
    totals: { down_params: 0, down_bytes: 0, up_params: 0, up_bytes: 0, dense_down_params: 0 },
  };
}

function clientState(sim: Simulation, st: SimState, client: number): ClientState {
  return st.clients.get(client) ?? sim.algorithm.initClient(client, sim.init);
}

function trainTensors(sim: Simulation, client: number): DataTensors {
  const c = sim.clients[client]!;
  return toTensors(c.train.x, c.train.y, c.shape);
}

/** Evaluates the global model and every client's personal model on each client's test set. */
export function evaluateAll(
  sim: Simulation,
  st: SimState,
  round: number,
  time_s: number,
  ranks?: EvalRecord['ranks'],
): { record: EvalRecord; clients: ClientEval } {
  const { algorithm, model } = sim;
  // Personal models may build on the shared part even when it is no model to evaluate on its
  // own (FedRep's body, LG-FedAvg's head).
  const global = st.server.global;
  const gTensors = algorithm.hasGlobal && global ? fromArrays(global) : undefined;
  const ce: ClientEval = { round, n: [] };
  const g = { acc: [] as number[], loss: [] as number[] };
  const p = { acc: [] as number[], loss: [] as number[] };
  const densities: number[] = [];
  for (const c of sim.clients) {
    const test = toTensors(c.test.x, c.test.y, c.shape);
    ce.n.push(c.test.size);
    if (gTensors) {
      const r = evaluate(model, gTensors, test);
      g.acc.push(r.acc);
      g.loss.push(r.loss);
    }
    if (algorithm.hasPersonal) {
      const state = clientState(sim, st, c.id);
      const train = trainTensors(sim, c.id);
      const run = {
        client: c.id,
        round,
        lr: lrAt(sim.config.train, round),
        data: train,
        rng: Rng.derive(sim.config.seed, EVAL_STREAM, round, c.id),
      };
      const pm = algorithm.personalModel(state, global, run);
      disposeData(train);
      if (pm) {
        const pt = fromArrays(pm);
        const r = evaluate(model, pt, test);
        disposeParams(pt);
        p.acc.push(r.acc);
        p.loss.push(r.loss);
      }
      if (algorithm.personalDensity) densities.push(algorithm.personalDensity(state));
    }
    disposeData(test);
  }
  if (gTensors) disposeParams(gTensors);
  const withTest = ce.n
    .map((n, i) => ({ n, i }))
    .filter((x) => x.n > 0)
    .map((x) => x.i);
  const summary = (m: { acc: number[]; loss: number[] }) =>
    summarize(
      withTest.map((i) => m.acc[i]!),
      withTest.map((i) => m.loss[i]!),
      withTest.map((i) => ce.n[i]!),
    );
  const record: EvalRecord = { round, time_s, ...st.totals };
  if (g.acc.length) {
    record.global = summary(g);
    ce.global = g;
  }
  if (p.acc.length) {
    record.personal = summary(p);
    ce.personal = p;
  }
  if (ranks && Object.keys(ranks).length) {
    const vals = Object.values(ranks);
    record.rank_ratio = vals.reduce((s, r) => s + r.rank, 0) / vals.reduce((s, r) => s + r.full, 0);
    record.ranks = ranks;
  }
  if (densities.length)
    record.personal_density = densities.reduce((a, b) => a + b, 0) / densities.length;
  return { record, clients: ce };
}

/**
 * Runs rounds `st.round` .. `config.rounds - 1`, updating `st` in place and yielding events.
 * `now()` gives seconds since the start of the run (so a resumed run can keep counting).
 */
export async function* simulate(
  sim: Simulation,
  st: SimState,
  now: () => number,
): AsyncGenerator<RunEvent> {
  const { config, algorithm } = sim;
  const n = sim.clients.length;
  let lastRanks: EvalRecord['ranks'];
  const denseSize = algorithm.hasGlobal ? paramCount(sim.model.spec) : 0;
  while (st.round < config.rounds) {
    const t = st.round;
    const lr = lrAt(config.train, t);
    const drawn = drawClients(
      config.clients.sampling,
      n,
      Rng.derive(config.seed, SAMPLING_STREAM, t),
    );
    yield { type: 'round-start', round: t, clients: drawn, lr };
    const uploads: { client: number; upload: Upload }[] = [];
    const round: Totals = {
      down_params: 0,
      down_bytes: 0,
      up_params: 0,
      up_bytes: 0,
      dense_down_params: 0,
    };
    let lossSum = 0;
    for (const client of drawn) {
      const down = algorithm.download(st.server, t, client);
      round.down_params += wireParamsCount(down.params) + extraCount(down.extra);
      round.down_bytes += pack(down).byteLength;
      round.dense_down_params += denseSize;
      const data = trainTensors(sim, client);
      const run = {
        client,
        round: t,
        lr,
        data,
        rng: Rng.derive(config.seed, CLIENT_STREAM, t, client),
      };
      const r = algorithm.clientTrain(down, clientState(sim, st, client), run);
      disposeData(data);
      st.clients.set(client, r.state);
      st.dirty.add(client);
      round.up_params += wireParamsCount(r.upload.params) + extraCount(r.upload.extra);
      round.up_bytes += pack(r.upload).byteLength;
      uploads.push({ client, upload: r.upload });
      lossSum += r.upload.trainLoss;
      yield {
        type: 'client-done',
        round: t,
        client,
        loss: r.upload.trainLoss,
        acc: r.upload.trainAcc,
      };
    }
    const agg = algorithm.aggregate(st.server, t, uploads);
    st.server = agg.server;
    if (agg.stats.ranks) lastRanks = agg.stats.ranks;
    for (const k of Object.keys(round) as (keyof typeof round)[]) st.totals[k] += round[k];
    st.round = t + 1;
    yield {
      type: 'round-end',
      round: t,
      time_s: now(),
      ...round,
      train_loss: lossSum / drawn.length,
    };
    if (st.round % config.evalEvery === 0 || st.round === config.rounds) {
      const ev = evaluateAll(sim, st, st.round, now(), lastRanks);
      yield { type: 'eval', record: ev.record, clients: ev.clients };
    }
  }
}

function extraCount(extra: Record<string, ParamArrays> | undefined): number {
  if (!extra) return 0;
  let n = 0;
  for (const set of Object.values(extra)) for (const a of Object.values(set)) n += a.data.length;
  return n;
}
