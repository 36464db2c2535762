/**
 * `fedslr bench step`: the time of one SGD step (forward, backward, parameter update) of a model
 * on a fixed random batch, with the real model (models/) and the real step (train/makeStep).
 * With `--peer torch`, the same step in PyTorch on CPU or, with `--peer-device cuda`, on an NVIDIA
 * GPU (bench/step_torch.py) is timed in the same command, alternating with ours round by round, so
 * both see the same machine load; with
 * `--beside BACKEND`, the same step on a second tfjs backend, alternating likewise (e.g. webgpu
 * beside wasm).
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { UsageError } from '../cli/command.js';
import { createModel, type InputShape, MODEL_NAMES, type ModelName } from '../models/index.js';
import { BACKEND_NAMES, type BackendName, backendThreads, initBackend } from '../tensor/backend.js';
import type { Params } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { MAX_WASM_THREADS } from '../tensor/wasm_threads.js';
import { webgpuAdapter } from '../tensor/webgpu.js';
import { makeStep } from '../train/index.js';
import { InputError } from '../util/errors.js';

export const help = [
  'Usage: fedslr bench step [--model cnn|resnet8gn|resnet18gn|mlp] [--batch N] [--steps N]',
  '                         [--warmup N] [--rounds N] [--backend wasm|cpu|auto|tensorflow|webgpu]',
  '                         [--beside BACKEND] [--threads N] [--peer torch] [--python PATH]',
  '                         [--peer-threads N] [--peer-device cpu|cuda] [--profile] [--json]',
  '',
  'Times one SGD step (forward, backward, w -= lr * g) of the model on a random batch:',
  'cnn and mlp on 1x28x28 inputs, resnet8gn and resnet18gn on 3x32x32; 10 classes.',
  'Prints the median over --steps timed steps (after --warmup untimed ones).',
  '',
  '--peer torch   also time the same step in PyTorch (bench/step_torch.py, run by --python,',
  '               default /usr/bin/python3, with --peer-threads threads, default 2), alternating',
  '               with ours in --rounds rounds (default 5); adds peer_ms_per_step and ratio.',
  '--peer-device D  where the PyTorch step runs: cpu (default) or cuda (model and batch on',
  "               the GPU, synchronized around each timed step, PyTorch's default TF32 settings;",
  '               adds peer_device, peer_gpu and peer_tf32). A torch without CUDA is refused.',
  '--beside B     also time the same step on backend B (e.g. --backend webgpu --beside wasm),',
  '               alternating with --backend in --rounds rounds; adds beside{backend, ms_per_step}.',
  '--threads N    XNNPACK threads of the wasm backend (default 0: one per core).',
  '--profile      add a per-kernel breakdown of one step (tf.profile): kernels[{name, ms, calls}].',
].join('\n');

/** The input each model is benchmarked on (also used by `bench train`). */
export const INPUT_SHAPES: Record<ModelName, InputShape> = {
  mlp: [28, 28, 1],
  cnn: [28, 28, 1],
  resnet8gn: [32, 32, 3],
  resnet18gn: [32, 32, 3],
};
export const CLASSES = 10;
export const LR = 0.01;

export interface StepBenchResult {
  backend: string;
  /** XNNPACK threads of the wasm backend (0 for other backends). */
  threads: number;
  model: ModelName;
  batch: number;
  ms_per_step: number;
  steps: number;
  peer?: 'torch';
  peer_ms_per_step?: number;
  ratio?: number;
  peer_threads?: number;
  peer_version?: string;
  peer_device?: PeerDevice;
  /** The GPU the PyTorch step ran on (--peer-device cuda). */
  peer_gpu?: string;
  /** Whether the CUDA peer's cuDNN convolutions and products may use TF32 (PyTorch's defaults). */
  peer_tf32?: { cudnn: boolean; matmul: boolean };
  /** The WebGPU adapter (backend webgpu): 'llvmpipe: Mesa ...' on the software driver. */
  adapter?: string;
  /** The same step on a second backend (--beside), timed in the same rounds. */
  beside?: { backend: string; threads: number; ms_per_step: number; steps: number };
  kernels?: { name: string; ms: number; calls: number }[];
}

