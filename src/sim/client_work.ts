/**
 * The work done for one client: local training for a round, and evaluation. Plain values in and
 * out, so the same functions run in the main thread and in worker threads.
 */
import type { ClientState, Download, Upload } from '../algorithms/types.js';
import { lrAt } from '../algorithms/types.js';
import type { ParamArrays, Params } from '../tensor/params.js';
import { disposeParams, fromArrays } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { disposeData, evaluate, toTensors } from '../train/loop.js';
import type { Simulation } from './simulate.js';

/** Keys of the random streams: Rng.derive(seed, STREAM, round[, client]). */
export const SAMPLING_STREAM = 0x73616d70;
export const CLIENT_STREAM = 0x636c6e74;
export const EVAL_STREAM = 0x6576616c;

export interface TrainTask {
  client: number;
  round: number;
  download: Download;
  /** The client's state; undefined for a client never drawn (its initial state is made where it runs). */
  state: ClientState | undefined;
}

/** A client's state, or its initial state when it has none yet. */
export function stateOrInit(
  sim: Simulation,
  client: number,
  state: ClientState | undefined,
): ClientState {
  return state ?? sim.algorithm.initClient(client, sim.init);
}

export interface TrainOutcome {
  upload: Upload;
  state: ClientState;
}

export function trainClient(sim: Simulation, task: TrainTask): TrainOutcome {
  const c = sim.clients[task.client]!;
  const data = toTensors(c.train.x, c.train.y, c.shape);
  try {
    return sim.algorithm.clientTrain(task.download, stateOrInit(sim, task.client, task.state), {
      client: task.client,
      round: task.round,
      lr: lrAt(sim.config.train, task.round),
      data,
      rng: Rng.derive(sim.config.seed, CLIENT_STREAM, task.round, task.client),
    });
  } finally {
    disposeData(data);
  }
}

/** Client `client`'s personal model after `round` rounds (null when the algorithm has none). */
export function personalModelOf(
  sim: Simulation,
  client: number,
  round: number,
  global: ParamArrays | undefined,
  state: ClientState,
): ParamArrays | null {
  const c = sim.clients[client]!;
  const train = toTensors(c.train.x, c.train.y, c.shape);
  try {
    return sim.algorithm.personalModel(state, global, {
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

/** One client's evaluation: test-set size, and accuracy/loss of the global and personal model. */
export interface ClientEvalRow {
  n: number;
  global?: { acc: number; loss: number };
  personal?: { acc: number; loss: number };
  density?: number;
}

/**
 * Evaluates client `client` at `round` (rounds completed). `globalTensors` is the global model as
 * tensors when the algorithm has one to evaluate; `global` is the shared part as arrays, which
 * personal models may build on.
 */
export function evalClient(
  sim: Simulation,
  client: number,
  round: number,
  global: ParamArrays | undefined,
  globalTensors: Params | undefined,
  stored: ClientState | undefined,
): ClientEvalRow {
  const { algorithm, model } = sim;
  const state = stateOrInit(sim, client, stored);
  const c = sim.clients[client]!;
  const test = toTensors(c.test.x, c.test.y, c.shape);
  const row: ClientEvalRow = { n: c.test.size };
  try {
    if (globalTensors) {
      const r = evaluate(model, globalTensors, test);
      row.global = { acc: r.acc, loss: r.loss };
    }
    if (algorithm.hasPersonal) {
      const pm = personalModelOf(sim, client, round, global, state);
      if (pm) {
        const pt = fromArrays(pm);
        const r = evaluate(model, pt, test);
        disposeParams(pt);
        row.personal = { acc: r.acc, loss: r.loss };
      }
      if (algorithm.personalDensity) row.density = algorithm.personalDensity(state);
    }
  } finally {
    disposeData(test);
  }
  return row;
}
