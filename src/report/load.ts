/**
 * Reading run directories back for reports: config.json, metrics.jsonl, clients.jsonl and
 * summary.json (see src/sim/rundir.ts). Every record is checked, and a bad file is named with its
 * line and the field that is wrong. A directory that holds run directories (what `fedslr compare`
 * writes) stands for all of them.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import type { ClientEval, EvalRecord } from '../sim/events.js';
import type { RunSummary } from '../sim/rundir.js';
import { InputError } from '../util/errors.js';
import { parseCsv } from './compare.js';

/** Bad input (a path that is not a run, a file that does not parse). */
export class ReportInputError extends InputError {
  override name = 'ReportInputError';
}

const FILES = {
  config: 'config.json',
  metrics: 'metrics.jsonl',
  clients: 'clients.jsonl',
  summary: 'summary.json',
} as const;

const num = z.number();
/** JSON has no Infinity or NaN: JSON.stringify writes a non-finite loss (a collapsed model) as null. */
const loss = z
  .number()
  .nullable()
  .transform((v) => v ?? Number.NaN);
const summarySchema = z.looseObject({
  acc: num,
  acc_weighted: num,
  acc_std: num,
  acc_p10: num,
  acc_p50: num,
  acc_p90: num,
  loss,
  nonfinite: num.optional(),
});
const evalSchema = z.looseObject({
  round: z.number().int().nonnegative(),
  time_s: num,
  global: summarySchema.optional(),
  personal: summarySchema.optional(),
  rank_ratio: num.optional(),
  ranks: z.record(z.string(), z.looseObject({ rank: num, full: num })).optional(),
  personal_density: num.optional(),
  clients_evaluated: num.optional(),
  down_params: num,
  down_bytes: num,
  up_params: num,
  up_bytes: num,
  dense_down_params: num,
});
/**
 * null in `n` and `acc` (and `loss`, read as NaN): the client did not answer that evaluation (a
 * federation leaves such clients out).
 */
const missing = num.nullable();
const perClient = z.looseObject({ acc: z.array(missing), loss: z.array(loss) });
const clientSchema = z.looseObject({
  round: z.number().int().nonnegative(),
  n: z.array(missing),
  global: perClient.optional(),
  personal: perClient.optional(),
});
const best = z.looseObject({ value: num, round: num });
const runSummarySchema = z.looseObject({
  algorithm: z.string(),
  rounds: num,
  time_s: num,
  seconds_per_round: num,
  final: evalSchema.nullable(),
  best: z.looseObject({ global_acc: best.optional(), personal_acc: best.optional() }),
});
const configSchema = z.looseObject({
  algorithm: z.looseObject({ name: z.string() }),
});

/** One run directory, read and checked. */
export interface RunData {
  dir: string;
  /** Short label: the directory name, or its path below the runs' common parent when names clash. */
  name: string;
  algorithm: string;
  /** config.json as written (the resolved config plus `fedslr: {version, backend, ...}`). */
  config: Record<string, unknown>;
  records: EvalRecord[];
  clients: ClientEval[];
  /** Absent while a run is still going or when it stopped early. */
  summary: RunSummary | null;
}

function issueText(err: z.ZodError): string {
  const iss = err.issues[0]!;
  const where = iss.path.map(String).join('.') || '(top level)';
  return `${where}: ${iss.message}`;
}

function parseJson<T>(path: string, text: string, schema: z.ZodType<T>, where = ''): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ReportInputError(`${path}${where}: not valid JSON (${(err as Error).message})`);
  }
  const r = schema.safeParse(value);
  if (!r.success) throw new ReportInputError(`${path}${where}: ${issueText(r.error)}`);
  return r.data;
}

function readJsonl<T>(path: string, schema: z.ZodType<T>): T[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const out: T[] = [];
  lines.forEach((line, i) => {
    if (line.trim()) out.push(parseJson(path, line, schema, ` line ${i + 1}`));
  });
  return out;
}

const isRunDir = (dir: string): boolean =>
  existsSync(join(dir, FILES.config)) || existsSync(join(dir, FILES.metrics));

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Run directory names in the row order of `dir`/compare.csv (its `run_dir` column), if any. */
function compareOrder(dir: string): string[] {
  const path = join(dir, 'compare.csv');
  if (!existsSync(path)) return [];
  const [header, ...rows] = parseCsv(readFileSync(path, 'utf8'));
  const col = header?.indexOf('run_dir') ?? -1;
  return col < 0 ? [] : rows.map((r) => basename(r[col] ?? ''));
}

const hasEvaluations = (dir: string): boolean => {
  const path = join(dir, FILES.metrics);
  return existsSync(path) && readFileSync(path, 'utf8').trim() !== '';
};

/** The run directories that paths stand for, and the runs of a comparison left out. */
export interface ResolvedRuns {
  dirs: string[];
  /**
   * Subdirectories of a comparison without an evaluation yet (a run in progress, or one that
   * diverged early): nothing to chart, so they are left out and the report names them.
   */
  unevaluated: string[];
}

