/**
 * One experiment end to end: set up, simulate, write the run directory, checkpoint at every
 * evaluation (and every `runtime.checkpointEvery` rounds, and at the end); and resuming one from
 * its newest good checkpoint.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { decodeClientState } from '../codec/state.js';
import type { ClientFleet } from '../runtime/fleet.js';
import { paramCount } from '../tensor/params.js';
import { InputError } from '../util/errors.js';
import { type CheckpointMeta, latestCheckpoint, writeCheckpoint } from './checkpoint.js';
import { ConfigError, parseConfig, type RunConfig } from './config.js';
import type { RunEvent } from './events.js';
import { applySet } from './load_config.js';
import { withDirLock } from './lock.js';
import { createFleet } from './pool.js';
import { checkFreshDir, FILES, RunDir, type RunSummary, summarizeRun } from './rundir.js';
import { type SetupInfo, setup } from './setup.js';
import { initialState, isEvalRound, type SimState, type Simulation, simulate } from './simulate.js';
import { type ClientStore, chooseStore, DiskStore, MemoryStore } from './store.js';

/** Extra events the experiment driver adds to the simulator's. */
export type ExperimentEvent =
  | RunEvent
  | { type: 'checkpoint'; round: number; dir: string }
  | { type: 'resumed'; round: number; rounds: number; from: string; skipped: string[] }
  | { type: 'store'; kind: 'memory' | 'disk'; estimatedBytes: number }
  /**
   * Where the dataset was read from; `requested` is the config's `data.dir` when the files were
   * not in it (nor in its dataset subfolder) and were found in a default location instead.
   */
  | { type: 'data'; dataset: string; source: string; requested?: string }
  /** Who trains and evaluates the clients: 1 = the main thread, more = that many worker threads. */
  | { type: 'fleet'; workers: number };

export interface ExperimentOptions {
  outDir: string;
  onEvent?: (e: ExperimentEvent) => void;
  /**
   * The clients, when they are not the simulator's (a network federation): made once the run is
   * set up. Their states are their own, so checkpoints hold only the server's side, and the fleet
   * checkpoints each round itself, through `durable.persist`, before it sends the round's commit.
   */
  fleet?: (sim: Simulation, durable: FleetDurability) => Promise<ClientFleet>;
  /** The fewest usable uploads a round may aggregate (default 1). */
  minParticipants?: number;
  /** How often a round with too few usable uploads is drawn again (default DEFAULT_REDRAWS). */
  redraws?: number;
}

/**
 * How a network fleet keeps its side of a run consistent with its clients across a server
 * restart. Clients commit a round's state when its commit reaches them; the server's state of
 * that round must then be on disk, or a restarted server would run the round again on clients
 * that already committed it (a client's dual pi_i counted twice, the server's dual sum once).
 * So the fleet calls `persist` with its own record (the commits it owes clients, this one
 * included) before it sends a commit: a checkpoint of the round loop's state after the round,
 * written atomically. A server killed before that resumes from the round before, whose commit
 * no client got, and runs the round again (clients drop what they trained for it); one killed
 * after resumes from this checkpoint and sends the commit again to each client aggregated in it
 * whose hello says it did not apply it. The checkpoint precedes the round's evaluation, which a
 * resumed run makes first (`evaluateFirst`).
 */
export interface FleetDurability {
  /** The fleet's record in the checkpoint the run resumes from (undefined: a fresh run). */
  saved: unknown;
  /** Checkpoints the run (the loop already at the round after the commit) with `record`. */
  persist(record: unknown): void;
}

/** How `drive` gets its clients, how many uploads a round needs and how often it redraws. */
export type FleetOptions = Pick<ExperimentOptions, 'fleet' | 'minParticipants' | 'redraws'>;

export const STORE_DIR = 'client-store';

/** A served run's log (`fedslr serve`); its clients' states are with the clients, not here. */
export const FEDERATION_LOG = 'federation.jsonl';

function makeStore(
  sim: Simulation,
  outDir: string,
  onEvent?: (e: ExperimentEvent) => void,
): ClientStore {
  const a = sim.algorithm;
  const sets = a.clientStateSets ?? (a.hasPersonal ? 1 : 0);
  const estimatedBytes = sim.config.clients.count * sets * paramCount(sim.model.spec) * 4;
  const rt = sim.config.runtime;
  const kind = chooseStore(rt.store, estimatedBytes, rt.memoryBudget);
  onEvent?.({ type: 'store', kind, estimatedBytes });
  const codec = sim.algorithm.client.codec;
  return kind === 'memory' ? new MemoryStore(codec) : new DiskStore(join(outDir, STORE_DIR), codec);
}

