/**
 * The work done for one client: local training for a round, and evaluation. Plain values in and
 * out, so the same functions run in the main thread and in worker threads.
 */
import type { ClientTrainResult, Download } from '../algorithms/types.js';
import { lrAt } from '../algorithms/types.js';
import { decodeParams } from '../codec/params.js';
import type { ClientEvalRow } from '../runtime/fleet.js';
import type { ParamArrays, Params } from '../tensor/params.js';
import { disposeParams, fromArrays } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { disposeData, evaluate, toTensors } from '../train/loop.js';
import type { Simulation } from './simulate.js';

/** Keys of a client's random streams: Rng.derive(seed, STREAM, round, client). */
export const CLIENT_STREAM = 0x636c6e74;
export const EVAL_STREAM = 0x6576616c;

export interface TrainTask {
  client: number;
  round: number;
  download: Download;
  /** The client's state; undefined for a client never drawn (its initial state is made where it runs). */
  state: unknown;
}

/** A client's state, or its initial state when it has none yet. */
export function stateOrInit(sim: Simulation, client: number, state: unknown): unknown {
  return state ?? sim.algorithm.client.initClient(client, sim.init);
}

export type TrainOutcome = ClientTrainResult<unknown>;

export async function trainClient(sim: Simulation, task: TrainTask): Promise<TrainOutcome> {
  const c = sim.clients[task.client]!;
  const data = toTensors(c.train.x, c.train.y, c.shape);
  try {
    return await sim.algorithm.client.train(
      task.download,
      stateOrInit(sim, task.client, task.state),
      {
        client: task.client,
        round: task.round,
        lr: lrAt(sim.config.train, task.round),
        data,
        rng: Rng.derive(sim.config.seed, CLIENT_STREAM, task.round, task.client),
      },
    );
  } finally {
    disposeData(data);
  }
}

/** What a client decodes an evaluation download to: undefined when nothing is shared. */
export function sentParams(sim: Simulation, download: Download): ParamArrays | undefined {
  return Object.keys(download.params).length
    ? decodeParams(download.params, sim.model.spec)
    : undefined;
}

/**
 * Client `client`'s personal model after `round` rounds, from its state and `sent`, what it was
 * sent for the evaluation (null when the algorithm has no personal model).
 */
export async function personalModelOf(
  sim: Simulation,
  client: number,
  round: number,
  sent: ParamArrays | undefined,
  state: unknown,
): Promise<ParamArrays | null> {
  const c = sim.clients[client]!;
  const train = toTensors(c.train.x, c.train.y, c.shape);
  try {
    return await sim.algorithm.client.personalModel(state, sent, {
      client,
      round,
      lr: lrAt(sim.config.train, round),
      data: train,
      rng: Rng.derive(sim.config.seed, EVAL_STREAM, round, client),
    });
  } finally {
    disposeData(train);
  }
}

/**
 * Evaluates client `client` at `round` (rounds completed). `sent` is the decoded evaluation
 * download (the shared part personal models build on); `globalTensors` is it as tensors when it
 * is a global model to evaluate on its own.
 */
export async function evalClient(
  sim: Simulation,
  client: number,
  round: number,
  sent: ParamArrays | undefined,
  globalTensors: Params | undefined,
  stored: unknown,
): Promise<ClientEvalRow> {
  const { algorithm, model } = sim;
  const state = stateOrInit(sim, client, stored);
  const c = sim.clients[client]!;
  const test = toTensors(c.test.x, c.test.y, c.shape);
  const row: ClientEvalRow = { n: c.test.size };
  try {
    if (globalTensors) {
      const r = await evaluate(model, globalTensors, test);
      row.global = { acc: r.acc, loss: r.loss };
    }
    if (algorithm.hasPersonal) {
      const pm = await personalModelOf(sim, client, round, sent, state);
      if (pm) {
        const pt = fromArrays(pm);
        try {
          const r = await evaluate(model, pt, test);
          row.personal = { acc: r.acc, loss: r.loss };
        } finally {
          disposeParams(pt);
        }
      }
      if (algorithm.client.personalDensity) row.density = algorithm.client.personalDensity(state);
    }
  } finally {
    disposeData(test);
  }
  return row;
}