/** A --threads value: an integer in 0..8 (0: one per core), or a usage error. */
export function threadsFlag(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > MAX_WASM_THREADS)
    throw new UsageError(
      `--threads: expected an integer in 0..${MAX_WASM_THREADS}, got '${value}'`,
    );
  return n;
}

export type PeerDevice = 'cpu' | 'cuda';

/** A --peer-device value, or a usage error. */
function peerDeviceFlag(value: string): PeerDevice {
  if (value !== 'cpu' && value !== 'cuda')
    throw new UsageError(`--peer-device: expected cpu or cuda, got '${value}'`);
  return value;
}

/** A flag's value as an integer >= 1, or a usage error naming the flag. */
export function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--${flag}: expected an integer >= 1, got '${value}'`);
  return n;
}

/** A --backend or --beside value, or a usage error naming the flag. */
function backendFlag(flag: string, value: string): BackendName {
  if (!(BACKEND_NAMES as readonly string[]).includes(value))
    throw new UsageError(`--${flag}: expected one of ${BACKEND_NAMES.join(', ')}, got '${value}'`);
  return value as BackendName;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

/** The model's training state and one timed step of it. */
class OurStep {
  private params: Params;
  private readonly x: tf.Tensor4D;
  private readonly y: tf.Tensor1D;
  private readonly step: ReturnType<typeof makeStep>;

  constructor(name: ModelName, batch: number) {
    const shape = INPUT_SHAPES[name];
    const model = createModel(name, { inputShape: shape, classes: CLASSES });
    const rng = new Rng(1);
    this.params = model.init(rng);
    const x = new Float32Array(batch * shape[0] * shape[1] * shape[2]);
    for (let i = 0; i < x.length; i++) x[i] = rng.normal();
    this.x = tf.tensor4d(x, [batch, ...shape]);
    this.y = tf.tensor1d(
      Int32Array.from({ length: batch }, (_, i) => i % CLASSES),
      'int32',
    );
    this.step = makeStep({ model });
  }

  /**
   * Runs one step and returns its wall time in ms (the loss is read, so all work is done; the
   * read is asynchronous, the only kind WebGPU has in Node).
   */
  async run(): Promise<number> {
    const t0 = performance.now();
    const r = this.step(this.params, this.x, this.y, LR);
    await r.lossSum.data();
    const ms = performance.now() - t0;
    tf.dispose([...Object.values(this.params), r.lossSum, r.correct]);
    this.params = r.params;
    return ms;
  }

  dispose(): void {
    tf.dispose([...Object.values(this.params), this.x, this.y]);
  }
}

/** bench/step_torch.py as a child process answering "N" with N step times. */
class TorchPeer {
  private constructor(
    private readonly proc: ChildProcessWithoutNullStreams,
    private readonly lines: AsyncIterator<string>,
    private readonly rl: Interface,
    readonly version: string,
    readonly threads: number,
    /** The CUDA device's name (device cuda). */
    readonly gpu: string | undefined,
    /** Whether cuDNN and products may use TF32 (device cuda; PyTorch's defaults). */
    readonly tf32: { cudnn: boolean; matmul: boolean } | undefined,
  ) {}

  static async start(
    python: string,
    model: ModelName,
    batch: number,
    threads: number,
    device: PeerDevice,
  ): Promise<TorchPeer> {
    const probe =
      'import json, torch; print(json.dumps({"torch": torch.__version__, "cuda": torch.cuda.is_available()}))';
    const check = spawnSync(python, ['-c', probe], { encoding: 'utf8' });
    if (check.error || check.status !== 0) {
      const why = check.error?.message ?? (check.stderr.trim() || `exit status ${check.status}`);
      throw new InputError(
        `--peer torch: '${python}' cannot import torch (${why}); install python3-torch or pass --python`,
      );
    }
    const found = JSON.parse(check.stdout.trim().split('\n').at(-1) ?? '{}') as {
      torch?: string;
      cuda?: boolean;
    };
    if (device === 'cuda' && found.cuda !== true) {
      throw new InputError(
        `--peer-device cuda: torch ${found.torch ?? '(unknown version)'} in '${python}' sees no CUDA device (torch.cuda.is_available() is False); use --peer-device cpu, or a CUDA build of torch on a machine with an NVIDIA GPU`,
      );
    }
    const script = fileURLToPath(new URL('../../bench/step_torch.py', import.meta.url));
    const proc = spawn(python, [
      script,
      '--model',
      model,
      '--batch',
      String(batch),
      '--threads',
      String(threads),
      '--device',
      device,
    ]);
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const rl = createInterface({ input: proc.stdout });
    const lines = rl[Symbol.asyncIterator]();
    const first = await lines.next();
    if (first.done) throw new Error(`torch peer (${script}) exited: ${stderr.trim()}`);
    const hello = JSON.parse(first.value) as {
      ready: boolean;
      torch: string;
      threads: number;
      gpu?: string;
      tf32?: { cudnn: boolean; matmul: boolean };
    };
    return new TorchPeer(proc, lines, rl, hello.torch, hello.threads, hello.gpu, hello.tf32);
  }

  async run(n: number): Promise<number[]> {
    this.proc.stdin.write(`${n}\n`);
    const line = await this.lines.next();
    if (line.done) throw new Error('torch peer exited before answering');
    return (JSON.parse(line.value) as { ms: number[] }).ms;
  }

  close(): void {
    this.rl.close();
    this.proc.stdin.end();
  }
}

async function profileStep(ours: OurStep): Promise<{ name: string; ms: number; calls: number }[]> {
  const info = await tf.profile(async () => {
    await ours.run();
  });
  const byName = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    const e = byName.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += Number(k.kernelTimeMs);
    e.calls++;
    byName.set(k.name, e);
  }
  return [...byName.entries()]
    .map(([name, e]) => ({ name, ms: Math.round(e.ms * 100) / 100, calls: e.calls }))
    .sort((a, b) => b.ms - a.ms);
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      model: { type: 'string', default: 'cnn' },
      batch: { type: 'string', default: '20' },
      steps: { type: 'string', default: '30' },
      warmup: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '5' },
      backend: { type: 'string', default: 'wasm' },
      beside: { type: 'string' },
      threads: { type: 'string', default: '0' },
      peer: { type: 'string' },
      python: { type: 'string', default: '/usr/bin/python3' },
      'peer-threads': { type: 'string', default: '2' },
      'peer-device': { type: 'string', default: 'cpu' },
      profile: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const model = values.model as ModelName;
  if (!MODEL_NAMES.includes(model)) {
    throw new UsageError(
      `--model: expected one of ${MODEL_NAMES.join(', ')}, got '${values.model}'`,
    );
  }
  const backendName = backendFlag('backend', values.backend);
  const besideName = values.beside === undefined ? undefined : backendFlag('beside', values.beside);
  if (values.peer !== undefined && values.peer !== 'torch') {
    throw new UsageError(`--peer: expected 'torch', got '${values.peer}'`);
  }
  const batch = positiveInt('batch', values.batch);
  const steps = positiveInt('steps', values.steps);
  const warmup = positiveInt('warmup', values.warmup);
  const rounds = Math.min(steps, positiveInt('rounds', values.rounds));
  const peerThreads = positiveInt('peer-threads', values['peer-threads']);
  const peerDevice = peerDeviceFlag(values['peer-device']);
  if (peerDevice === 'cuda' && values.peer === undefined)
    throw new UsageError('--peer-device cuda: needs --peer torch');

  const threads = threadsFlag(values.threads);
  // Each step's tensors live on the backend that made them: the second one is set up first, and
  // every round switches to the backend whose step it times.
  const other = besideName
    ? { backend: await initBackend(besideName, { threads }), step: new OurStep(model, batch) }
    : undefined;
  const backend = await initBackend(backendName, { threads });
  const peer = values.peer
    ? await TorchPeer.start(values.python, model, batch, peerThreads, peerDevice)
    : null;
  const ours = new OurStep(model, batch);
  const times: number[] = [];
  const otherTimes: number[] = [];
  const peerTimes: number[] = [];
  let kernels: StepBenchResult['kernels'];
  try {
    if (other) {
      await initBackend(other.backend as BackendName, { threads });
      for (let i = 0; i < warmup; i++) await other.step.run();
      await initBackend(backend as BackendName, { threads });
    }
    for (let i = 0; i < warmup; i++) await ours.run();
    if (peer) await peer.run(warmup);
    for (let r = 0; r < rounds; r++) {
      const n = Math.floor(steps / rounds) + (r < steps % rounds ? 1 : 0);
      for (let i = 0; i < n; i++) times.push(await ours.run());
      if (peer) peerTimes.push(...(await peer.run(n)));
      if (other) {
        await initBackend(other.backend as BackendName, { threads });
        for (let i = 0; i < n; i++) otherTimes.push(await other.step.run());
        await initBackend(backend as BackendName, { threads });
      }
    }
    if (values.profile) kernels = await profileStep(ours);
  } finally {
    peer?.close();
    ours.dispose();
    if (other) {
      await initBackend(other.backend as BackendName, { threads });
      other.step.dispose();
      await initBackend(backend as BackendName, { threads });
    }
  }

  const round2 = (v: number) => Math.round(v * 100) / 100;
  const result: StepBenchResult = {
    backend,
    threads: backendThreads(backend),
    model,
    batch,
    ms_per_step: round2(median(times)),
    steps: times.length,
  };
  if (peer) {
    result.peer = 'torch';
    result.peer_ms_per_step = round2(median(peerTimes));
    result.ratio = Math.round((median(times) / median(peerTimes)) * 1000) / 1000;
    result.peer_threads = peer.threads;
    result.peer_version = peer.version;
    result.peer_device = peerDevice;
    if (peer.gpu !== undefined) result.peer_gpu = peer.gpu;
    if (peer.tf32 !== undefined) result.peer_tf32 = peer.tf32;
  }
  if (backend === 'webgpu') result.adapter = webgpuAdapter();
  if (other) {
    result.beside = {
      backend: other.backend,
      threads: backendThreads(other.backend),
      ms_per_step: round2(median(otherTimes)),
      steps: otherTimes.length,
    };
  }
  if (kernels) result.kernels = kernels;

  if (values.json) {
    console.log(JSON.stringify(result));
    return 0;
  }
  console.log(
    `model ${model}, batch ${batch}, backend ${backend} (${result.threads} threads), ${times.length} steps`,
  );
  if (result.adapter) console.log(`  adapter ${result.adapter}`);
  console.log(`  ours   ${result.ms_per_step.toFixed(2)} ms/step (median)`);
  if (result.beside) {
    console.log(
      `  ${result.beside.backend.padEnd(6)} ${result.beside.ms_per_step.toFixed(2)} ms/step (median, same step on the --beside backend, ${result.beside.threads} threads)`,
    );
  }
  if (peer) {
    console.log(
      `  torch  ${result.peer_ms_per_step!.toFixed(2)} ms/step (median, ${peer.gpu ? `cuda: ${peer.gpu}` : `cpu, ${peer.threads} threads`}, torch ${peer.version})`,
    );
    console.log(`  ratio  ${result.ratio!.toFixed(3)} (ours / torch)`);
  }
  if (kernels) {
    console.log('  kernels (one profiled step):');
    for (const k of kernels)
      console.log(`    ${k.name.padEnd(24)} ${k.ms.toFixed(2).padStart(8)} ms  x${k.calls}`);
  }
  return 0;
}
