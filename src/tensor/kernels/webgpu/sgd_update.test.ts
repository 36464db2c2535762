/**
 * Our webgpu FedslrSgdUpdate against the tf-ops reference on the cpu backend, on a WebGPU adapter
 * (lavapipe where there is no GPU; skipped, with the reason printed, where there is none).
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../backend.js';
import { Rng } from '../../rng.js';
import { webgpuAvailable } from '../../webgpu.js';
import { randomValues, relativeError } from '../compare.js';
import { sgdUpdate, sgdUpdateReference, type UpdateTerm } from '../sgd_update.js';
import { sgdUpdateConfig } from './sgd_update.js';

const available = await webgpuAvailable();
if (!available.ok) console.warn(`webgpu kernel tests skipped: ${available.reason}`);

/** Every kind of term, alone and as FedSLR's stage 1, with and without a threshold. */
async function updates(
  backend: 'cpu' | 'webgpu',
  update: typeof sgdUpdate,
  shape: number[],
  seed: number,
): Promise<Float32Array[]> {
  await initBackend(backend);
  const before = tf.memory().numTensors;
  const rng = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const [w, g, c, anchor] = [0.05, 1, 1, 1].map((s) =>
    tf.tidy(() => tf.mul(tf.tensor(randomValues(rng, n), shape), s)),
  ) as tf.Tensor[];
  const stage1: UpdateTerm[] = [
    { kind: 'scaled', x: c!, coef: -1 },
    { kind: 'pull', x: anchor!, coef: 0.1 },
    { kind: 'decay', coef: 1e-3 },
  ];
  const outs = [
    update(w!, g!, [], 0.1),
    update(w!, g!, stage1, 0.07),
    update(w!, g!, [{ kind: 'decay', coef: 5e-4 }], 0.1, 0.001),
    update(w!, g!, stage1, 0.3, 0.02),
    update(w!, g!, [{ kind: 'pull', x: anchor!, coef: 2 }], 1e-2),
  ];
  const values: Float32Array[] = [];
  for (const o of outs) values.push((await o.data()) as Float32Array);
  tf.dispose([w!, g!, c!, anchor!, ...outs]);
  expect(tf.memory().numTensors).toBe(before);
  return values;
}

describe.skipIf(!available.ok)('FedslrSgdUpdate on webgpu', () => {
  it('is the kernel sgdUpdate runs', async () => {
    await initBackend('webgpu');
    expect(tf.getKernel('FedslrSgdUpdate', 'webgpu')).toBe(sgdUpdateConfig);
  });

  const shapes = [[1], [7], [5, 3], [2, 3, 3, 8], [4100], [33, 130]];
  it.each(shapes.map((s, i) => [JSON.stringify(s), s, i] as const))(
    'equals the tf-ops reference on cpu: shape %s',
    async (_, shape, i) => {
      const want = await updates('cpu', sgdUpdateReference, shape, 50 + i);
      const got = await updates('webgpu', sgdUpdate, shape, 50 + i);
      got.forEach((v, j) => {
        // float32 either way; a GPU may fuse a multiply-add, so the last bit can differ.
        expect(relativeError(v, want[j]!)).toBeLessThan(1e-6);
      });
      // The threshold makes exact zeros where the reference has them (away from the edge).
      const zeros = (v: Float32Array) => v.filter((x) => x === 0).length;
      expect(zeros(got[3]!)).toBe(zeros(want[3]!));
    },
  );
});
