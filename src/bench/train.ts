/**
 * `fedslr bench train`: the cost of FedSLR's local steps against a plain SGD step, with the real
 * loop (train/trainLocal: batch gather, step, loss and accuracy accumulation) and the transforms
 * FedSLR builds: stage 1 is SGD with chain(addLinear(pi, -1), proximalPull(alpha, W),
 * addDecayedWeights(wd)); stage 2 trains P through compose p => W + p with addDecayedWeights(wd)
 * and the L1 prox. The three variants alternate round by round, so they see the same load.
 */

import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { UsageError } from '../cli/command.js';
import { createModel, MODEL_NAMES, type ModelName } from '../models/index.js';
import { BACKEND_NAMES, type BackendName, initBackend } from '../tensor/backend.js';
import { add, disposeParams, type Params } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { type DataTensors, disposeData, type TrainOptions, trainLocal } from '../train/loop.js';
import {
  addDecayedWeights,
  addLinear,
  chain,
  l1ProxMap,
  proximalPull,
} from '../train/transforms.js';
import { CLASSES, INPUT_SHAPES, LR, median, positiveInt } from './step.js';

export const help = [
  'Usage: fedslr bench train [--model cnn,resnet8gn] [--batch N] [--steps N] [--rounds N]',
  '                          [--backend wasm|cpu|auto|tensorflow] [--json]',
  '',
  'Times local training steps (train/trainLocal, one epoch of --steps batches, default 5):',
  '  plain   SGD, no transform',
  '  stage1  FedSLR stage 1: chain(addLinear(pi, -1), proximalPull(alpha, W), addDecayedWeights)',
  '  stage2  FedSLR stage 2: compose p => W + p, addDecayedWeights, L1 prox after each step',
  'The variants alternate for --rounds rounds (default 9, after one untimed round); each reports',
  'the median ms/step over rounds, and the overheads stage1/plain and stage2/plain (the median',
  'over rounds of the ratio within the round), of wall time and of the process CPU time (less',
  'disturbed by other processes on a shared machine).',
  'Models: a comma-separated list (default cnn,resnet8gn) of mlp, cnn, resnet8gn, resnet18gn.',
].join('\n');

const ALPHA = 0.1;
const WD = 1e-3;
const LAMBDA = 1e-3;

export const VARIANTS = ['plain', 'stage1', 'stage2'] as const;
export type Variant = (typeof VARIANTS)[number];

export interface TrainBenchModel {
  model: ModelName;
  params: number;
  ms_per_step: Record<Variant, number>;
  /** The process's CPU time per step (user + system), less disturbed by other processes. */
  cpu_ms_per_step: Record<Variant, number>;
  /**
   * stage1 / plain and stage2 / plain: the median over rounds of the ratio within each round
   * (the variants of one round run back to back, under about the same load).
   */
  overhead: { stage1: number; stage2: number };
  /** The same ratios of CPU time. */
  cpu_overhead: { stage1: number; stage2: number };
}

export interface TrainBenchResult {
  backend: string;
  batch: number;
  steps: number;
  rounds: number;
  /** One-minute load average before and after the runs (the machine may be shared). */
  load: [number, number];
  models: TrainBenchModel[];
}

function randomParams(like: Params, rng: Rng, scale: number): Params {
  return Object.fromEntries(
    Object.entries(like).map(([k, t]) => {
      const v = new Float32Array(t.size);
      for (let i = 0; i < v.length; i++) v[i] = scale * rng.normal();
      return [k, tf.tensor(v, t.shape)];
    }),
  );
}

/** One model's data, the round's global model W, a dual pi and a personal part P. */
class Setup {
  readonly data: DataTensors;
  readonly W: Params;
  readonly pi: Params;
  readonly P: Params;
  readonly size: number;
  private readonly base: Omit<TrainOptions, 'rng'>;

  constructor(name: ModelName, batch: number, steps: number) {
    const shape = INPUT_SHAPES[name];
    const model = createModel(name, { inputShape: shape, classes: CLASSES });
    const rng = new Rng(1);
    this.W = model.init(rng);
    this.pi = randomParams(this.W, rng, 1e-3);
    this.P = randomParams(this.W, rng, 1e-2);
    this.size = Object.values(this.W).reduce((s, t) => s + t.size, 0);
    const n = batch * steps;
    const x = new Float32Array(n * shape[0] * shape[1] * shape[2]);
    for (let i = 0; i < x.length; i++) x[i] = rng.normal();
    this.data = {
      x: tf.tensor4d(x, [n, ...shape]),
      y: tf.tensor1d(
        Int32Array.from({ length: n }, (_, i) => i % CLASSES),
        'int32',
      ),
    };
    this.base = { model, data: this.data, epochs: 1, batchSize: batch, lr: LR };
  }

