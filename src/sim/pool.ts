/**
 * The worker-thread fleet: a pool of worker threads (worker.ts), each with its own tfjs backend,
 * each hosting every client of the simulation (their data is in shared memory) in a `HostGroup`.
 * The pool speaks the protocol to them (protocol/messages.ts, MessagePack over the thread's
 * MessagePort): the same messages, checks and two-phase commits as a network federation. Each
 * worker's hosts keep committed states in the pool's client store, through `load`/`save` requests
 * on the same port. Results never depend on the pool's size: every client's random numbers come
 * from (seed, round, client), and the round loop puts uploads back in drawn order.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Download } from '../algorithms/types.js';
import type { ClientData } from '../data/clients.js';
import {
  decodeToServer,
  encodeMessage,
  PROTOCOL_VERSION,
  type ToHost,
  type ToServer,
} from '../protocol/messages.js';
import type { ClientEvalRow, TrainJob, TrainReply } from '../runtime/fleet.js';
import type { BackendName } from '../tensor/backend.js';
import { InputError } from '../util/errors.js';
import { bundleFromSource } from '../util/source_bundle.js';
import {
  commitMessage,
  evaluateMessage,
  InProcessFleet,
  rowsOf,
  type SimFleet,
  StoreFleet,
  StoreStates,
  trainMessage,
  trainReply,
} from './fleet_local.js';
import type { Simulation } from './simulate.js';
import type { ClientStore } from './store.js';

/** From the pool to a worker: protocol bytes, or the worker's own setup and state loads. */
export type ToWorker =
  | {
      kind: 'init';
      clients: readonly ClientData[];
      backend: BackendName;
      threads: number;
    }
  | { kind: 'protocol'; bytes: Uint8Array }
  | { kind: 'state'; id: number; state: unknown };

/** From a worker: protocol bytes, setup done, state storage, or an exception it could not answer. */
export type FromWorker =
  | { kind: 'protocol'; bytes: Uint8Array }
  | { kind: 'ready' }
  | { kind: 'load'; id: number; client: number }
  | { kind: 'save'; client: number; state: unknown }
  | { kind: 'failed'; client?: number; message: string; stack?: string };

let devBundle: string | undefined;

/**
 * The worker's script. From the built package it is dist/sim/worker.js; when running from source
 * (tests, vite-node) it is bundled once (util/source_bundle.ts).
 */
async function workerScript(): Promise<string> {
  const here = fileURLToPath(import.meta.url);
  if (!here.endsWith('.ts')) return join(here, '..', 'worker.js');
  devBundle ??= await bundleFromSource('src/sim/worker.ts', 'fedslr-worker');
  return devBundle;
}

/** Answers a worker owes: one per client for training and evaluation, one commit at a time. */
interface Waiter<T> {
  resolve: (v: T) => void;
  reject: (e: Error) => void;
}

/** The pool's end of one worker: its messages in, its requests' answers out. */
class WorkerLink {
  private readonly trains = new Map<number, Waiter<ToServer>>();
  private readonly evals = new Map<number, Waiter<ToServer>>();
  private commitWaiter: Waiter<void> | undefined;
  readonly ready: Promise<void>;

