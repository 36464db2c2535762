/**
 * `fedslr compare`: several algorithms on the identical split, seed, model and schedule (only the
 * config's `algorithm` section changes), one run directory each, and one table of the numbers a
 * FedSLR study reports: compare.md (readable) and compare.csv (for tools). Both, and compare.json
 * (the config, the entries and the finished rows), are rewritten atomically after every run, so an
 * interrupted comparison keeps the rows it finished and `resumeCompare` can continue it: finished
 * runs are kept, an interrupted run continues from its newest checkpoint, the rest start. A run
 * whose training diverges gets a row from its last evaluation, marked as diverged, and the
 * comparison goes on.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { algorithmSchema } from '../algorithms/registry.js';
import { InputError } from '../util/errors.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/fs.js';
import { listCheckpoints } from './checkpoint.js';
import {
  type AlgorithmConfig,
  ConfigError,
  describeIssues,
  parseConfig,
  type RunConfig,
} from './config.js';
import {
  type ExperimentEvent,
  refuseChangedConfig,
  resumeExperiment,
  runExperiment,
} from './experiment.js';
import { applySet } from './load_config.js';
import { withDirLock } from './lock.js';
import { checkFreshDir, type RunSummary, readRecords, summarizeRun } from './rundir.js';
import { TrainingDiverged } from './simulate.js';
import { nonfiniteModels } from './stats.js';

/** One algorithm of a comparison: its label (also its run directory's name) and its config. */
export interface CompareEntry {
  label: string;
  algorithm: AlgorithmConfig;
}

/** Removes keys set to null (`key=~`), at any depth: the option is back to its default. */
function dropNulls(o: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(o)) {
    if (v === null) delete o[k];
    else if (typeof v === 'object' && !Array.isArray(v)) dropNulls(v as Record<string, unknown>);
  }
}

/**
 * Parses `fedslr,fedavg,fedslr:ablation=sparse-only,ditto:lambda=1`: comma-separated entries,
 * each an algorithm name and optional `:key=value` options (values read as YAML scalars; a key
 * may be a dot path into an option, `fedslr:svt.fraction=0.4`; `key=~` unsets an option). An
 * entry starts from the config's own algorithm section when it names the same algorithm, else
 * from that algorithm's defaults.
 */
export function parseAlgorithmList(list: string, base: AlgorithmConfig): CompareEntry[] {
  const items = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new ConfigError('--algorithms: expected at least one algorithm');
  const seen = new Set<string>();
  return items.map((label) => {
    const [name, ...opts] = label.split(':');
    let raw: Record<string, unknown> = name === base.name ? structuredClone(base) : { name };
    for (const o of opts) {
      if (o.indexOf('=') <= 0)
        throw new ConfigError(`--algorithms entry '${label}': expected name:key=value, got '${o}'`);
      // Through the whole config, so that a tag's switch (svt.mode) drops what the new tag does
      // not take, as `--set algorithm.svt.mode=...` does.
      raw = applySet({ algorithm: raw }, `algorithm.${o}`)['algorithm'] as Record<string, unknown>;
    }
    dropNulls(raw);
    const r = algorithmSchema.safeParse(raw);
    if (!r.success) {
      const why = describeIssues(r.error.issues, { algorithm: raw }, ['algorithm'])
        .map((l) => l.replace(/^algorithm(\.|: )/, ''))
        .join('; ');
      throw new ConfigError(`--algorithms entry '${label}' is not valid: ${why}`);
    }
    if (seen.has(label)) throw new ConfigError(`--algorithms: '${label}' is listed twice`);
    seen.add(label);
    return { label, algorithm: r.data };
  });
}

/**
 * Crosses an `--algorithms` list with `--grid` axes (`algorithm.svt.fraction=0.2,0.4`, each a
 * key under `algorithm.` and comma-separated values): every entry becomes one entry per point of
 * the cartesian product of the axes that are valid options for it (tried with each axis's first
 * value that is not `~`, all axes together or this one alone), labelled with the point's `:key=value` options, e.g. `fedslr:svt.fraction=0.2`. An
 * entry no axis applies to stays as it is (a dense reference); an axis that applies to no entry
 * is an error. Returns the expanded list, for `parseAlgorithmList`.
 */