/**
 * The run directories `paths` stand for: each path is a run directory, or a directory whose
 * subdirectories are run directories (in compare.csv's row order, else in name order; those
 * without an evaluation yet set aside). Throws naming the first path that is neither, or whose
 * runs have none evaluated.
 */
export function resolveRunDirs(paths: readonly string[]): ResolvedRuns {
  if (paths.length === 0) throw new ReportInputError('no run directory given');
  const out: string[] = [];
  const unevaluated: string[] = [];
  for (const p of paths) {
    if (!existsSync(p)) throw new ReportInputError(`'${p}' does not exist`);
    if (!isDirectory(p)) {
      throw new ReportInputError(`'${p}' is not a run directory (it is a file, not a directory)`);
    }
    if (isRunDir(p)) {
      out.push(p);
      continue;
    }
    const order = compareOrder(p);
    const rank = (name: string) => (order.includes(name) ? order.indexOf(name) : order.length);
    const children = readdirSync(p)
      .sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0))
      .map((c) => join(p, c))
      .filter((c) => isDirectory(c) && isRunDir(c));
    if (children.length === 0) {
      throw new ReportInputError(
        `'${p}' is not a run directory: it has no ${FILES.config} or ${FILES.metrics} ` +
          '(written by `fedslr run`), and no subdirectory that has them',
      );
    }
    const evaluated = children.filter(hasEvaluations);
    if (evaluated.length === 0) {
      throw new ReportInputError(
        `'${p}': none of its runs has an evaluation yet (${FILES.metrics} missing or empty)`,
      );
    }
    out.push(...evaluated);
    unevaluated.push(...children.filter((c) => !evaluated.includes(c)));
  }
  return { dirs: [...new Map(out.map((d) => [resolve(d), d])).values()], unevaluated };
}

/** Reads one run directory; `name` labels it in charts and tables. */
export function loadRun(dir: string, name = basename(resolve(dir))): RunData {
  if (!isDirectory(dir)) throw new ReportInputError(`'${dir}' is not a directory`);
  for (const f of [FILES.config, FILES.metrics] as const) {
    if (!existsSync(join(dir, f))) {
      throw new ReportInputError(
        `'${dir}' is not a complete run directory: ${f} is missing (a run directory holds ` +
          `${Object.values(FILES).join(', ')})`,
      );
    }
  }
  const configPath = join(dir, FILES.config);
  const config = parseJson(configPath, readFileSync(configPath, 'utf8'), configSchema);
  const records: EvalRecord[] = readJsonl(join(dir, FILES.metrics), evalSchema);
  if (records.length === 0) {
    throw new ReportInputError(
      `run '${dir}' has no evaluations yet (${FILES.metrics} is empty); a run records one every ` +
        `evalEvery rounds (${JSON.stringify(config['evalEvery'] ?? '?')}) and at its last round`,
    );
  }
  const clientsPath = join(dir, FILES.clients);
  const clients: ClientEval[] = existsSync(clientsPath) ? readJsonl(clientsPath, clientSchema) : [];
  for (const [i, c] of clients.entries()) {
    for (const model of ['global', 'personal'] as const) {
      const m = c[model];
      if (m && (m.acc.length !== c.n.length || m.loss.length !== c.n.length)) {
        throw new ReportInputError(
          `${clientsPath} line ${i + 1}: ${model} has ${m.acc.length} accuracies and ` +
            `${m.loss.length} losses for ${c.n.length} clients`,
        );
      }
    }
  }
  const summaryPath = join(dir, FILES.summary);
  const summary: RunSummary | null = existsSync(summaryPath)
    ? parseJson(summaryPath, readFileSync(summaryPath, 'utf8'), runSummarySchema)
    : null;
  return {
    dir,
    name,
    algorithm: summary?.algorithm ?? config.algorithm.name,
    config,
    records,
    clients,
    summary,
  };
}

/** The deepest directory that contains all of `dirs`. */
export function commonParent(dirs: readonly string[]): string {
  const parts = dirs.map((d) => dirname(resolve(d)).split(sep));
  const first = parts[0]!;
  let n = first.length;
  for (const p of parts) {
    let i = 0;
    while (i < n && i < p.length && p[i] === first[i]) i++;
    n = i;
  }
  return first.slice(0, n).join(sep) || sep;
}

/**
 * Loads several runs, labelling each by its directory name (its relative path when names clash),
 * and names the runs of a comparison left out for having no evaluation yet.
 */
export function loadRunSet(paths: readonly string[]): { runs: RunData[]; unevaluated: string[] } {
  const { dirs, unevaluated } = resolveRunDirs(paths);
  const names = dirs.map((d) => basename(resolve(d)));
  const clash = new Set(names).size !== names.length;
  const parent = commonParent(dirs);
  const runs = dirs.map((d, i) => loadRun(d, clash ? relative(parent, resolve(d)) : names[i]));
  return { runs, unevaluated };
}

/** The runs of {@link loadRunSet}. */
export const loadRuns = (paths: readonly string[]): RunData[] => loadRunSet(paths).runs;
