/**
 * A run directory: config.json (the fully resolved config, package version, backend),
 * metrics.jsonl (one EvalRecord per evaluation), clients.jsonl (per-client accuracies of each
 * evaluation) and summary.json (final and best values). Every file is rewritten atomically, so a
 * crash leaves the previous complete version, never a torn one.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../util/errors.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/fs.js';
import type { RunConfig } from './config.js';
import type { ClientEval, EvalRecord } from './events.js';
import { LOCK_FILE } from './lock.js';

export const FILES = {
  config: 'config.json',
  metrics: 'metrics.jsonl',
  clients: 'clients.jsonl',
  summary: 'summary.json',
} as const;

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  return String(pkg.version);
}

export interface Best {
  value: number;
  round: number;
}

export interface RunSummary {
  algorithm: string;
  rounds: number;
  time_s: number;
  seconds_per_round: number;
  final: EvalRecord | null;
  best: { global_acc?: Best; personal_acc?: Best };
}

export function summarizeRun(
  algorithm: string,
  records: readonly EvalRecord[],
  rounds: number,
  time_s: number,
): RunSummary {
  const best = (pick: (r: EvalRecord) => number | undefined): Best | undefined => {
    let b: Best | undefined;
    for (const r of records) {
      const v = pick(r);
      if (v !== undefined && (!b || v > b.value)) b = { value: v, round: r.round };
    }
    return b;
  };
  const summary: RunSummary = {
    algorithm,
    rounds,
    time_s,
    seconds_per_round: rounds ? time_s / rounds : 0,
    final: records[records.length - 1] ?? null,
    best: {},
  };
  const g = best((r) => r.global?.acc);
  const p = best((r) => r.personal?.acc);
  if (g) summary.best.global_acc = g;
  if (p) summary.best.personal_acc = p;
  return summary;
}

/** The evaluations a run directory's metrics.jsonl holds, as RunDir writes them (none if absent). */
export function readRecords(dir: string): EvalRecord[] {
  const path = join(dir, FILES.metrics);
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as EvalRecord);
}

/** Refuses to write into a directory that already holds a run or other files. */
export function checkFreshDir(dir: string): void {
  if (!existsSync(dir)) return;
  const entries = readdirSync(dir).filter((n) => n !== LOCK_FILE);
  if (entries.length > 0) {
    throw new InputError(
      `output directory '${dir}' is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}); choose another --out or remove it`,
    );
  }
}

export class RunDir {
  readonly records: EvalRecord[] = [];
  readonly clientEvals: ClientEval[] = [];

  constructor(readonly dir: string) {}

  writeConfig(config: RunConfig, extra: Record<string, unknown>): void {
    writeJsonAtomic(join(this.dir, FILES.config), {
      ...config,
      fedslr: { version: packageVersion(), ...extra },
    });
  }

  addEval(record: EvalRecord, clients: ClientEval): void {
    this.records.push(record);
    this.clientEvals.push(clients);
    this.writeMetrics();
  }

  /** Replaces the evaluations with a checkpoint's (dropping any written after it). */
  restore(records: readonly EvalRecord[], clients: readonly ClientEval[]): void {
    this.records.splice(0, this.records.length, ...records);
    this.clientEvals.splice(0, this.clientEvals.length, ...clients);
    this.writeMetrics();
  }

  private writeMetrics(): void {
    writeFileAtomic(
      join(this.dir, FILES.metrics),
      this.records.map((r) => `${JSON.stringify(r)}\n`).join(''),
    );
    writeFileAtomic(
      join(this.dir, FILES.clients),
      this.clientEvals.map((r) => `${JSON.stringify(r)}\n`).join(''),
    );
  }

  writeSummary(summary: RunSummary): void {
    writeJsonAtomic(join(this.dir, FILES.summary), summary);
  }
}