export function expandGrid(list: string, grid: readonly string[], base: AlgorithmConfig): string {
  const axes = grid.map((g) => {
    const eq = g.indexOf('=');
    const key = g.slice(0, eq);
    if (eq <= 0 || !key.startsWith('algorithm.') || key === 'algorithm.name')
      throw new ConfigError(
        `--grid '${g}': expected algorithm.<option>=v1,v2,... (a comparison varies only the algorithm section)`,
      );
    const values = g
      .slice(eq + 1)
      .split(',')
      .map((v) => v.trim());
    if (values.some((v) => v === ''))
      throw new ConfigError(`--grid '${g}': expected comma-separated values`);
    // The value that tells whether the axis fits an entry: its first that sets something.
    const probe = values.find((v) => v !== '~' && v !== 'null') ?? values[0]!;
    return { key: key.slice('algorithm.'.length), values, probe, used: false };
  });
  const items = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const valid = (label: string) => {
    try {
      parseAlgorithmList(label, base);
      return true;
    } catch {
      return false;
    }
  };
  const out = items.flatMap((item) => {
    const allAxes = valid([item, ...axes.map((a) => `${a.key}=${a.probe}`)].join(':'));
    let labels = [item];
    for (const axis of axes) {
      if (!allAxes && !valid(`${item}:${axis.key}=${axis.probe}`)) continue;
      axis.used = true;
      labels = labels.flatMap((l) => axis.values.map((v) => `${l}:${axis.key}=${v}`));
    }
    return labels;
  });
  const unused = axes.find((a) => !a.used);
  if (unused)
    throw new ConfigError(
      `--grid algorithm.${unused.key}: not a valid option of any entry of --algorithms (${items.join(', ')})`,
    );
  return out.join(',');
}

/** One row of the comparison table; undefined where an algorithm has no such number. */
export interface CompareRow {
  label: string;
  algorithm: string;
  rounds: number;
  global_acc_final?: number;
  global_acc_best?: number;
  personal_acc_final?: number;
  personal_acc_best?: number;
  personal_acc_p10?: number;
  global_acc_p10?: number;
  /** Parameters one client received in the last round (low-rank factors as sent, plus extras). */
  down_params_per_client?: number;
  /** Mean non-zero share of the personal components (FedSLR's P_i). */
  personal_density?: number;
  down_bytes: number;
  up_bytes: number;
  /** Downlink parameters over the run / what dense models would have taken. */
  down_vs_dense?: number;
  time_s: number;
  run_dir: string;
  /** Set when the run's training diverged: the round, and the numbers are its last evaluation's. */
  diverged_round?: number;
  diverged_reason?: string;
  /** At the end, what the last evaluation says of models whose loss is not finite (stats.ts). */
  nonfinite_models?: string;
}

/**
 * What the clients of the last finished round downloaded, from the simulator's round events (a
 * round that diverged started but did not end, and does not count).
 */
class LastRound {
  clients = 0;
  down_params = 0;
  private drawn = 0;

  on(e: ExperimentEvent): void {
    if (e.type === 'round-start') this.drawn = e.clients.length;
    if (e.type === 'round-end') {
      this.clients = this.drawn;
      this.down_params = e.down_params;
    }
  }
}

/**
 * A row from a finished run: accuracies from its summary, communication totals from its last
 * evaluation (which is always at the last round), the last round's download when it ran here.
 */
function rowOf(
  entry: CompareEntry,
  summary: RunSummary,
  last: LastRound | undefined,
  dir: string,
): CompareRow {
  const f = summary.final;
  const nonfinite = f && nonfiniteModels(f);
  return {
    label: entry.label,
    algorithm: summary.algorithm,
    rounds: summary.rounds,
    global_acc_final: f?.global?.acc,
    global_acc_best: summary.best.global_acc?.value,
    personal_acc_final: f?.personal?.acc,
    personal_acc_best: summary.best.personal_acc?.value,
    personal_acc_p10: f?.personal?.acc_p10,
    global_acc_p10: f?.global?.acc_p10,
    down_params_per_client: last?.clients ? last.down_params / last.clients : undefined,
    personal_density: f?.personal_density,
    down_bytes: f?.down_bytes ?? 0,
    up_bytes: f?.up_bytes ?? 0,
    down_vs_dense: f?.dense_down_params ? f.down_params / f.dense_down_params : undefined,
    time_s: summary.time_s,
    run_dir: dir,
    ...(nonfinite ? { nonfinite_models: nonfinite } : {}),
  };
}

const COLUMNS: (keyof CompareRow)[] = [
  'label',
  'algorithm',
  'rounds',
  'global_acc_final',
  'global_acc_best',
  'personal_acc_final',
  'personal_acc_best',
  'personal_acc_p10',
  'global_acc_p10',
  'down_params_per_client',
  'personal_density',
  'down_bytes',
  'up_bytes',
  'down_vs_dense',
  'time_s',
  'run_dir',
  'diverged_round',
  'diverged_reason',
  'nonfinite_models',
];

const csvField = (v: unknown): string => {
  if (v === undefined) return '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
};