  constructor(
    private readonly worker: Worker,
    private readonly name: string,
    sim: Simulation,
    states: StoreStates,
  ) {
    let onReady!: () => void;
    let onFail!: (e: Error) => void;
    this.ready = new Promise((res, rej) => {
      onReady = res;
      onFail = rej;
    });
    const fail = (e: Error) => {
      onFail(e);
      this.failAll(e);
    };
    worker.on('message', (m: FromWorker) => {
      switch (m.kind) {
        case 'ready':
          return onReady();
        case 'load':
          return void states
            .load(m.client)
            .then((state) => this.post({ kind: 'state', id: m.id, state }));
        case 'save':
          return void states.save(m.client, m.state);
        case 'failed': {
          const err = Object.assign(new Error(`${name}: ${m.message}`), { stack: m.stack });
          const w = m.client === undefined ? undefined : this.takeWaiter(m.client);
          return w ? w.reject(err) : fail(err);
        }
        case 'protocol': {
          let msg: ToServer;
          try {
            msg = decodeToServer(m.bytes, name);
          } catch (err) {
            return fail(err as Error);
          }
          return this.receive(msg, sim);
        }
      }
    });
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`${name} exited with code ${code}`)));
    this.post({
      kind: 'init',
      clients: sim.clients,
      backend: sim.config.train.backend,
      threads: sim.config.runtime.threads,
    });
  }

  private receive(m: ToServer, sim: Simulation): void {
    if (m.type === 'hello') this.send({ v: PROTOCOL_VERSION, type: 'welcome', task: sim.task });
    else if (m.type === 'update') this.trains.get(m.client)?.resolve(m);
    else if (m.type === 'metrics') this.evals.get(m.client)?.resolve(m);
    else if (m.type === 'committed') this.commitWaiter?.resolve();
    else if (m.type === 'error') {
      // A refusal about one client answers that client's request; any other fails the worker.
      const w = m.client === undefined ? undefined : this.takeWaiter(m.client, false);
      if (w) w.resolve(m);
      else this.failAll(new Error(`${this.name}: ${m.message}`));
    } else this.failAll(new Error(`${this.name}: '${m.type}', but the pool runs no secure round`));
  }

  /** The waiter for `client`'s answer (training first, then evaluation). */
  private takeWaiter(client: number, remove = true): Waiter<ToServer> | undefined {
    for (const map of [this.trains, this.evals]) {
      const w = map.get(client);
      if (w) {
        if (remove) map.delete(client);
        return w;
      }
    }
    return undefined;
  }

  private failAll(e: Error): void {
    for (const map of [this.trains, this.evals]) {
      for (const w of map.values()) w.reject(e);
      map.clear();
    }
    this.commitWaiter?.reject(e);
  }

  private post(m: ToWorker): void {
    this.worker.postMessage(m);
  }

  send(m: ToHost): void {
    this.post({ kind: 'protocol', bytes: encodeMessage(m) });
  }

  /** Sends encoded protocol bytes (one encoding shared by several workers). */
  sendBytes(bytes: Uint8Array): void {
    this.post({ kind: 'protocol', bytes });
  }

  private await(map: Map<number, Waiter<ToServer>>, client: number): Promise<ToServer> {
    return new Promise((resolve, reject) => {
      map.set(client, {
        resolve: (m) => {
          map.delete(client);
          resolve(m);
        },
        reject,
      });
    });
  }

  train(m: Extract<ToHost, { type: 'train' }>): Promise<ToServer> {
    const answer = this.await(this.trains, m.client);
    this.send(m);
    return answer;
  }

  /** Evaluates `clients` with the encoded `evaluate` message; resolves with their replies. */
  evaluate(bytes: Uint8Array, clients: readonly number[]): Promise<ToServer[]> {
    const answers = Promise.all(clients.map((c) => this.await(this.evals, c)));
    this.sendBytes(bytes);
    return answers;
  }

  commit(bytes: Uint8Array): Promise<void> {
    const done = new Promise<void>((resolve, reject) => {
      this.commitWaiter = {
        resolve: () => {
          this.commitWaiter = undefined;
          resolve();
        },
        reject,
      };
    });
    this.sendBytes(bytes);
    return done;
  }

  async terminate(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

/**
 * Splits jobs between `n` workers, longest first, each to the worker with the least work so far
 * (ties to the lower worker): an even split without back-and-forth per job.
 */
export function splitByWork(work: readonly number[], n: number): number[][] {
  const parts: number[][] = Array.from({ length: n }, () => []);
  const load = new Array<number>(n).fill(0);
  for (const i of longestFirst(work)) {
    const k = load.indexOf(Math.min(...load));
    parts[k]!.push(i);
    load[k]! += work[i]!;
  }
  return parts;
}

/**
 * Job indices by decreasing work, ties by index: the longest jobs start first, so the ones left
 * to finish while other workers idle are short. On the Fashion-MNIST example's Dirichlet split
 * (10 of 100 clients a round, two workers) this takes the busier worker's share of a round's
 * training from 54.0% to 51.1% (50% is even), over 50 rounds.
 */
export function longestFirst(work: readonly number[]): number[] {
  return work.map((_, i) => i).sort((a, b) => work[b]! - work[a]! || a - b);
}

/** Runs the jobs in `order` on the handles, each handle taking the next job when it is free. */
async function* schedule<T>(
  handles: readonly WorkerLink[],
  order: readonly number[],
  run: (h: WorkerLink, index: number) => Promise<T>,
): AsyncGenerator<{ index: number; value: T }> {
  let next = 0;
  const inFlight = new Map<number, Promise<{ index: number; value: T; h: WorkerLink }>>();
  const launch = (h: WorkerLink) => {
    if (next >= order.length) return;
    const index = order[next++]!;
    inFlight.set(
      index,
      run(h, index).then((value) => ({ index, value, h })),
    );
  };
  for (const h of handles) launch(h);
  while (inFlight.size > 0) {
    const done = await Promise.race(inFlight.values());
    inFlight.delete(done.index);
    launch(done.h);
    yield { index: done.index, value: done.value };
  }
}

export class WorkerPoolFleet extends StoreFleet implements SimFleet {
  private constructor(
    private readonly links: WorkerLink[],
    states: StoreStates,
    ids: readonly number[],
    /** Each client's training-set size: the work its jobs take, for the order they start in. */
    private readonly work: readonly number[],
  ) {
    super(states, ids);
  }

  /** Starts `size` workers hosting `sim`'s clients (their data is shared when in shared memory). */
  static async start(sim: Simulation, size: number, store: ClientStore): Promise<WorkerPoolFleet> {
    const script = await workerScript();
    const states = new StoreStates(store);
    const links = Array.from(
      { length: size },
      (_, i) => new WorkerLink(new Worker(script), `worker ${i}`, sim, states),
    );
    const pool = new WorkerPoolFleet(
      links,
      states,
      sim.clients.map((c) => c.id),
      sim.clients.map((c) => c.train.size),
    );
    try {
      await Promise.all(links.map((l) => l.ready));
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  get workers(): number {
    return this.links.length;
  }

  async *train(round: number, jobs: readonly TrainJob[]): AsyncGenerator<TrainReply> {
    const order = longestFirst(jobs.map((j) => this.work[j.client]!));
    for await (const r of schedule(this.links, order, (link, i) =>
      link.train(trainMessage(round, jobs[i]!) as Extract<ToHost, { type: 'train' }>),
    ))
      yield trainReply(jobs[r.index]!.client, r.value);
  }

  async commit(round: number, accepted: readonly number[]): Promise<void> {
    const bytes = encodeMessage(commitMessage(round, accepted));
    await Promise.all(this.links.map((l) => l.commit(bytes)));
  }

  async evaluate(
    round: number,
    download: Download,
    evalGlobal: boolean,
    clients: readonly number[],
  ): Promise<ClientEvalRow[]> {
    const parts = splitByWork(
      clients.map((c) => this.work[c]!),
      this.links.length,
    );
    const replies = await Promise.all(
      parts.map((part, k) => {
        const mine = part.map((i) => clients[i]!);
        if (!mine.length) return [];
        const bytes = encodeMessage(evaluateMessage(round, download, evalGlobal, mine));
        return this.links[k]!.evaluate(bytes, mine);
      }),
    );
    return rowsOf(clients, replies.flat());
  }

  async close(): Promise<void> {
    await Promise.all(this.links.map((l) => l.terminate()));
  }
}

/** Pool size for `runtime.workers` (0 = one per core). */
export function poolSize(workers: number): number {
  return workers === 0 ? availableParallelism() : workers;
}

/** The fleet a run uses: its clients in this thread for one worker, in a worker pool otherwise. */
export async function createFleet(sim: Simulation, store: ClientStore): Promise<SimFleet> {
  const size = poolSize(sim.config.runtime.workers);
  if (size > 1 && sim.config.secureAggregation?.enabled)
    throw new InputError(
      `runtime.workers: secure aggregation keeps each client's round keys where it trained, which the worker pool (${size} workers) does not; set runtime.workers: 1, or serve the run (fedslr serve)`,
    );
  return size <= 1 ? new InProcessFleet(sim, store) : WorkerPoolFleet.start(sim, size, store);
}
