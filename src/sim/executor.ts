/**
 * Who does the clients' work: the main thread, or a pool of worker threads each with its own
 * tfjs backend. Results never depend on which: every client's random numbers come from
 * (seed, round, client), and the simulator puts results back in client order before aggregating.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Download } from '../algorithms/types.js';
import type { ClientData } from '../data/clients.js';
import type { ClientEvalRow } from '../runtime/fleet.js';
import { disposeParams, fromArrays } from '../tensor/params.js';
import { writeFileAtomic } from '../util/fs.js';
import {
  evalClient,
  sentParams,
  type TrainOutcome,
  type TrainTask,
  trainClient,
} from './client_work.js';
import type { RunConfig } from './config.js';
import type { Simulation } from './simulate.js';

export interface EvalJob {
  round: number;
  /** What every client is sent for the evaluation (personal models may build on it). */
  download: Download;
  /** Whether the download is a global model to evaluate on its own. */
  evalGlobal: boolean;
  clients: readonly number[];
  /** The client's stored state (undefined: never drawn, so its initial state). */
  state: (client: number) => unknown;
}

export interface Executor {
  readonly workers: number;
  /** Trains the tasks' clients; yields each outcome as it finishes, with its task's index. */
  train(tasks: readonly TrainTask[]): AsyncGenerator<{ index: number; outcome: TrainOutcome }>;
  /** Evaluates the job's clients; rows in the order of `job.clients`. */
  evaluate(job: EvalJob): Promise<ClientEvalRow[]>;
  close(): Promise<void>;
}

export class InProcessExecutor implements Executor {
  readonly workers = 1;

  constructor(private readonly sim: Simulation) {}

  async *train(tasks: readonly TrainTask[]) {
    for (let i = 0; i < tasks.length; i++)
      yield { index: i, outcome: await trainClient(this.sim, tasks[i]!) };
  }

  async evaluate(job: EvalJob): Promise<ClientEvalRow[]> {
    const sent = sentParams(this.sim, job.download);
    const gt = job.evalGlobal && sent ? fromArrays(sent) : undefined;
    try {
      const rows: ClientEvalRow[] = [];
      for (const c of job.clients)
        rows.push(await evalClient(this.sim, c, job.round, sent, gt, job.state(c)));
      return rows;
    } finally {
      if (gt) disposeParams(gt);
    }
  }

  async close(): Promise<void> {}
}

/** Messages to a worker (see worker.ts). */
export type ToWorker =
  | { type: 'init'; config: RunConfig; clients: readonly ClientData[] }
  | { type: 'train'; id: number; task: TrainTask }
  | { type: 'global'; round: number; download: Download; evalGlobal: boolean }
  | { type: 'eval'; id: number; client: number; state: unknown };

/** Messages from a worker. */
export type FromWorker =
  | { type: 'ready' }
  | { type: 'trained'; id: number; outcome: TrainOutcome }
  | { type: 'evaluated'; id: number; row: ClientEvalRow }
  | { type: 'error'; id?: number; message: string; stack?: string };

let devBundle: string | undefined;

/**
 * The worker's script. From the built package it is dist/sim/worker.js; when running from source
 * (tests, vite-node) it is bundled once with esbuild (a dev dependency) under node_modules/.cache.
 */
async function workerScript(): Promise<string> {
  const here = fileURLToPath(import.meta.url);
  if (!here.endsWith('.ts')) return join(here, '..', 'worker.js');
  if (devBundle) return devBundle;
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [join(here, '..', 'worker.ts')],
    write: false,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'error',
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
    plugins: [
      {
        name: 'packages-external',
        setup(b) {
          // Packages stay external (loaded from node_modules), except tfjs-core's gradient files,
          // which Node cannot import (see src/tensor/gradients.ts).
          b.onResolve({ filter: /^[^./]/ }, (args) =>
            args.path.startsWith('@tensorflow/tfjs-core/dist/')
              ? undefined
              : { path: args.path, external: true },
          );
        },
      },
    ],
  });
  const code = result.outputFiles[0]!.contents;
  // Inside the project, so the bundle's package imports resolve to its node_modules; named by
  // content, so concurrent test processes share one file and nothing piles up.
  const hash = createHash('sha256').update(code).digest('hex').slice(0, 16);
  const out = join(
    here,
    '..',
    '..',
    '..',
    'node_modules',
    '.cache',
    'fedslr',
    `worker-${hash}.mjs`,
  );
  if (!existsSync(out)) writeFileAtomic(out, code);
  devBundle = out;
  return out;
}

