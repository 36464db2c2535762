/**
 * The one round loop. It draws clients from a fleet's roster, sends them the algorithm's
 * downloads, checks their uploads (a failed or malformed one is left out), aggregates the rest
 * when at least `minParticipants` answered (else draws the round again, a bounded number of
 * times), commits the clients it aggregated, and evaluates all
 * clients every `evalEvery` rounds; bytes are counted through the codec. It keeps only the server
 * state, the round, the totals and the sampling stream: client state lives behind the fleet. It
 * yields plain events; writing files is the caller's business (see rundir.ts).
 */
import type { AggregateInput, Upload, UploadSum } from '../algorithms/types.js';
import { lrAt } from '../algorithms/types.js';
import { pack, wireParamsCount } from '../codec/wire.js';
import type { ClientData } from '../data/clients.js';
import { uploadProblem } from '../protocol/checks.js';
import type { ClientFleet } from '../runtime/fleet.js';
import type { TaskParts } from '../runtime/task.js';
import type { ParamArrays } from '../tensor/params.js';
import { paramCount } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import type { RunConfig } from './config.js';
import type { ClientEval, EvalRecord, RunEvent } from './events.js';
import { drawClients } from './sampling.js';
import { type SecureCollected, secureRound } from './secure_round.js';
import { summarize } from './stats.js';

/** Key of the round loop's sampling stream: Rng.derive(seed, SAMPLING_STREAM, round). */
export const SAMPLING_STREAM = 0x73616d70;

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

/** A run's config, its clients' data, and its task's model, algorithm and initial values. */
export interface Simulation extends TaskParts {
  config: RunConfig;
  clients: readonly ClientData[];
}

/** Communication totals since the start; `dense_down_params` is what dense downloads would carry. */
export interface Totals {
  down_params: number;
  down_bytes: number;
  up_params: number;
  up_bytes: number;
  dense_down_params: number;
}

/** The round loop's own progress (with the fleet's client states, what a checkpoint holds). */
export interface SimState {
  round: number;
  /** The algorithm's server state (its type is the algorithm's business). */
  server: unknown;
  totals: Totals;
  /** Kept ranks after the last aggregation that reported them (evaluations record them). */
  ranks?: EvalRecord['ranks'];
}

export function initialState(sim: Simulation): SimState {
  return {
    round: 0,
    server: sim.algorithm.server.initServer(sim.init),
    totals: { down_params: 0, down_bytes: 0, up_params: 0, up_bytes: 0, dense_down_params: 0 },
  };
}

/** Fewer drawn clients answered with a usable upload than the round needs, however often drawn. */
export class TooFewParticipants extends Error {
  constructor(
    /** The round (from 1). */
    readonly round: number,
    /** Usable uploads of the last draw. */
    readonly answered: number,
    readonly needed: number,
    /** Why each missing client of the last draw is missing. */
    readonly failures: ReadonlyMap<number, string>,
    /** Draws made for the round (the first and each redraw). */
    readonly draws = 1,
    /** Why no further draw was made, when not because the redraws ran out. */
    readonly stopped?: string,
  ) {
    const why = [...failures].map(([c, f]) => `client ${c}: ${f}`).join('; ');
    const tries = draws > 1 ? `, after ${draws} draws` : '';
    super(
      `round ${round}: only ${answered} drawn client(s) answered with a usable upload, ${needed} needed${tries}${why ? ` (${why})` : ''}${stopped ? `; ${stopped}` : ''}`,
    );
    this.name = 'TooFewParticipants';
  }
}

/** Redraws of a round that got too few usable uploads, unless `LoopOptions.redraws` says. */
export const DEFAULT_REDRAWS = 3;

export interface LoopOptions {
  /** The fewest usable uploads a round may aggregate (default 1). */
  minParticipants?: number;
  /**
   * How often a round with fewer usable uploads is drawn again before the run fails (default
   * DEFAULT_REDRAWS). The simulator's fleets always answer; a network fleet's clients may not.
   */
  redraws?: number;
  /**
   * Evaluate after `st.round` rounds before the first round: a resumed run whose checkpoint was
   * written after that round's commit and before its evaluation.
   */
  evaluateFirst?: boolean;
}