export function compareCsv(rows: readonly CompareRow[]): string {
  return [COLUMNS, ...rows.map((r) => COLUMNS.map((c) => r[c]))]
    .map((cells) => cells.map(csvField).join(','))
    .join('\n')
    .concat('\n');
}

const pct = (x: number | undefined) => (x === undefined ? '–' : (100 * x).toFixed(2));
const mb = (b: number) => (b / 1e6).toFixed(1);
const count = (x: number | undefined) =>
  x === undefined ? '–' : Math.round(x).toLocaleString('en-US');

export function compareMarkdown(rows: readonly CompareRow[], config: RunConfig): string {
  const s = config.clients.sampling;
  const header = [
    '| algorithm | global final | global best | personal final | personal best | personal p10 | params sent / client | personal density | downlink MB | uplink MB | downlink vs dense | wall s |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  const body = rows.map(
    (r) =>
      `| ${r.label.replaceAll('|', '\\|')}${r.diverged_round ? ` (diverged in round ${r.diverged_round})` : ''} | ${pct(r.global_acc_final)} | ${pct(r.global_acc_best)} | ${pct(r.personal_acc_final)} | ${pct(r.personal_acc_best)} | ${pct(r.personal_acc_p10)} | ${count(r.down_params_per_client)} | ${pct(r.personal_density)} | ${mb(r.down_bytes)} | ${mb(r.up_bytes)} | ${pct(r.down_vs_dense)} | ${r.time_s.toFixed(0)} |`,
  );
  return [
    '# fedslr compare',
    '',
    `${config.data.dataset}, ${config.model.name}${config.model.hidden ? ` [${config.model.hidden.join(', ')}]` : ''}, ${config.clients.count} clients (${s.kind === 'fraction' ? `q = ${s.q}` : `${s.k} per round`}), ${config.rounds} rounds, seed ${config.seed}, partition ${config.data.partition.kind}. Accuracies in %: unweighted mean over clients of each client's test set, final and best over evaluations; p10 is the 10th percentile over clients at the end. "params sent / client" is what one client downloaded in the last round (low-rank factors as sent, plus extras such as SCAFFOLD's control variate); "downlink vs dense" compares the whole run's downlink with dense float32 models.`,
    '',
    ...header,
    ...body,
    '',
    ...rows
      .filter((r) => r.diverged_round)
      .flatMap((r) => [
        `${r.label}: ${r.diverged_reason} Its row shows its last evaluation, at round ${r.rounds}.`,
        '',
      ]),
    ...rows
      .filter((r) => r.nonfinite_models)
      .flatMap((r) => [`${r.label}: at the end, ${r.nonfinite_models}.`, '']),
  ].join('\n');
}

export interface CompareStart {
  entry: CompareEntry;
  /** Position of the entry in the comparison, from 0, and how many entries there are. */
  index: number;
  count: number;
  runDir: string;
  rounds: number;
  /**
   * Seconds the entries without a row (this one included) would take at the mean wall time of
   * the runs finished so far (diverged ones left out); undefined before the first finishes.
   */
  estimate_s?: number;
}

export interface CompareOptions {
  outDir: string;
  /** Called before each algorithm's run starts or continues. */
  onStart?: (run: CompareStart) => void;
  /** Called when an algorithm's training diverged; the comparison then goes on with the next. */
  onDiverged?: (run: CompareStart, error: TrainingDiverged) => void;
  onEvent?: (e: ExperimentEvent) => void;
}

/**
 * A label as a directory name: an unset option (`key=~`) reads `key_unset`; letters, digits, '.',
 * '_', '-' kept, anything else '_'.
 */
export const runDirName = (label: string): string =>
  label.replace(/=~(?=:|$)/g, '=unset').replace(/[^A-Za-z0-9._-]/g, '_');

/** compare.json: what `resumeCompare` needs to continue a comparison. */
export const COMPARE_STATE = 'compare.json';

interface CompareState {
  config: RunConfig;
  entries: CompareEntry[];
  rows: CompareRow[];
}

export async function runCompare(
  config: RunConfig,
  entries: readonly CompareEntry[],
  opts: CompareOptions,
): Promise<CompareRow[]> {
  checkRunDirs(entries);
  return withDirLock(
    opts.outDir,
    () => {
      checkFreshDir(opts.outDir);
      return compareLoop({ config, entries: [...entries], rows: [] }, [], opts);
    },
    'comparison directory',
  );
}

/**
 * Continues the comparison in `outDir`. Only `rounds` and `runtime` may be changed by `sets`
 * (`--set` overrides); a larger `rounds` continues the finished runs too. `add` (an
 * `--algorithms` list) appends the entries the comparison does not have yet, so a study can grow
 * without rerunning what it finished; an entry it has must be listed unchanged.
 */
