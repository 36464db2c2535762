/**
 * The interface every algorithm implements: a server part and a client part that never know
 * whether they run in one process, in worker threads or across a network. Everything that crosses
 * between them (downloads, uploads) is plain data: typed arrays, numbers. Each part keeps its own
 * typed state; a codec per part turns it into the plain `StateRecord` layout that checkpoints and
 * client stores write (codec/state.ts), so nothing outside the algorithm knows its state's layout.
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

/** What the server sends to a drawn client (or to every client for an evaluation). */
export interface Download {
  round: number;
  params: WireParams;
  /** Extra tensors an algorithm sends (e.g. SCAFFOLD's server control variate), dense. */
  extra?: Record<string, ParamArrays>;
  scalars?: Record<string, number>;
}

/** What a client sends back after local training. */
export interface Upload {
  /** The round (0-based) of the download it answers. */
  round: number;
  params: WireParams;
  /** Extra tensors (e.g. control-variate deltas). */
  extra?: Record<string, ParamArrays>;
  numSamples: number;
  /** Training statistics of the client's last local epoch. */
  trainLoss: number;
  trainAcc: number;
}

/**
 * The plain layout any state is stored in: optionally a global parameter set, named tensor sets
 * and named numbers. Algorithms map their typed state to and from it (`StateCodec`).
 */
export interface StateRecord {
  global?: ParamArrays;
  tensors: Record<string, ParamArrays>;
  scalars?: Record<string, number>;
}

/** Maps one part's typed state to the stored layout and back (checking what it reads). */
export interface StateCodec<T> {
  toRecord(state: T): StateRecord;
  /** `where` names the source (file, checkpoint) in errors. */
  fromRecord(record: StateRecord, where: string): T;
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

/**
 * The sum of the participants' uploaded parameters (every tensor they were sent) and how many
 * they are: all that the server of a sum-only algorithm needs, and all that secure aggregation
 * lets it learn.
 */
export interface UploadSum {
  count: number;
  params: ParamArrays;
}

/** Per-round statistics an algorithm reports about its global model. */
export interface ServerStats {
  /** Kept rank per weight matrix (low-rank algorithms). */
  ranks?: Record<string, { rank: number; full: number }>;
}

/** The server part: what it keeps, what it sends, how it folds uploads in. */
export interface ServerPart<S> {
  readonly codec: StateCodec<S>;
  initServer(init: ParamArrays): S;
  download(server: S, round: number, client: number): Download;
  /**
   * What every client is sent for an evaluation after `round` rounds: the global model (or the
   * shared part personal models build on) in the form clients receive it; empty params when there
   * is nothing shared.
   */
  evalDownload(server: S, round: number): Download;
  /** Asynchronous: the server step reads tensors back asynchronously (WebGPU has no sync read). */
  aggregate(
    server: S,
    round: number,
    uploads: readonly AggregateInput[],
  ): Promise<{ server: S; stats: ServerStats }>;
  /**
   * `aggregate` from the uploads' sum and count alone (algorithms whose descriptor declares them
   * sum-only); equal to it up to float rounding.
   */
  aggregateSum?(
    server: S,
    round: number,
    total: UploadSum,
  ): Promise<{ server: S; stats: ServerStats }>;
  /** The server's shared parameters as it holds them (for exports); undefined when none. */
  global(server: S): ParamArrays | undefined;
}

/** The result of one client's local training: the upload and the client's next state. */
export interface ClientTrainResult<C> {
  upload: Upload;
  state: C;
}

/** The client part: its state, its local training, and the models it is evaluated with. */
export interface ClientPart<C> {
  readonly codec: StateCodec<C>;
  /** State of a client that has never been drawn (may depend only on the shared init). */
  initClient(client: number, init: ParamArrays): C;
  /** Local training from a download; asynchronous so a host can interleave other work. */
  train(down: Download, state: C, run: ClientRun): Promise<ClientTrainResult<C>>;
  /**
   * The model the client is evaluated with, built from its state and `sent`: the decoded
   * evaluation download (what it was sent, never the server's in-memory model; undefined when
   * nothing is shared). Null when the algorithm has no personal model. May be asynchronous:
   * building it may train (fine-tuning), and tensors are read back asynchronously (WebGPU).
   */
  personalModel(
    state: C,
    sent: ParamArrays | undefined,
    run: ClientRun,
  ): ParamArrays | null | Promise<ParamArrays | null>;
  /** Non-zeros / size of the client's sparse personal component (algorithms that have one). */
  personalDensity?(state: C): number;
  /** How many of the client's local results were discarded as non-finite so far (FedSLR's
   * `discardNonFinite`). */
  discardedStages?(state: C): number;
}

export interface Algorithm<S = unknown, C = unknown> {
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
  readonly server: ServerPart<S>;
  readonly client: ClientPart<C>;
}

export const lrAt = (t: TrainSettings, round: number): number => t.lr * t.lrDecay ** round;
