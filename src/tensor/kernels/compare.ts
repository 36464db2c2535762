/**
 * Test support: run the same computation on the cpu backend (the reference) and on the wasm
 * backend (with our kernels), checking that the wasm run leaves no tensor or buffer behind.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend.js';
import type { Rng } from '../rng.js';

/** Seeded values uniform in [-1, 1). */
export function randomValues(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = 2 * rng.uniform() - 1;
  return out;
}

export function randomTensor(rng: Rng, shape: number[]): tf.Tensor {
  return tf.tensor(
    randomValues(
      rng,
      shape.reduce((a, b) => a * b, 1),
    ),
    shape,
    'float32',
  );
}

export interface Outputs {
  shapes: number[][];
  values: Float32Array[];
}

async function runOn(backend: 'cpu' | 'wasm', f: () => tf.Tensor | tf.Tensor[]): Promise<Outputs> {
  await initBackend(backend);
  const tensorsBefore = tf.memory().numTensors;
  const buffersBefore = tf.engine().backend.numDataIds();
  const out = tf.tidy(f);
  const list = Array.isArray(out) ? out : [out];
  const result = {
    shapes: list.map((t) => t.shape),
    values: list.map((t) => t.dataSync() as Float32Array),
  };
  tf.dispose(list);
  const tensorsAfter = tf.memory().numTensors;
  const buffersAfter = tf.engine().backend.numDataIds();
  if (tensorsAfter !== tensorsBefore || buffersAfter !== buffersBefore) {
    throw new Error(
      `${backend}: live tensors ${tensorsBefore} -> ${tensorsAfter}, data buffers ${buffersBefore} -> ${buffersAfter}`,
    );
  }
  return result;
}

/** Runs `f` on cpu and on wasm (inputs must be created inside `f`, from fixed values). */
export async function onBoth(
  f: () => tf.Tensor | tf.Tensor[],
): Promise<{ cpu: Outputs; wasm: Outputs }> {
  const cpu = await runOn('cpu', f);
  const wasm = await runOn('wasm', f);
  return { cpu, wasm };
}

/** Largest |a - b| relative to the largest |b| (at least 1). */
export function relativeError(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}