export async function resumeCompare(
  outDir: string,
  sets: readonly string[],
  opts: Omit<CompareOptions, 'outDir'>,
  add?: string,
): Promise<CompareRow[]> {
  const path = join(outDir, COMPARE_STATE);
  if (!existsSync(path)) {
    throw new InputError(`'${outDir}' is not a comparison directory (no ${COMPARE_STATE})`);
  }
  const saved = JSON.parse(readFileSync(path, 'utf8')) as CompareState;
  let raw = saved.config as unknown as Record<string, unknown>;
  for (const s of sets) raw = applySet(raw, s);
  const config = parseConfig(raw, `config of '${outDir}' with --set`);
  refuseChangedConfig(saved.config, config, outDir);
  // A diverged run is not retried: it would diverge again at the same round.
  const rows = saved.rows.filter((r) => r.rounds === config.rounds || r.diverged_round);
  const entries = add === undefined ? saved.entries : addEntries(saved.entries, add, config);
  return withDirLock(
    outDir,
    () => compareLoop({ ...saved, config, entries, rows }, sets, { ...opts, outDir }),
    'comparison directory',
  );
}

function addEntries(entries: CompareEntry[], list: string, config: RunConfig): CompareEntry[] {
  const added = parseAlgorithmList(list, config.algorithm).filter((entry) => {
    const had = entries.find((e) => e.label === entry.label);
    if (had && JSON.stringify(had.algorithm) !== JSON.stringify(entry.algorithm)) {
      throw new ConfigError(
        `--algorithms: '${entry.label}' is already in the comparison with other options; give the new entry another label (e.g. add an option)`,
      );
    }
    return !had;
  });
  const all = [...entries, ...added];
  checkRunDirs(all);
  return all;
}

function checkRunDirs(entries: readonly CompareEntry[]): void {
  const dirs = entries.map((e) => runDirName(e.label));
  const dup = dirs.find((d, i) => dirs.indexOf(d) !== i);
  if (dup) throw new ConfigError(`--algorithms: two entries share the run directory name '${dup}'`);
}

async function compareLoop(
  state: CompareState,
  sets: readonly string[],
  opts: CompareOptions,
): Promise<CompareRow[]> {
  const { config, entries } = state;
  const save = () => {
    writeJsonAtomic(join(opts.outDir, COMPARE_STATE), state);
    writeFileAtomic(join(opts.outDir, 'compare.csv'), compareCsv(state.rows));
    writeFileAtomic(join(opts.outDir, 'compare.md'), compareMarkdown(state.rows, config));
  };
  save();
  for (const [i, entry] of entries.entries()) {
    if (state.rows.some((r) => r.label === entry.label)) continue;
    const dir = join(opts.outDir, runDirName(entry.label));
    const finished = state.rows.filter((r) => r.diverged_round === undefined);
    const left = entries.length - state.rows.length;
    const start: CompareStart = {
      entry,
      index: i,
      count: entries.length,
      runDir: dir,
      rounds: config.rounds,
      estimate_s: finished.length
        ? (left * finished.reduce((s, r) => s + r.time_s, 0)) / finished.length
        : undefined,
    };
    opts.onStart?.(start);
    const last = new LastRound();
    const onEvent = (e: ExperimentEvent) => {
      last.on(e);
      opts.onEvent?.(e);
    };
    // A run that died before its first checkpoint has nothing worth keeping.
    const resumable = listCheckpoints(dir).length > 0;
    if (!resumable) rmSync(dir, { recursive: true, force: true });
    let summary: RunSummary;
    let diverged: TrainingDiverged | undefined;
    try {
      summary = resumable
        ? await resumeExperiment(dir, sets, onEvent)
        : await runExperiment({ ...config, algorithm: entry.algorithm }, { outDir: dir, onEvent });
    } catch (err) {
      if (!(err instanceof TrainingDiverged)) throw err;
      diverged = err;
      opts.onDiverged?.(start, err);
      const records = readRecords(dir);
      const lastEval = records[records.length - 1];
      summary = summarizeRun(
        entry.algorithm.name,
        records,
        lastEval?.round ?? 0,
        lastEval?.time_s ?? 0,
      );
    }
    const row: CompareRow = rowOf(entry, summary, last.clients ? last : undefined, dir);
    if (diverged) {
      row.diverged_round = diverged.round;
      row.diverged_reason = `${diverged.reason}.`;
    }
    state.rows = entries.flatMap((e) =>
      e === entry ? [row] : state.rows.filter((r) => r.label === e.label),
    );
    save();
  }
  return state.rows;
}