  /** Trains one epoch of `variant` and returns its wall and CPU time in ms per step. */
  async time(variant: Variant, seed: number): Promise<{ wall: number; cpu: number }> {
    const rng = new Rng(seed);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const r =
      variant === 'plain'
        ? await trainLocal(this.W, { ...this.base, rng })
        : variant === 'stage1'
          ? await trainLocal(this.W, {
              ...this.base,
              rng,
              transform: chain(
                addLinear(this.pi, -1),
                proximalPull(ALPHA, this.W),
                addDecayedWeights(WD),
              ),
            })
          : await trainLocal(this.P, {
              ...this.base,
              rng,
              compose: (p) => add(this.W, p),
              transform: addDecayedWeights(WD),
              prox: l1ProxMap(LAMBDA),
            });
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    disposeParams(r.params);
    return { wall: ms / r.steps, cpu: (c.user + c.system) / 1000 / r.steps };
  }

  dispose(): void {
    disposeParams(this.W, this.pi, this.P);
    disposeData(this.data);
  }
}

function parseModels(list: string): ModelName[] {
  const names = list.split(',').filter((s) => s !== '');
  for (const m of names) {
    if (!MODEL_NAMES.includes(m as ModelName)) {
      throw new UsageError(`--model: expected names from ${MODEL_NAMES.join(', ')}, got '${m}'`);
    }
  }
  if (names.length === 0) throw new UsageError('--model: expected at least one model');
  return names as ModelName[];
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      model: { type: 'string', default: 'cnn,resnet8gn' },
      batch: { type: 'string', default: '20' },
      steps: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '9' },
      backend: { type: 'string', default: 'wasm' },
      json: { type: 'boolean', default: false },
    },
  });
  const models = parseModels(values.model);
  const backendName = values.backend as BackendName;
  if (!BACKEND_NAMES.includes(backendName)) {
    throw new UsageError(
      `--backend: expected one of ${BACKEND_NAMES.join(', ')}, got '${values.backend}'`,
    );
  }
  const batch = positiveInt('batch', values.batch);
  const steps = positiveInt('steps', values.steps);
  const rounds = positiveInt('rounds', values.rounds);

  const backend = await initBackend(backendName);
  const loadBefore = loadavg()[0]!;
  const results: TrainBenchModel[] = [];
  for (const model of models) {
    const setup = new Setup(model, batch, steps);
    const wall: Record<Variant, number[]> = { plain: [], stage1: [], stage2: [] };
    const cpu: Record<Variant, number[]> = { plain: [], stage1: [], stage2: [] };
    try {
      for (const v of VARIANTS) await setup.time(v, 0);
      for (let r = 0; r < rounds; r++) {
        for (const v of VARIANTS) {
          const t = await setup.time(v, r + 1);
          wall[v].push(t.wall);
          cpu[v].push(t.cpu);
        }
      }
    } finally {
      setup.dispose();
    }
    const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;
    const perStep = (times: Record<Variant, number[]>) =>
      Object.fromEntries(VARIANTS.map((v) => [v, round(median(times[v]), 2)])) as Record<
        Variant,
        number
      >;
    // Within each round the variants ran back to back, under about the same load.
    const overhead = (times: Record<Variant, number[]>) => ({
      stage1: round(median(times.stage1.map((t, r) => t / times.plain[r]!)), 3),
      stage2: round(median(times.stage2.map((t, r) => t / times.plain[r]!)), 3),
    });
    results.push({
      model,
      params: setup.size,
      ms_per_step: perStep(wall),
      cpu_ms_per_step: perStep(cpu),
      overhead: overhead(wall),
      cpu_overhead: overhead(cpu),
    });
  }
  const result: TrainBenchResult = {
    backend,
    batch,
    steps,
    rounds,
    load: [Math.round(loadBefore * 100) / 100, Math.round(loadavg()[0]! * 100) / 100],
    models: results,
  };

  if (values.json) {
    console.log(JSON.stringify(result));
    return 0;
  }
  console.log(
    `backend ${backend}, batch ${batch}, ${steps} steps x ${rounds} rounds, load ${result.load.join(' -> ')}`,
  );
  console.log(
    `  ${'model'.padEnd(11)} ${'params'.padStart(9)} ${'plain'.padStart(8)} ${'stage1'.padStart(8)} ${'stage2'.padStart(8)}  overhead  (wall, then CPU ms/step; medians)`,
  );
  for (const r of results) {
    const rows: [string, Record<Variant, number>, TrainBenchModel['overhead']][] = [
      [r.model, r.ms_per_step, r.overhead],
      ['', r.cpu_ms_per_step, r.cpu_overhead],
    ];
    rows.forEach(([name, m, o], i) => {
      console.log(
        `  ${name.padEnd(11)} ${(i === 0 ? String(r.params) : 'cpu').padStart(9)} ${m.plain.toFixed(1).padStart(8)} ${m.stage1.toFixed(1).padStart(8)} ${m.stage2.toFixed(1).padStart(8)}  x${o.stage1.toFixed(3)} x${o.stage2.toFixed(3)}`,
      );
    });
  }
  return 0;
}
