/**
 * The seam between the round loop and the clients. The loop (sim/simulate.ts) keeps the server's
 * state, the round, the totals and the sampling stream; everything about clients (their data,
 * their state stores, where and how they train) is behind a fleet. The simulator's fleets (in
 * process, worker threads) always answer; a network fleet may not, so training replies are
 * uploads or failures, and a client's new state stays pending until `commit` says its upload was
 * aggregated (two-phase: a dropped upload never leaves client and server state disagreeing).
 */
import type { Download, Upload } from '../algorithms/types.js';
import type {
  SecureKeys,
  SecureRound,
  SecureToHost,
  SecureToServer,
} from '../protocol/messages.js';

/** One client's evaluation: test-set size, and accuracy/loss of the global and personal model. */
export interface ClientEvalRow {
  n: number;
  global?: { acc: number; loss: number };
  personal?: { acc: number; loss: number };
  density?: number;
  /** Local results discarded as non-finite so far (only when some were). */
  discarded?: number;
}

/** One drawn client's work order for a round. */
export interface TrainJob {
  client: number;
  download: Download;
  /** In a secure round: the client answers with its keys, not its upload. */
  secure?: SecureRound;
}

/** A drawn client's answer: its upload (its keys in a secure round), or why there is none. */
export type TrainReply =
  | { client: number; upload: Upload }
  | { client: number; keys: SecureKeys }
  | { client: number; failure: string };

/** A client's answer in a later stage of a secure round, or why there is none. */
export type StageReply =
  | { client: number; answer: SecureToServer }
  | { client: number; failure: string };

export interface ClientFleet {
  /** The clients that can be drawn, ascending. */
  roster(): readonly number[];
  /** Trains the jobs' clients for `round`; yields each reply as it arrives. */
  train(round: number, jobs: readonly TrainJob[]): AsyncIterable<TrainReply>;
  /**
   * Sends each message of a secure round's stage to its client's host and yields the answers as
   * they arrive (a failure for each client that does not answer); the fleet gives each message
   * its own attempt id of the round. A fleet without it cannot aggregate securely.
   */
  secureStage?(round: number, messages: readonly SecureToHost[]): AsyncIterable<StageReply>;
  /**
   * Makes the round's pending states of `accepted` clients their committed states and drops the
   * other pending ones (clients whose uploads were not aggregated keep their last committed state).
   */
  commit(round: number, accepted: readonly number[]): Promise<void>;
  /**
   * Evaluates `clients` after `round` rounds with what every client is sent for the evaluation;
   * rows in the order of `clients`, `undefined` for a client that did not answer (the simulator's
   * fleets always answer; a network fleet leaves out clients gone or late at its deadline).
   */
  evaluate(
    round: number,
    download: Download,
    evalGlobal: boolean,
    clients: readonly number[],
  ): Promise<(ClientEvalRow | undefined)[]>;
  close(): Promise<void>;
}
