/**
 * The one round loop. It draws clients, moves downloads and uploads between the algorithm's
 * server and client parts (counting them through the codec), keeps every client's state between
 * rounds, and evaluates all clients every `evalEvery` rounds. It yields plain events; writing
 * files is the caller's business (see rundir.ts).
 */
import type { Algorithm, Upload } from '../algorithms/types.js';
import { lrAt } from '../algorithms/types.js';
import { pack, wireParamsCount } from '../codec/wire.js';
import type { ClientData } from '../data/clients.js';
import type { Model } from '../models/index.js';
import type { ParamArrays } from '../tensor/params.js';
import { paramCount } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { SAMPLING_STREAM, type TrainOutcome, type TrainTask } from './client_work.js';
import type { RunConfig } from './config.js';
import type { ClientEval, EvalRecord, RunEvent } from './events.js';
import type { Executor } from './executor.js';
import { drawClients } from './sampling.js';
import { summarize } from './stats.js';
import { type ClientStore, MemoryStore } from './store.js';

/** A drawn client's training loss was not finite: the run cannot go on at this learning rate. */
export class TrainingDiverged extends Error {
  /** What happened, without the advice the message adds. */
  readonly reason: string;

  constructor(
    /** The round (from 1) whose training diverged. */
    readonly round: number,
    readonly client: number,
    readonly loss: number,
    readonly lr: number,
  ) {
    const reason = `training diverged in round ${round}: client ${client}'s loss is ${loss} (lr ${Number(lr.toPrecision(4))})`;
    super(
      `${reason}; try a smaller train.lr. The run directory keeps everything up to the last evaluation.`,
    );
    this.reason = reason;
    this.name = 'TrainingDiverged';
  }
}

export interface Simulation {
  config: RunConfig;
  model: Model;
  algorithm: Algorithm;
  clients: readonly ClientData[];
  /** The shared initial parameters (server init and the start of personal states). */
  init: ParamArrays;
}

/** Communication totals since the start; `dense_down_params` is what dense downloads would carry. */
export interface Totals {
  down_params: number;
  down_bytes: number;
  up_params: number;
  up_bytes: number;
  dense_down_params: number;
}

/** Mutable progress of a run: what a checkpoint holds. */
export interface SimState {
  round: number;
  /** The algorithm's server state (its type is the algorithm's business). */
  server: unknown;
  clients: ClientStore;
  /** Clients whose state changed since the last checkpoint. */
  dirty: Set<number>;
  totals: Totals;
}

export function initialState(
  sim: Simulation,
  clients: ClientStore = new MemoryStore(sim.algorithm.client.codec),
): SimState {
  return {
    round: 0,
    server: sim.algorithm.server.initServer(sim.init),
    clients,
    dirty: new Set(),
    totals: { down_params: 0, down_bytes: 0, up_params: 0, up_bytes: 0, dense_down_params: 0 },
  };
}

/** Evaluates the global model and every client's personal model on each client's test set. */
export async function evaluateAll(
  sim: Simulation,
  st: SimState,
  executor: Executor,
  round: number,
  time_s: () => number,
  ranks?: EvalRecord['ranks'],
): Promise<{ record: EvalRecord; clients: ClientEval }> {
  const { algorithm } = sim;
  // Personal models may build on the shared part even when it is no model to evaluate on its
  // own (FedRep's body, LG-FedAvg's head).
  const download = algorithm.server.evalDownload(st.server, round);
  const rows = await executor.evaluate({
    round,
    download,
    evalGlobal: algorithm.hasGlobal && Object.keys(download.params).length > 0,
    clients: sim.clients.map((c) => c.id),
    state: (c) => st.clients.get(c),
  });
  const ce: ClientEval = { round, n: rows.map((r) => r.n) };
  const pick = (k: 'global' | 'personal') =>
    rows.every((r) => r[k])
      ? { acc: rows.map((r) => r[k]!.acc), loss: rows.map((r) => r[k]!.loss) }
      : undefined;
  const g = pick('global');
  const p = pick('personal');
  const densities = rows.flatMap((r) => (r.density === undefined ? [] : [r.density]));
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
  const record: EvalRecord = { round, time_s: time_s(), ...st.totals };
  if (g) {
    record.global = summary(g);
    ce.global = g;
  }
  if (p) {
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
  executor: Executor,
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
    const round: Totals = {
      down_params: 0,
      down_bytes: 0,
      up_params: 0,
      up_bytes: 0,
      dense_down_params: 0,
    };
    let lossSum = 0;
    const trainStart = performance.now();
    const tasks: TrainTask[] = drawn.map((client) => {
      const download = algorithm.server.download(st.server, t, client);
      round.down_params += wireParamsCount(download.params) + extraCount(download.extra);
      round.down_bytes += pack(download).byteLength;
      round.dense_down_params += denseSize;
      return { client, round: t, download, state: st.clients.get(client) };
    });
    const results: TrainOutcome[] = new Array(tasks.length);
    for await (const { index, outcome } of executor.train(tasks)) {
      results[index] = outcome;
      const client = drawn[index]!;
      yield {
        type: 'client-done',
        round: t,
        client,
        loss: outcome.upload.trainLoss,
        acc: outcome.upload.trainAcc,
      };
    }
    const diverged = results.findIndex((r) => !Number.isFinite(r.upload.trainLoss));
    if (diverged >= 0) {
      throw new TrainingDiverged(t + 1, drawn[diverged]!, results[diverged]!.upload.trainLoss, lr);
    }
    // Fold results in client order, whatever order they finished in.
    const uploads = results.map((r, i) => {
      const client = drawn[i]!;
      st.clients.set(client, r.state);
      st.dirty.add(client);
      round.up_params += wireParamsCount(r.upload.params) + extraCount(r.upload.extra);
      round.up_bytes += uploadBytes(r.upload);
      lossSum += r.upload.trainLoss;
      return { client, upload: r.upload };
    });
    const serverStart = performance.now();
    const agg = algorithm.server.aggregate(st.server, t, uploads);
    const serverEnd = performance.now();
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
      clients: drawn.length,
      train_s: (serverStart - trainStart) / 1000,
      server_s: (serverEnd - serverStart) / 1000,
    };
    if (st.round % config.evalEvery === 0 || st.round === config.rounds) {
      const evalStart = performance.now();
      const ev = await evaluateAll(sim, st, executor, st.round, now, lastRanks);
      const eval_s = (performance.now() - evalStart) / 1000;
      yield { type: 'eval', record: ev.record, clients: ev.clients, eval_s };
    }
  }
}

/**
 * Bytes of an upload without its round: the count stays that of runs made before uploads carried
 * one, so their metrics remain comparable (a download's round has always been counted).
 */
function uploadBytes(upload: Upload): number {
  const { round: _round, ...payload } = upload;
  return pack(payload).byteLength;
}

function extraCount(extra: Record<string, ParamArrays> | undefined): number {
  if (!extra) return 0;
  let n = 0;
  for (const set of Object.values(extra)) for (const a of Object.values(set)) n += a.data.length;
  return n;
}