/**
 * Evaluates the global model and every client's personal model on each client's test set. The
 * summaries are over the clients that answered and have a test set; a client that did not answer
 * is null in the per-client arrays, and `clients_evaluated` says how many answered when not all.
 */
export async function evaluateAll(
  sim: Simulation,
  st: SimState,
  fleet: ClientFleet,
  round: number,
  time_s: () => number,
  ranks?: EvalRecord['ranks'],
): Promise<{ record: EvalRecord; clients: ClientEval }> {
  const { algorithm } = sim;
  // Personal models may build on the shared part even when it is no model to evaluate on its
  // own (FedRep's body, LG-FedAvg's head).
  const download = algorithm.server.evalDownload(st.server, round);
  const rows = await fleet.evaluate(
    round,
    download,
    algorithm.hasGlobal && Object.keys(download.params).length > 0,
    sim.clients.map((c) => c.id),
  );
  const answered = rows.flatMap((r) => (r ? [r] : []));
  const ce: ClientEval = { round, n: rows.map((r) => r?.n ?? null) };
  const pick = (k: 'global' | 'personal') =>
    answered.length > 0 && answered.every((r) => r[k])
      ? {
          acc: rows.map((r) => r?.[k]?.acc ?? null),
          loss: rows.map((r) => r?.[k]?.loss ?? null),
        }
      : undefined;
  const g = pick('global');
  const p = pick('personal');
  const densities = answered.flatMap((r) => (r.density === undefined ? [] : [r.density]));
  const withTest = rows.flatMap((r) => (r && r.n > 0 ? [r] : []));
  const summary = (k: 'global' | 'personal') =>
    summarize(
      withTest.map((r) => r[k]!.acc),
      withTest.map((r) => r[k]!.loss),
      withTest.map((r) => r.n),
    );
  const record: EvalRecord = { round, time_s: time_s(), ...st.totals };
  if (g) {
    record.global = summary('global');
    ce.global = g;
  }
  if (p) {
    record.personal = summary('personal');
    ce.personal = p;
  }
  if (ranks && Object.keys(ranks).length) {
    const vals = Object.values(ranks);
    record.rank_ratio = vals.reduce((s, r) => s + r.rank, 0) / vals.reduce((s, r) => s + r.full, 0);
    record.ranks = ranks;
  }
  if (densities.length)
    record.personal_density = densities.reduce((a, b) => a + b, 0) / densities.length;
  const discarded = answered.reduce((sum, r) => sum + (r.discarded ?? 0), 0);
  if (discarded > 0) record.discarded = discarded;
  if (answered.length < rows.length) record.clients_evaluated = answered.length;
  return { record, clients: ce };
}

/** What one draw of a round brought back. */
/**
 * What one draw of a round got: the clients whose uploads it aggregates (in drawn order), the sum
 * of their training losses, why each other drawn client is not among them, and either their
 * uploads or, in a secure round, only their sum.
 */
type Draw = {
  drawn: number[];
  accepted: number[];
  lossSum: number;
  failures: Map<number, string>;
} & ({ inputs: AggregateInput[] } | Omit<SecureCollected, 'accepted' | 'lossSum' | 'failures'>);

/**
 * The clients of a round's draw number `attempt` among `roster` (ascending ids). The first draw
 * is the simulator's, from the round's sampling stream; a redraw has its own stream (seed,
 * round, attempt) and draws `count` clients from fewer when fewer are left (none from none).
 */
export function drawRound(
  sampling: RunConfig['clients']['sampling'],
  roster: readonly number[],
  seed: number,
  round: number,
  attempt: number,
): number[] {
  if (attempt === 0)
    return drawClients(sampling, roster.length, Rng.derive(seed, SAMPLING_STREAM, round)).map(
      (i) => roster[i]!,
    );
  if (roster.length === 0) return [];
  const rule =
    sampling.kind === 'count' ? { ...sampling, k: Math.min(sampling.k, roster.length) } : sampling;
  return drawClients(rule, roster.length, Rng.derive(seed, SAMPLING_STREAM, round, attempt)).map(
    (i) => roster[i]!,
  );
}

