import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/sim/config.js';
import { type ExperimentEvent, runExperiment } from '../src/sim/experiment.js';
import { InProcessFleet } from '../src/sim/fleet_local.js';
import { WorkerPoolFleet } from '../src/sim/pool.js';
import { setup } from '../src/sim/setup.js';
import { initialState, simulate } from '../src/sim/simulate.js';
import { MemoryStore } from '../src/sim/store.js';
import { initBackend, wasmThreads } from '../src/tensor/backend.js';
import type { ParamArrays } from '../src/tensor/params.js';

const small = (algorithm: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  parseConfig({
    seed: 3,
    rounds: 3,
    evalEvery: 1,
    clients: { count: 4, sampling: { kind: 'count', k: 2 } },
    algorithm,
    data: {
      dataset: 'mnist',
      partition: { kind: 'dirichlet', alpha: 0.5, minSize: 10 },
      testPerClient: 50,
    },
    model: { name: 'mlp', hidden: [16] },
    train: { backend: 'wasm', epochs: 1, batchSize: 50 },
    runtime: { workers: 1 },
    ...extra,
  });

const readLines = (f: string) =>
  readFileSync(f, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

/** The FedSLR reference run (seed 3), made once for the tests that read it. */
let reference: Promise<string> | undefined;
function referenceRun(): Promise<string> {
  reference ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedslr-sim-'));
    await runExperiment(small({ name: 'fedslr' }), { outDir: dir });
    return dir;
  })();
  return reference;
}

// Two XNNPACK threads in the main thread (whatever the cores), so in-process runs are threaded.
beforeAll(async () => {
  await initBackend('wasm', { threads: 2 });
});

