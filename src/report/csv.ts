/** The report's series as CSV files (RFC 4180: comma-separated, quoted when needed, header row). */
import { join } from 'node:path';
import { writeFileAtomic } from '../util/fs.js';
import type { Series } from './series.js';

type Cell = string | number | boolean | null;

function cell(v: Cell): string {
  if (v === null) return '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** CSV text of `rows` with the given columns (in that order). */
export function toCsv<T extends object>(
  rows: readonly T[],
  columns: readonly (keyof T & string)[],
): string {
  const lines = [columns.join(',')];
  for (const r of rows) lines.push(columns.map((c) => cell(r[c] as Cell)).join(','));
  return `${lines.join('\n')}\n`;
}

/** File name and text of each series; every series is written, empty ones as a header only. */
export function seriesCsv(s: Series): Record<string, string> {
  return {
    'accuracy.csv': toCsv(s.accuracy, [
      'run',
      'algorithm',
      'round',
      'time_s',
      'model',
      'acc',
      'acc_weighted',
      'acc_std',
      'acc_p10',
      'acc_p50',
      'acc_p90',
      'loss',
    ]),
    'client_accuracy.csv': toCsv(s.clients, [
      'run',
      'round',
      'model',
      'client',
      'n',
      'acc',
      'loss',
    ]),
    'ranks.csv': toCsv(s.ranks, ['run', 'round', 'matrix', 'rank', 'full']),
    'density.csv': toCsv(s.density, ['run', 'round', 'personal_density']),
    'communication.csv': toCsv(s.communication, [
      'run',
      'round',
      'down_params',
      'down_bytes',
      'up_params',
      'up_bytes',
      'dense_down_params',
      'dense_down_bytes',
    ]),
    'summary.csv': toCsv(s.summary, [
      'run',
      'algorithm',
      'dir',
      'finished',
      'rounds',
      'time_s',
      'seconds_per_round',
      'final_round',
      'final_global_acc',
      'final_personal_acc',
      'best_global_acc',
      'best_global_round',
      'best_personal_acc',
      'best_personal_round',
      'rank_ratio',
      'personal_density',
      'down_bytes',
      'up_bytes',
      'dense_down_bytes',
    ]),
  };
}

/** Writes every series into `dir` (created if needed); returns the paths written. */
export function writeCsv(s: Series, dir: string): string[] {
  return Object.entries(seriesCsv(s)).map(([name, text]) => {
    const path = join(dir, name);
    writeFileAtomic(path, text);
    return path;
  });
}