/**
 * Runs rounds `st.round` .. `config.rounds - 1`, updating `st` in place and yielding events.
 * `now()` gives seconds since the start of the run (so a resumed run can keep counting).
 *
 * A round whose draw brings fewer than `minParticipants` usable uploads is drawn again, up to
 * `redraws` times, among the fleet's roster less the clients that failed an earlier draw of the
 * round (a `round-redraw` event, then a new `round-start`); each draw is a new attempt for the
 * fleet, so clients drop what they trained for an earlier one. Then the run fails with
 * TooFewParticipants.
 */
export async function* simulate(
  sim: Simulation,
  st: SimState,
  now: () => number,
  fleet: ClientFleet,
  options: LoopOptions = {},
): AsyncGenerator<RunEvent> {
  const { config, algorithm } = sim;
  const minParticipants = options.minParticipants ?? 1;
  if (!(Number.isInteger(minParticipants) && minParticipants >= 1))
    throw new Error(`minParticipants: expected an integer of at least 1, got ${minParticipants}`);
  const redraws = options.redraws ?? DEFAULT_REDRAWS;
  if (!(Number.isInteger(redraws) && redraws >= 0))
    throw new Error(`redraws: expected an integer of at least 0, got ${redraws}`);
  const evaluate = async function* (): AsyncGenerator<RunEvent> {
    const evalStart = performance.now();
    const ev = await evaluateAll(sim, st, fleet, st.round, now, st.ranks);
    const eval_s = (performance.now() - evalStart) / 1000;
    yield { type: 'eval', record: ev.record, clients: ev.clients, eval_s };
  };
  if (options.evaluateFirst) yield* evaluate();
  while (st.round < config.rounds) {
    const t = st.round;
    const lr = lrAt(config.train, t);
    const round: Totals = {
      down_params: 0,
      down_bytes: 0,
      up_params: 0,
      up_bytes: 0,
      dense_down_params: 0,
    };
    const trainStart = performance.now();
    /** Clients that failed an earlier draw of this round: not drawn again in it. */
    const failedBefore = new Set<number>();
    let draw: Draw;
    for (let attempt = 0; ; attempt++) {
      const roster = fleet.roster().filter((c) => !failedBefore.has(c));
      const drawn = drawRound(config.clients.sampling, roster, config.seed, t, attempt);
      yield { type: 'round-start', round: t, clients: drawn, lr };
      draw = yield* trainDraw(sim, st.server, fleet, t, drawn, round, lr);
      if (draw.accepted.length >= minParticipants) break;
      const tooFew = (stopped?: string) =>
        new TooFewParticipants(
          t + 1,
          draw.accepted.length,
          minParticipants,
          draw.failures,
          attempt + 1,
          stopped,
        );
      if (attempt === redraws) throw tooFew();
      for (const c of draw.failures.keys()) failedBefore.add(c);
      const left = fleet.roster().filter((c) => !failedBefore.has(c)).length;
      if (left < minParticipants)
        throw tooFew(`${left} connected client(s) left that did not fail this round`);
      yield {
        type: 'round-redraw',
        round: t,
        attempt: attempt + 1,
        uploads: draw.accepted.length,
        needed: minParticipants,
      };
    }
    const { accepted, lossSum } = draw;
    // The uploads aggregated count (a secure round counted its messages as they went).
    if ('inputs' in draw)
      for (const { upload } of draw.inputs) {
        round.up_params += wireParamsCount(upload.params) + extraCount(upload.extra);
        round.up_bytes += uploadBytes(upload);
      }
    const serverStart = performance.now();
    const agg =
      'inputs' in draw
        ? await algorithm.server.aggregate(st.server, t, draw.inputs)
        : await aggregateSum(algorithm, st.server, t, draw.total);
    const serverEnd = performance.now();
    // The state after the round before the commit: a network fleet checkpoints it before it
    // sends the commit (see FleetDurability in experiment.ts).
    st.server = agg.server;
    if (agg.stats.ranks) st.ranks = agg.stats.ranks;
    for (const k of Object.keys(round) as (keyof typeof round)[]) st.totals[k] += round[k];
    st.round = t + 1;
    await fleet.commit(t, accepted);
    yield {
      type: 'round-end',
      round: t,
      time_s: now(),
      ...round,
      train_loss: lossSum / accepted.length,
      clients: accepted.length,
      train_s: (serverStart - trainStart) / 1000,
      server_s: (serverEnd - serverStart) / 1000,
      ...('secagg_s' in draw ? { secagg_s: draw.secagg_s } : {}),
    };
    if (isEvalRound(config, st.round)) yield* evaluate();
  }
}

