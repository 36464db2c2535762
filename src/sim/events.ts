/** What a simulation reports, as one flat stream of plain-data events. */
import type { Summary } from './stats.js';

/** One evaluation: the objects written to metrics.jsonl. */
export interface EvalRecord {
  round: number;
  time_s: number;
  global?: Summary;
  personal?: Summary;
  /** Kept rank / full rank over all weight matrices (algorithms with low-rank global models). */
  rank_ratio?: number;
  /** Kept rank per weight matrix. */
  ranks?: Record<string, { rank: number; full: number }>;
  /** Mean over clients of non-zeros / size of the personal component (FedSLR's P_i). */
  personal_density?: number;
  /**
   * Local results discarded as non-finite since the start of the run, summed over the clients
   * (FedSLR's `discardNonFinite`); present only when some were.
   */
  discarded?: number;
  /**
   * Clients whose metrics the summaries are over, present only when fewer than all answered
   * (a federation's evaluation leaves out clients gone or late at its deadline).
   */
  clients_evaluated?: number;
  /** Totals since the start of the run: numbers sent, and their encoded size. */
  down_params: number;
  down_bytes: number;
  up_params: number;
  up_bytes: number;
  /** What the downloads would have carried as dense float32 models. */
  dense_down_params: number;
}

/**
 * Per-client accuracies of one evaluation (for reports and later analysis), in client order;
 * null in every array for a client that did not answer the evaluation.
 */
export interface ClientEval {
  round: number;
  /** Test-set sizes. */
  n: (number | null)[];
  global?: { acc: (number | null)[]; loss: (number | null)[] };
  personal?: { acc: (number | null)[]; loss: (number | null)[] };
}

export type RunEvent =
  | { type: 'round-start'; round: number; clients: number[]; lr: number }
  | { type: 'client-done'; round: number; client: number; loss: number; acc: number }
  /** A drawn client that did not answer, or whose upload was malformed: left out of the round. */
  | { type: 'client-failed'; round: number; client: number; reason: string }
  /**
   * A draw brought `uploads` usable uploads, fewer than the `needed`: the round is drawn again
   * as `attempt` (a `round-start` with the new draw follows).
   */
  | { type: 'round-redraw'; round: number; attempt: number; uploads: number; needed: number }
  | {
      type: 'round-end';
      round: number;
      time_s: number;
      down_params: number;
      down_bytes: number;
      up_params: number;
      up_bytes: number;
      dense_down_params: number;
      train_loss: number;
      /** Clients whose uploads were aggregated this round (the drawn ones that answered). */
      clients: number;
      /** Seconds spent on the clients (downloads encoded, training, uploads folded in). */
      train_s: number;
      /** Seconds of the server's aggregation (FedSLR: mean, dual correction, SVT). */
      server_s: number;
      /** With secure aggregation: seconds of the server's part of it (in train_s). */
      secagg_s?: number;
    }
  | { type: 'eval'; record: EvalRecord; clients: ClientEval; eval_s: number };