interface Pending {
  resolve: (m: FromWorker) => void;
  reject: (e: Error) => void;
}

class WorkerHandle {
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private ready: Promise<void>;

  constructor(
    private readonly worker: Worker,
    sim: Simulation,
  ) {
    let onReady!: () => void;
    let onFail!: (e: Error) => void;
    this.ready = new Promise((res, rej) => {
      onReady = res;
      onFail = rej;
    });
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'ready') return onReady();
      const id = 'id' in m ? m.id : undefined;
      const p = id === undefined ? undefined : this.pending.get(id);
      if (m.type === 'error') {
        const err = Object.assign(new Error(`worker: ${m.message}`), { stack: m.stack });
        if (p) p.reject(err);
        else {
          onFail(err);
          this.failAll(err);
        }
      } else p?.resolve(m);
      if (id !== undefined) this.pending.delete(id);
    });
    worker.on('error', (e) => {
      onFail(e);
      this.failAll(e);
    });
    worker.on('exit', (code) => {
      const e = new Error(`worker exited with code ${code}`);
      onFail(e);
      this.failAll(e);
    });
    worker.postMessage({
      type: 'init',
      config: sim.config,
      clients: sim.clients,
    } satisfies ToWorker);
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  async started(): Promise<void> {
    await this.ready;
  }

  request(
    msg: { type: 'train'; task: TrainTask } | { type: 'eval'; client: number; state: unknown },
  ): Promise<FromWorker> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id } as ToWorker);
    });
  }

  post(msg: ToWorker): void {
    this.worker.postMessage(msg);
  }

  async terminate(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
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
  handles: readonly WorkerHandle[],
  order: readonly number[],
  run: (h: WorkerHandle, index: number) => Promise<T>,
): AsyncGenerator<{ index: number; value: T }> {
  let next = 0;
  const inFlight = new Map<number, Promise<{ index: number; value: T; h: WorkerHandle }>>();
  const launch = (h: WorkerHandle) => {
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

export class WorkerPool implements Executor {
  private constructor(
    private readonly handles: WorkerHandle[],
    /** Each client's training-set size: the work its jobs take, for the order they start in. */
    private readonly work: readonly number[],
  ) {}

  get workers(): number {
    return this.handles.length;
  }

  /** Starts `size` workers set up like `sim`; its clients' data is shared when in shared memory. */
  static async start(sim: Simulation, size: number): Promise<WorkerPool> {
    const script = await workerScript();
    const handles = Array.from({ length: size }, () => new WorkerHandle(new Worker(script), sim));
    const pool = new WorkerPool(
      handles,
      sim.clients.map((c) => c.train.size),
    );
    try {
      await Promise.all(handles.map((h) => h.started()));
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  async *train(tasks: readonly TrainTask[]) {
    const order = longestFirst(tasks.map((t) => this.work[t.client]!));
    for await (const r of schedule(this.handles, order, (h, i) =>
      h.request({ type: 'train', task: tasks[i]! }),
    )) {
      const m = r.value;
      if (m.type !== 'trained')
        throw new Error(`worker: expected a training result, got '${m.type}'`);
      yield { index: r.index, outcome: m.outcome };
    }
  }

  async evaluate(job: EvalJob): Promise<ClientEvalRow[]> {
    for (const h of this.handles)
      h.post({
        type: 'global',
        round: job.round,
        download: job.download,
        evalGlobal: job.evalGlobal,
      });
    const rows: ClientEvalRow[] = new Array(job.clients.length);
    const run = (h: WorkerHandle, i: number) =>
      h.request({ type: 'eval', client: job.clients[i]!, state: job.state(job.clients[i]!) });
    const order = longestFirst(job.clients.map((c) => this.work[c]!));
    for await (const r of schedule(this.handles, order, run)) {
      const m = r.value;
      if (m.type !== 'evaluated')
        throw new Error(`worker: expected an evaluation, got '${m.type}'`);
      rows[r.index] = m.row;
    }
    return rows;
  }

  async close(): Promise<void> {
    await Promise.all(this.handles.map((h) => h.terminate()));
  }
}

/** Pool size for `runtime.workers` (0 = one per core). */
export function poolSize(workers: number): number {
  return workers === 0 ? availableParallelism() : workers;
}

/** The executor a run uses: in-process for one worker, a pool otherwise. */
export async function createExecutor(sim: Simulation): Promise<Executor> {
  const size = poolSize(sim.config.runtime.workers);
  return size <= 1 ? new InProcessExecutor(sim) : WorkerPool.start(sim, size);
}
