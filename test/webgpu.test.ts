/**
 * Training and evaluation on the WebGPU backend against wasm. On a machine without a GPU this
 * runs on a software Vulkan driver (Mesa 25 lavapipe, adapter "llvmpipe"; `.ci/run` installs it);
 * it is skipped, with the reason printed, only where no WebGPU adapter exists.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it, vi } from 'vitest';
import { ALGORITHMS } from '../src/algorithms/registry.js';
import { run as benchStep } from '../src/bench/step.js';
import { plantedMatrix } from '../src/linalg/planted.js';
import { type SvtMethod, svt } from '../src/linalg/svt.js';
import { createModel } from '../src/models/index.js';
import { parseConfig } from '../src/sim/config.js';
import { runExperiment } from '../src/sim/experiment.js';
import { InProcessFleet } from '../src/sim/fleet_local.js';
import { setup } from '../src/sim/setup.js';
import { initialState, simulate } from '../src/sim/simulate.js';
import { MemoryStore } from '../src/sim/store.js';
import { initBackend } from '../src/tensor/backend.js';
import { disposeParams, readArrays } from '../src/tensor/params.js';
import { Rng } from '../src/tensor/rng.js';
import { webgpuAdapter, webgpuAvailable } from '../src/tensor/webgpu.js';
import { disposeData, evaluate, toTensors, trainLocal } from '../src/train/loop.js';
import { tiny } from './tiny_config.js';

const available = await webgpuAvailable();
if (!available.ok) console.warn(`test/webgpu.test.ts skipped: ${available.reason}`);

const config = (backend: string) =>
  parseConfig({
    seed: 3,
    rounds: 2,
    evalEvery: 1,
    clients: { count: 4, sampling: { kind: 'count', k: 2 } },
    algorithm: { name: 'fedslr', mu: 0.005 },
    data: {
      dataset: 'mnist',
      partition: { kind: 'dirichlet', alpha: 0.5, minSize: 10 },
      testPerClient: 50,
    },
    // 784 x 96: the SVT's tfjs paths (polar, deflated polar, subspace) are tried on it.
    model: { name: 'mlp', hidden: [96] },
    train: { backend, epochs: 1, batchSize: 20 },
    runtime: { workers: 1 },
  });

/** Every number in a metrics line, by its path, leaving out wall-clock times. */
function numbers(
  value: unknown,
  path = '',
  out: Record<string, number> = {},
): Record<string, number> {
  if (typeof value === 'number') {
    if (!/time|_s$/.test(path)) out[path] = value;
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) numbers(v, `${path}.${k}`, out);
  }
  return out;
}

async function metricsOf(backend: string): Promise<Record<string, number>[]> {
  const dir = mkdtempSync(join(tmpdir(), `fedslr-${backend}-`));
  await runExperiment(config(backend), { outDir: dir });
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => numbers(JSON.parse(l)));
}

describe('backend webgpu without an adapter', () => {
  it('stops with an InputError that says what it needs', () => {
    // A process where Vulkan finds no driver: Dawn has no adapter (or, without the optional
    // packages, the message names them instead).
    const dir = mkdtempSync(join(tmpdir(), 'fedslr-noadapter-'));
    const script = join(dir, 'init.ts');
    const backend = fileURLToPath(new URL('../src/tensor/backend.ts', import.meta.url));
    writeFileSync(
      script,
      `import { initBackend } from ${JSON.stringify(backend)};\n` +
        "initBackend('webgpu').then(() => console.log('initialised'), (e) => console.log(e.name, e.message));\n",
    );
    const viteNode = fileURLToPath(new URL('../node_modules/.bin/vite-node', import.meta.url));
    const out = spawnSync(viteNode, [script], {
      encoding: 'utf8',
      env: { ...process.env, VK_ICD_FILENAMES: join(dir, 'no-such-driver.json') },
    });
    expect(out.stdout).toMatch(
      /InputError backend 'webgpu': (no WebGPU adapter on this machine; it needs a GPU|needs the package)/,
    );
  });
});