describe('simulation', () => {
  it('gives identical metrics for the same seed and different ones for another seed', async () => {
    const dirs = [
      await referenceRun(),
      ...[1, 2].map(() => mkdtempSync(join(tmpdir(), 'fedslr-sim-'))),
    ];
    await runExperiment(small({ name: 'fedslr' }), { outDir: dirs[1]! });
    await runExperiment(small({ name: 'fedslr' }, { seed: 4 }), { outDir: dirs[2]! });
    // biome-ignore lint/suspicious/noExplicitAny: JSON read back from the run directory
    const strip = (r: any) => ({ ...r, time_s: 0 });
    const [a, b, c] = dirs.map((d) => readLines(join(d, 'metrics.jsonl')).map(strip));
    expect(a).toHaveLength(3);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    const rec = a[2];
    for (const key of ['acc', 'acc_weighted', 'acc_std', 'acc_p10', 'acc_p50', 'acc_p90', 'loss']) {
      for (const value of [rec.global[key], rec.personal[key]]) {
        expect(Number.isFinite(value), key).toBe(true);
        if (key === 'loss') expect(value).toBeGreaterThan(0);
        else expect(value >= 0 && value <= 1, `${key} ${value}`).toBe(true);
      }
    }
    expect(rec.rank_ratio).toBeGreaterThan(0);
    expect(rec.rank_ratio).toBeLessThanOrEqual(1);
    expect(rec.personal_density).toBeGreaterThan(0);
    expect(rec.personal_density).toBeLessThanOrEqual(1);
    // 3 rounds x 2 clients, dense uploads of the whole model (784*16+16 + 16*10+10 = 12730).
    expect(rec.up_params).toBe(6 * 12730);
    expect(rec.down_params).toBeLessThanOrEqual(rec.dense_down_params);
    const config = JSON.parse(readFileSync(join(dirs[0]!, 'config.json'), 'utf8'));
    expect(config.seed).toBe(3);
    expect(config.algorithm.mu).toBe(1e-4);
    expect(config.fedslr.version).toMatch(/^\d+\.\d+\.\d+/);
    const summary = JSON.parse(readFileSync(join(dirs[0]!, 'summary.json'), 'utf8'));
    expect(summary.final.round).toBe(3);
    expect(summary.best.personal_acc.value).toBeGreaterThanOrEqual(summary.final.personal.acc);
    const clients = readLines(join(dirs[0]!, 'clients.jsonl'));
    expect(clients[0].n).toHaveLength(4);
    expect(clients[0].personal.acc).toHaveLength(4);
  });

  it('runs every algorithm without leaking tensors across rounds', async () => {
    for (const name of ['fedslr', 'fedavg', 'ditto', 'local']) {
      const { sim } = await setup(small({ name }, { rounds: 4 }));
      const st = initialState(sim);
      const counts: number[] = [];
      const evals: { global?: unknown; personal?: unknown }[] = [];
      let drawn = 0;
      const store = new MemoryStore(sim.algorithm.client.codec);
      const fleet = new InProcessFleet(sim, store);
      for await (const e of simulate(sim, st, () => 0, fleet)) {
        if (e.type === 'round-start') drawn = e.clients.length;
        if (e.type === 'round-end') {
          counts.push(tf.memory().numTensors);
          expect(e.clients).toBe(drawn);
          expect(e.train_s).toBeGreaterThan(0);
          expect(e.server_s).toBeGreaterThan(0);
        }
        if (e.type === 'eval') expect(e.eval_s).toBeGreaterThan(0);
        if (e.type === 'eval') evals.push(e.record);
      }
      expect(new Set(counts).size, `${name}: live tensors per round ${counts}`).toBe(1);
      expect(evals).toHaveLength(4);
      expect(Boolean(evals[0]!.global), name).toBe(name !== 'local');
      expect(Boolean(evals[0]!.personal), name).toBe(name !== 'fedavg');
    }
  });

  it('gives bitwise identical metrics and models with a worker pool of 2 as in-process', async () => {
    const dirs = [1, 2].map(() => mkdtempSync(join(tmpdir(), 'fedslr-pool-')));
    const used: number[] = [];
    for (const [i, workers] of [1, 2].entries()) {
      await runExperiment(
        small(
          { name: 'fedslr' },
          {
            rounds: 2,
            clients: { count: 5, sampling: { kind: 'count', k: 3 } },
            runtime: { workers },
          },
        ),
        {
          outDir: dirs[i]!,
          onEvent: (e: ExperimentEvent) => {
            if (e.type === 'fleet') used.push(e.workers);
          },
        },
      );
    }
    expect(used).toEqual([1, 2]);
    // In-process means the main thread's backend, which runs XNNPACK on two threads here.
    expect(wasmThreads().threads).toBe(2);
    const strip = (d: string) =>
      readLines(join(d, 'metrics.jsonl')).map((r) => ({ ...r, time_s: 0 }));
    expect(strip(dirs[1]!)).toEqual(strip(dirs[0]!));
    const server = (d: string) =>
      readFileSync(join(d, 'checkpoints', 'round-000002', 'server.msgpack')).toString('base64');
    expect(server(dirs[1]!)).toEqual(server(dirs[0]!));
  });

  it('trains the cnn to the same bits on two threads (in-process) as on one (worker threads)', async () => {
    const config = small(
      { name: 'fedavg' },
      {
        rounds: 1,
        clients: { count: 40, sampling: { kind: 'count', k: 2 } },
        model: { name: 'cnn' },
      },
    );
    const { sim } = await setup(config);
    const bits = (set: ParamArrays) =>
      Object.values(set).map((a) =>
        Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).toString('base64'),
      );
    const serverAfterRound = async (workers: number) => {
      const st = initialState(sim);
      const store = new MemoryStore(sim.algorithm.client.codec);
      const fleet =
        workers === 1
          ? new InProcessFleet(sim, store)
          : await WorkerPoolFleet.start(sim, workers, store);
      try {
        for await (const e of simulate(sim, st, () => 0, fleet)) if (e.type === 'round-end') break;
      } finally {
        await fleet.close();
      }
      return bits(sim.algorithm.server.global(st.server)!);
    };
    const threaded = await serverAfterRound(1);
    expect(threaded).not.toEqual(bits(sim.init));
    expect(wasmThreads().threads).toBe(2);
    expect(await serverAfterRound(2)).toEqual(threaded);
  });

  it('refuses a non-empty output directory', async () => {
    const dir = await referenceRun();
    await expect(
      runExperiment(small({ name: 'fedavg' }, { rounds: 1 }), { outDir: dir }),
    ).rejects.toThrow(/is not empty/);
  });
});

describe('divergence', () => {
  it('stops with a clear error when a client loss is not finite', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedslr-nan-'));
    await expect(
      runExperiment(
        small(
          { name: 'fedavg' },
          { train: { backend: 'wasm', epochs: 1, batchSize: 50, lr: 1e30 } },
        ),
        { outDir: dir },
      ),
    ).rejects.toThrow(
      /training diverged in round 1: client \d+'s loss is (NaN|Infinity) \(lr 1e\+30\); try a smaller train\.lr/,
    );
  });
});
