/**
 * The series a report shows, as tidy rows (one observation per row): the charts are drawn from
 * them and `--csv` writes them unchanged, so the files hold exactly what the charts show.
 */
import type { RunData } from './load.js';

export type Model = 'global' | 'personal';
const MODELS: readonly Model[] = ['global', 'personal'];

export interface AccuracyRow {
  run: string;
  algorithm: string;
  round: number;
  time_s: number;
  model: Model;
  acc: number;
  acc_weighted: number;
  acc_std: number;
  acc_p10: number;
  acc_p50: number;
  acc_p90: number;
  loss: number;
}

export interface ClientRow {
  run: string;
  round: number;
  model: Model;
  client: number;
  /** The client's test-set size. */
  n: number;
  acc: number;
  loss: number;
}

export interface RankRow {
  run: string;
  round: number;
  matrix: string;
  rank: number;
  full: number;
}

export interface DensityRow {
  run: string;
  round: number;
  personal_density: number;
}

export interface CommRow {
  run: string;
  round: number;
  down_params: number;
  down_bytes: number;
  up_params: number;
  up_bytes: number;
  dense_down_params: number;
  /** dense_down_params as float32: 4 bytes each. */
  dense_down_bytes: number;
}

export interface SummaryRow {
  run: string;
  algorithm: string;
  dir: string;
  finished: boolean;
  rounds: number;
  time_s: number;
  seconds_per_round: number | null;
  final_round: number;
  final_global_acc: number | null;
  final_personal_acc: number | null;
  best_global_acc: number | null;
  best_global_round: number | null;
  best_personal_acc: number | null;
  best_personal_round: number | null;
  rank_ratio: number | null;
  personal_density: number | null;
  down_bytes: number;
  up_bytes: number;
  dense_down_bytes: number;
}

export interface Series {
  accuracy: AccuracyRow[];
  /** Every evaluation's per-client accuracies (the report's distribution chart uses the last). */
  clients: ClientRow[];
  ranks: RankRow[];
  density: DensityRow[];
  communication: CommRow[];
  summary: SummaryRow[];
}

function bestOf(run: RunData, model: Model): { value: number; round: number } | null {
  const fromSummary = run.summary?.best[model === 'global' ? 'global_acc' : 'personal_acc'];
  if (fromSummary) return fromSummary;
  let b: { value: number; round: number } | null = null;
  for (const r of run.records) {
    const v = r[model]?.acc;
    if (v !== undefined && (!b || v > b.value)) b = { value: v, round: r.round };
  }
  return b;
}

export function buildSeries(runs: readonly RunData[]): Series {
  const s: Series = {
    accuracy: [],
    clients: [],
    ranks: [],
    density: [],
    communication: [],
    summary: [],
  };
  for (const run of runs) {
    for (const r of run.records) {
      for (const model of MODELS) {
        const m = r[model];
        if (!m) continue;
        s.accuracy.push({
          run: run.name,
          algorithm: run.algorithm,
          round: r.round,
          time_s: r.time_s,
          model,
          acc: m.acc,
          acc_weighted: m.acc_weighted,
          acc_std: m.acc_std,
          acc_p10: m.acc_p10,
          acc_p50: m.acc_p50,
          acc_p90: m.acc_p90,
          loss: m.loss,
        });
      }
      for (const [matrix, v] of Object.entries(r.ranks ?? {})) {
        s.ranks.push({ run: run.name, round: r.round, matrix, rank: v.rank, full: v.full });
      }
      if (r.personal_density !== undefined) {
        s.density.push({ run: run.name, round: r.round, personal_density: r.personal_density });
      }
      s.communication.push({
        run: run.name,
        round: r.round,
        down_params: r.down_params,
        down_bytes: r.down_bytes,
        up_params: r.up_params,
        up_bytes: r.up_bytes,
        dense_down_params: r.dense_down_params,
        dense_down_bytes: r.dense_down_params * 4,
      });
    }
    for (const c of run.clients) {
      for (const model of MODELS) {
        const m = c[model];
        if (!m) continue;
        m.acc.forEach((acc, client) => {
          const n = c.n[client];
          // null: the client did not answer this evaluation (a federation's).
          if (acc === null || n === null || n === undefined) return;
          s.clients.push({
            run: run.name,
            round: c.round,
            model,
            client,
            n,
            acc,
            loss: m.loss[client] ?? Number.NaN,
          });
        });
      }
    }
    const last = run.records[run.records.length - 1]!;
    const bg = bestOf(run, 'global');
    const bp = bestOf(run, 'personal');
    s.summary.push({
      run: run.name,
      algorithm: run.algorithm,
      dir: run.dir,
      finished: run.summary !== null,
      rounds: run.summary?.rounds ?? last.round,
      time_s: run.summary?.time_s ?? last.time_s,
      seconds_per_round: run.summary?.seconds_per_round ?? null,
      final_round: last.round,
      final_global_acc: last.global?.acc ?? null,
      final_personal_acc: last.personal?.acc ?? null,
      best_global_acc: bg?.value ?? null,
      best_global_round: bg?.round ?? null,
      best_personal_acc: bp?.value ?? null,
      best_personal_round: bp?.round ?? null,
      rank_ratio: last.rank_ratio ?? null,
      personal_density: last.personal_density ?? null,
      down_bytes: last.down_bytes,
      up_bytes: last.up_bytes,
      dense_down_bytes: last.dense_down_params * 4,
    });
  }
  return s;
}

/** Per-client rows of each run's last evaluation that has per-client data. */
export function lastClientRows(s: Series): ClientRow[] {
  const lastRound = new Map<string, number>();
  for (const r of s.clients) lastRound.set(r.run, Math.max(lastRound.get(r.run) ?? -1, r.round));
  return s.clients.filter((r) => r.round === lastRound.get(r.run));
}