function configNotes(info: SetupInfo): Record<string, unknown> {
  return {
    backend: info.backend,
    threads: info.threads,
    trainSamples: info.trainSamples,
    testSamples: info.testSamples,
    dataSource: info.dataSource,
  };
}

function dataEvent(config: RunConfig, info: SetupInfo): ExperimentEvent {
  const { dataset, dir } = config.data;
  const inDir =
    dir === undefined ||
    info.dataSource === resolve(dir) ||
    info.dataSource.startsWith(`${resolve(dir)}${sep}`);
  return {
    type: 'data',
    dataset,
    source: info.dataSource,
    ...(inDir ? {} : { requested: dir }),
  };
}

async function drive(
  sim: Simulation,
  st: SimState,
  store: ClientStore,
  dir: RunDir,
  t0: number,
  previous: { dir: string; meta: CheckpointMeta } | undefined,
  onEvent?: (e: ExperimentEvent) => void,
  options: FleetOptions = {},
): Promise<RunSummary> {
  const start = performance.now();
  const now = () => t0 + (performance.now() - start) / 1000;
  const { config } = sim;
  let prev = previous;
  let fleetRecord = previous?.meta.fleet;
  const simFleet = options.fleet ? undefined : await createFleet(sim, store);
  const states = simFleet ?? { store, dirty: new Set<number>() };
  const checkpoint = () => {
    prev = writeCheckpoint(
      dir.dir,
      {
        round: st.round,
        time_s: now(),
        totals: st.totals,
        config,
        server: sim.algorithm.server.codec.toRecord(st.server),
        store: states.store,
        dirty: states.dirty,
        records: dir.records,
        clientEvals: dir.clientEvals,
        ranks: st.ranks,
        fleet: fleetRecord,
      },
      config.runtime.keepCheckpoints,
      prev,
    );
    states.dirty.clear();
    onEvent?.({ type: 'checkpoint', round: st.round, dir: prev.dir });
  };
  const durable: FleetDurability = {
    saved: fleetRecord,
    persist: (record) => {
      fleetRecord = record;
      checkpoint();
    },
  };
  const fleet: ClientFleet = simFleet ?? (await options.fleet!(sim, durable));
  if (simFleet) onEvent?.({ type: 'fleet', workers: simFleet.workers });
  const loop = {
    minParticipants: options.minParticipants,
    redraws: options.redraws,
    // Resumed from a checkpoint written after a round's commit and before its evaluation.
    evaluateFirst:
      st.round > 0 &&
      isEvalRound(config, st.round) &&
      !dir.records.some((r) => r.round === st.round),
  };
  try {
    for await (const e of simulate(sim, st, now, fleet, loop)) {
      if (e.type === 'eval') dir.addEval(e.record, e.clients);
      onEvent?.(e);
      const every = config.runtime.checkpointEvery;
      // A network fleet checkpoints each round before its commit (FleetDurability), and never
      // writes a round's checkpoint again: replacing it is not atomic, and the previous one is
      // a round its clients have already committed.
      if (
        simFleet &&
        (e.type === 'eval' || (e.type === 'round-end' && every > 0 && st.round % every === 0))
      )
        checkpoint();
    }
  } finally {
    await fleet.close();
  }
  if (!prev || prev.meta.round !== st.round) checkpoint();
  const summary = summarizeRun(sim.algorithm.name, dir.records, st.round, now());
  dir.writeSummary(summary);
  return summary;
}

/**
 * Runs `config` into the run directory `opts.outDir` (created if needed, must be empty), holding
 * its lock (see lock.ts) until the run ends or fails.
 */
export async function runExperiment(
  config: RunConfig,
  opts: ExperimentOptions,
): Promise<RunSummary> {
  return withDirLock(opts.outDir, () => {
    checkFreshDir(opts.outDir);
    return startRun(config, opts);
  });
}

async function startRun(config: RunConfig, opts: ExperimentOptions): Promise<RunSummary> {
  // A served run's server reads no data: its clients hold it.
  const { sim, info } = await setup(config, opts.fleet ? 'served' : undefined);
  if (!opts.fleet) opts.onEvent?.(dataEvent(config, info));
  const dir = new RunDir(opts.outDir);
  dir.writeConfig(config, configNotes(info));
  const store = makeStore(sim, opts.outDir, opts.onEvent);
  return drive(sim, initialState(sim), store, dir, 0, undefined, opts.onEvent, opts);
}

/**
 * Refuses to continue `dir`, saved with config `saved`, under `config` when anything but `rounds`
 * (which may grow) and `runtime` (which does not change results) differs. The saved config is
 * parsed again first, so an option added since it was written counts at its default (which
 * reproduces what the run did) instead of as a difference.
 */