describe.skipIf(!available.ok)('the webgpu backend', () => {
  it('initialises on the adapter it reports', async () => {
    expect(await initBackend('webgpu')).toBe('webgpu');
    expect(webgpuAdapter()).not.toBe('');
  });

  it('gives a FedSLR run (training, server step, evaluation) the metrics of wasm within float tolerance', async () => {
    const wasm = await metricsOf('wasm');
    // The whole run, server step included, stays on webgpu: no switch to wasm.
    const switches = vi.spyOn(tf.engine(), 'setBackend');
    let selected: string[] = [];
    const webgpu = await metricsOf('webgpu').finally(() => {
      selected = switches.mock.calls.map(([name]) => name);
      switches.mockRestore();
    });
    expect(selected).toEqual(['webgpu']);
    expect(webgpu.length).toBe(2);
    // round, traffic, global and personal accuracy and loss with their spread, ranks, density.
    expect(Object.keys(wasm[1]!).length).toBeGreaterThan(25);
    expect(webgpu.map((r) => Object.keys(r).sort())).toEqual(
      wasm.map((r) => Object.keys(r).sort()),
    );
    wasm.forEach((row, i) => {
      for (const [k, a] of Object.entries(row)) {
        // float32 sums in another order: losses agree to ~1e-6 relative; an accuracy could move
        // by one test sample at most (1/50 of a client's mean), which these runs do not.
        expect(webgpu[i]![k], `round ${i + 1} ${k}`).toBeCloseTo(a, 4);
      }
    });
  });

  it('gives every algorithm the evaluation it has on wasm (one round, tiny mlp)', async () => {
    const configOf = (algorithm: string, backend: string) =>
      parseConfig({ ...tiny, algorithm: { name: algorithm }, train: { ...tiny.train, backend } });
    // The clients loaded and split once, for all 26 runs.
    const { clients } = (await setup(configOf('fedavg', 'wasm'))).sim;
    const evalOf = async (algorithm: string, backend: string) => {
      const { sim } = await setup(configOf(algorithm, backend), { clients });
      const fleet = new InProcessFleet(sim, new MemoryStore(sim.algorithm.client.codec));
      for await (const e of simulate(sim, initialState(sim), () => 0, fleet))
        if (e.type === 'eval') return numbers(e.record);
      throw new Error(`${algorithm}: no evaluation`);
    };
    for (const { name } of ALGORITHMS) {
      const [wasm, webgpu] = [await evalOf(name, 'wasm'), await evalOf(name, 'webgpu')];
      expect(Object.keys(webgpu).sort(), name).toEqual(Object.keys(wasm).sort());
      for (const [k, a] of Object.entries(wasm))
        expect(webgpu[k], `${name} ${k}`).toBeCloseTo(a, 5);
    }
  });

  it('trains and evaluates with no synchronous read-back and leaks no tensors', async () => {
    await initBackend('webgpu');
    const model = createModel('mlp', { inputShape: [4, 4, 1], classes: 3, hidden: [6] });
    const rng = new Rng(1);
    const x = Float32Array.from({ length: 60 * 16 }, () => rng.normal());
    const y = Int32Array.from({ length: 60 }, (_, i) => i % 3);
    const data = toTensors(x, y, [4, 4, 1]);
    const w = model.init(new Rng(2));
    const live = tf.memory().numTensors;
    const r = await trainLocal(w, {
      model,
      data,
      epochs: 2,
      batchSize: 16,
      lr: 0.1,
      rng: new Rng(3),
    });
    const e = await evaluate(model, r.params, data);
    const trained = await readArrays(r.params);
    disposeParams(r.params);
    expect(tf.memory().numTensors).toBe(live);
    expect(r.epochs.map((l) => Number.isFinite(l.loss))).toEqual([true, true]);
    expect(e.n).toBe(60);
    expect(Object.values(trained).every((p) => p.data.every(Number.isFinite))).toBe(true);
    disposeParams(w);
    disposeData(data);
  });

  it('bench step times webgpu beside wasm in one run and names the adapter', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      const argv = ['--model', 'mlp', '--steps', '2', '--warmup', '1', '--rounds', '2'];
      expect(await benchStep([...argv, '--backend', 'webgpu', '--beside', 'wasm', '--json'])).toBe(
        0,
      );
      const r = JSON.parse(String(log.mock.calls.at(-1)?.[0]));
      expect(r).toMatchObject({
        backend: 'webgpu',
        steps: 2,
        beside: { backend: 'wasm', steps: 2 },
      });
      expect(r.adapter).toBe(webgpuAdapter());
      expect(r.ms_per_step).toBeGreaterThan(0);
    } finally {
      log.mockRestore();
    }
  });

  it.each([
    {
      path: 'polar',
      rows: 200,
      cols: 100,
      s: geometric(100, 1, 0.02),
      tau: 0.01,
      method: 'polar',
      full: true,
    },
    {
      path: 'Gram-domain polar',
      rows: 300,
      cols: 100,
      s: geometric(100, 2, 0.8),
      tau: 1e-3,
      method: 'polar',
      full: true,
    },
    {
      path: 'deflated polar',
      rows: 110,
      cols: 100,
      s: [...geometric(99, 1, 0.05), 0.009],
      tau: 0.01,
      method: 'polar',
      full: false,
    },
    {
      path: 'subspace',
      rows: 150,
      cols: 120,
      s: [...geometric(10, 1, 0.3), ...geometric(110, 0.09, 0.001)],
      tau: 0.1,
      method: 'subspace',
      full: false,
    },
    {
      path: 'gram (tfjs product)',
      rows: 60,
      cols: 40,
      s: geometric(40, 1, 0.05),
      tau: 0.01,
      method: 'gram',
      full: true,
    },
  ] as const)(
    'runs the $path SVT on webgpu with the result of wasm, leaking nothing',
    async (c) => {
      const a = plantedMatrix(c.rows, c.cols, c.s, 7);
      const opts = { method: c.method as SvtMethod, factors: 'whenLowRank' as const };
      await initBackend('wasm');
      const onWasm = await svt(a, c.rows, c.cols, c.tau, opts);
      await initBackend('webgpu');
      const live = tf.memory().numTensors;
      const onGpu = await svt(a, c.rows, c.cols, c.tau, opts);
      expect(tf.getBackend()).toBe('webgpu');
      expect(tf.memory().numTensors).toBe(live);
      // The path named answered (the deflated one keeps a rank below full, under method polar).
      expect([onWasm.method, onWasm.rank === onWasm.fullRank]).toEqual([c.method, c.full]);
      expect([onGpu.method, onGpu.rank]).toEqual([onWasm.method, onWasm.rank]);
      let diff = 0;
      for (let i = 0; i < a.length; i++)
        diff = Math.max(diff, Math.abs(onGpu.matrix[i]! - onWasm.matrix[i]!));
      // float32 products summed in another order: ~1e-6 of s_max (<= 2) per entry.
      expect(diff).toBeLessThan(1e-4);
    },
  );
});

function geometric(n: number, hi: number, lo: number): number[] {
  return Array.from({ length: n }, (_, i) => hi * (lo / hi) ** (n === 1 ? 0 : i / (n - 1)));
}
