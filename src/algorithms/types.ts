/**
 * The interface every algorithm implements: a server part and a client part that never know
 * whether they run in one process, in worker threads or across a network. Everything that crosses
 * between them (downloads, uploads) and all state at rest is plain data: typed arrays, numbers.
 */
import type { Model } from '../models/index.js';
import type { ParamArrays } from '../tensor/params.js';
import type { Rng } from '../tensor/rng.js';
import type { LastBatch } from '../train/batches.js';
import type { DataTensors } from '../train/loop.js';

/** Wire form of a parameter set (dense, low-rank factors or sparse per tensor); see codec/. */
export type { WireParams, WireTensor } from '../codec/wire.js';

import type { WireParams } from '../codec/wire.js';

/** Local-training settings shared by all algorithms (FEDSLR.md defaults). */
export interface TrainSettings {
  /** lr_t = lr * lrDecay^t for 0-based round t. */
  lr: number;
  lrDecay: number;
  weightDecay: number;
  batchSize: number;
  /** Local epochs (FedSLR's stage 1; most baselines' only stage). */
  epochs: number;
  /** What a short last batch of an epoch becomes (train/batches.ts; default keep). */
  lastBatch?: LastBatch;
}

export interface AlgorithmContext {
  model: Model;
  numClients: number;
  train: TrainSettings;
}

/** What the server sends to a drawn client. */
export interface Download {
  round: number;
  params: WireParams;
  /** Extra tensors an algorithm sends (e.g. SCAFFOLD's server control variate), dense. */
  extra?: Record<string, ParamArrays>;
  scalars?: Record<string, number>;
}

/** What a client sends back after local training. */
export interface Upload {
  params: WireParams;
  /** Extra tensors (e.g. control-variate deltas). */
  extra?: Record<string, ParamArrays>;
  numSamples: number;
  /** Training statistics of the client's last local epoch. */
  trainLoss: number;
  trainAcc: number;
}

/** A client's state between rounds: named tensors and numbers, as plain data. */
export interface ClientState {
  tensors: Record<string, ParamArrays>;
  scalars?: Record<string, number>;
}

/** The server's state between rounds. */
export interface ServerState {
  /** The global model (absent for algorithms without one, e.g. purely local training). */
  global?: ParamArrays;
  tensors: Record<string, ParamArrays>;
  scalars?: Record<string, number>;
}

/** Client-side context for one round: its data, a stream of random numbers, the round's lr. */
export interface ClientRun {
  client: number;
  round: number;
  lr: number;
  data: DataTensors;
  rng: Rng;
}

export interface AggregateInput {
  client: number;
  upload: Upload;
}

/** Per-round statistics an algorithm reports about its global model. */
export interface ServerStats {
  /** Kept rank per weight matrix (low-rank algorithms). */
  ranks?: Record<string, { rank: number; full: number }>;
}

export interface Algorithm {
  readonly name: string;
  /** True when the algorithm has a shared global model to evaluate. */
  readonly hasGlobal: boolean;
  /** True when clients have personal models to evaluate. */
  readonly hasPersonal: boolean;
  /**
   * How many model-sized tensor sets each client keeps between rounds (for memory estimates;
   * default 1 when the algorithm has personal models, else 0).
   */
  readonly clientStateSets?: number;

  initServer(init: ParamArrays): ServerState;
  download(server: ServerState, round: number, client: number): Download;
  aggregate(
    server: ServerState,
    round: number,
    uploads: readonly AggregateInput[],
  ): { server: ServerState; stats: ServerStats };

  /** State of a client that has never been drawn (may depend only on the shared init). */
  initClient(client: number, init: ParamArrays): ClientState;
  clientTrain(
    down: Download,
    state: ClientState,
    run: ClientRun,
  ): { upload: Upload; state: ClientState };
  /** The model client `client` is evaluated with; null when the algorithm has no personal model. */
  personalModel(
    state: ClientState,
    global: ParamArrays | undefined,
    run: ClientRun,
  ): ParamArrays | null;
  /** Non-zeros / size of the client's sparse personal component (algorithms that have one). */
  personalDensity?(state: ClientState): number;
}

export const lrAt = (t: TrainSettings, round: number): number => t.lr * t.lrDecay ** round;