export function refuseChangedConfig(saved: RunConfig, config: RunConfig, dir: string): void {
  const comparable = (c: RunConfig) => ({ ...c, rounds: 0, runtime: null });
  const changed = diffKeys(
    comparable(parseConfig(saved, `saved config of '${dir}'`)),
    comparable(config),
  );
  if (changed.length) {
    throw new ConfigError(
      `cannot resume '${dir}' with a different config (only rounds and runtime may change); differing keys: ${changed.join(', ')}`,
    );
  }
}

/** Keys (dot paths) where two plain values differ. */
function diffKeys(a: unknown, b: unknown, path = ''): string[] {
  const isObj = (x: unknown) => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (isObj(a) && isObj(b)) {
    const keys = new Set([...Object.keys(a as object), ...Object.keys(b as object)]);
    return [...keys].flatMap((k) =>
      diffKeys(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        path ? `${path}.${k}` : k,
      ),
    );
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [path || '(root)'];
}

/** Reads a run directory's config (as written by runExperiment), without fedslr's own notes. */
export function readRunConfig(runDir: string): Record<string, unknown> {
  const path = join(runDir, FILES.config);
  if (!existsSync(path)) {
    throw new InputError(`'${runDir}' is not a run directory (no ${FILES.config})`);
  }
  const { fedslr: _notes, ...raw } = JSON.parse(readFileSync(path, 'utf8'));
  return raw;
}

/**
 * Continues a run from its newest good checkpoint. Only `rounds` and `runtime` may differ from the
 * original config (`sets` are `--set` overrides); the result is bitwise the same as an uninterrupted run.
 */
export async function resumeExperiment(
  runDir: string,
  sets: readonly string[],
  onEvent?: (e: ExperimentEvent) => void,
  options: FleetOptions = {},
): Promise<RunSummary> {
  readRunConfig(runDir); // refuses a directory that is not a run before locking (creating) it
  return withDirLock(runDir, () => resume(runDir, sets, onEvent, options));
}

async function resume(
  runDir: string,
  sets: readonly string[],
  onEvent: ((e: ExperimentEvent) => void) | undefined,
  options: FleetOptions,
): Promise<RunSummary> {
  if (!options.fleet && existsSync(join(runDir, FEDERATION_LOG)))
    throw new InputError(
      `'${runDir}' is a served run (it has ${FEDERATION_LOG}); its clients hold their states: continue it with fedslr serve --resume`,
    );
  let raw = readRunConfig(runDir);
  for (const s of sets) raw = applySet(raw, s);
  const config = parseConfig(raw, `config of '${runDir}'${sets.length ? ' with --set' : ''}`);
  const ck = latestCheckpoint(runDir);
  // A served run's clients may have committed every round up to the newest checkpoint: an older
  // one would run those rounds again on them.
  if (options.fleet && ck.skipped.length)
    throw new InputError(
      `cannot resume the served run '${runDir}': its newest checkpoint is unusable (${ck.skipped[0]}), and its clients may have committed rounds past ${ck.dir}`,
    );
  refuseChangedConfig(ck.meta.config, config, runDir);
  if (config.rounds < ck.meta.round) {
    throw new ConfigError(
      `cannot resume '${runDir}': rounds ${config.rounds} is below the checkpoint's round ${ck.meta.round}`,
    );
  }
  const { sim, info } = await setup(config, options.fleet ? 'served' : undefined);
  if (!options.fleet) onEvent?.(dataEvent(config, info));
  const store = makeStore(sim, runDir, onEvent);
  for (const c of ck.meta.clients) {
    const bytes = ck.clientBytes(c);
    if (store instanceof DiskStore) store.setEncoded(c, bytes);
    else {
      const where = `${ck.dir} client ${c}`;
      store.set(c, sim.algorithm.client.codec.fromRecord(decodeClientState(bytes, where), where));
    }
  }
  const st: SimState = {
    round: ck.meta.round,
    server: sim.algorithm.server.codec.fromRecord(ck.server, join(ck.dir, 'server.msgpack')),
    totals: { ...ck.meta.totals },
    ...(ck.meta.ranks ? { ranks: ck.meta.ranks } : {}),
  };
  const dir = new RunDir(runDir);
  // The config as continued (rounds, runtime), so that a later plain --resume continues it.
  dir.writeConfig(config, configNotes(info));
  dir.restore(ck.records, ck.clientEvals);
  onEvent?.({
    type: 'resumed',
    round: ck.meta.round,
    rounds: config.rounds,
    from: ck.dir,
    skipped: ck.skipped,
  });
  return drive(
    sim,
    st,
    store,
    dir,
    ck.meta.time_s,
    { dir: ck.dir, meta: ck.meta },
    onEvent,
    options,
  );
}