/** Whether the loop evaluates after `round` rounds. */
export function isEvalRound(config: RunConfig, round: number): boolean {
  return round % config.evalEvery === 0 || round === config.rounds;
}

/**
 * Sends `drawn` their downloads of `server` for round `t` (counted into `round`) and takes their
 * replies: a usable upload, or a failure (no answer, a malformed upload). A client whose
 * training loss is not finite stops the run.
 */
async function* trainDraw(
  sim: Simulation,
  server: unknown,
  fleet: ClientFleet,
  t: number,
  drawn: readonly number[],
  round: Totals,
  lr: number,
): AsyncGenerator<RunEvent, Draw> {
  const { algorithm } = sim;
  const { spec } = sim.model;
  const denseSize = algorithm.hasGlobal ? paramCount(spec) : 0;
  const jobs = drawn.map((client) => {
    const download = algorithm.server.download(server, t, client);
    round.down_params += wireParamsCount(download.params) + extraCount(download.extra);
    round.down_bytes += pack(download).byteLength;
    round.dense_down_params += denseSize;
    return { client, download };
  });
  const secure = sim.task.secureAggregation;
  if (secure)
    return {
      drawn: [...drawn],
      ...(yield* secureRound(fleet, sim.config.seed, spec, t, lr, jobs, secure, round)),
    };
  const sent = new Map(jobs.map((j) => [j.client, Object.keys(j.download.params)]));
  const uploads = new Map<number, Upload>();
  const failures = new Map<number, string>();
  const diverged = new Map<number, number>();
  for await (const reply of fleet.train(t, jobs)) {
    const { client } = reply;
    const names = sent.get(client);
    // A reply for a client not drawn, or a second one, is ignored.
    if (!names || uploads.has(client) || failures.has(client) || diverged.has(client)) continue;
    if (!('upload' in reply)) {
      const reason = 'failure' in reply ? reply.failure : 'answered with secure-aggregation keys';
      failures.set(client, reason);
      yield { type: 'client-failed', round: t, client, reason };
      continue;
    }
    const { upload } = reply;
    if (!Number.isFinite(upload.trainLoss)) {
      diverged.set(client, upload.trainLoss);
      yield {
        type: 'client-done',
        round: t,
        client,
        loss: upload.trainLoss,
        acc: upload.trainAcc,
      };
      continue;
    }
    const problem = uploadProblem(upload, t, names, spec);
    if (problem) {
      failures.set(client, `malformed upload: ${problem}`);
      yield { type: 'client-failed', round: t, client, reason: `malformed upload: ${problem}` };
      continue;
    }
    uploads.set(client, upload);
    yield { type: 'client-done', round: t, client, loss: upload.trainLoss, acc: upload.trainAcc };
  }
  // The first diverged client in drawn order, whatever order they finished in.
  const first = drawn.find((c) => diverged.has(c));
  if (first !== undefined) throw new TrainingDiverged(t + 1, first, diverged.get(first)!, lr);
  for (const client of drawn)
    if (!uploads.has(client) && !failures.has(client)) failures.set(client, 'no answer');
  // Fold uploads in in drawn order, whatever order they arrived in.
  const accepted = drawn.filter((c) => uploads.has(c));
  const inputs = accepted.map((client) => ({ client, upload: uploads.get(client)! }));
  const lossSum = inputs.reduce((sum, { upload }) => sum + upload.trainLoss, 0);
  return { drawn: [...drawn], accepted, lossSum, inputs, failures };
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

/** The server part's aggregation from a secure round's sum (sum-only algorithms have one). */
function aggregateSum(
  algorithm: Simulation['algorithm'],
  server: unknown,
  round: number,
  total: UploadSum,
): ReturnType<Simulation['algorithm']['server']['aggregate']> {
  if (!algorithm.server.aggregateSum)
    throw new Error(`${algorithm.name}: its server cannot aggregate from the sum of the uploads`);
  return algorithm.server.aggregateSum(server, round, total);
}
