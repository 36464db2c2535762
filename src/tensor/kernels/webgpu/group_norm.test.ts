/**
 * Our webgpu GroupNorm kernels (forward and gradient) against the cpu backend's, through
 * groupNorm and tf.valueAndGrads, on a WebGPU adapter (lavapipe where there is no GPU; skipped,
 * with the reason printed, where there is none).
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../backend.js';
import { Rng } from '../../rng.js';
import { webgpuAvailable } from '../../webgpu.js';
import { randomTensor, relativeError } from '../compare.js';
import { groupNorm } from '../group_norm.js';
import { channelLanes, groupNormConfigs } from './group_norm.js';

const available = await webgpuAvailable();
if (!available.ok) console.warn(`webgpu kernel tests skipped: ${available.reason}`);

interface Case {
  shape: [number, number, number, number];
  groups: number;
  /** Added to x (values otherwise in about [-3, 3]). */
  mean: number;
}

const CASES: Case[] = [
  { shape: [1, 3, 3, 2], groups: 1, mean: 0 },
  { shape: [1, 3, 3, 2], groups: 2, mean: 0 },
  { shape: [2, 5, 3, 6], groups: 2, mean: 0 },
  { shape: [3, 7, 5, 12], groups: 4, mean: 0.5 },
  { shape: [2, 4, 4, 64], groups: 1, mean: 0 },
  { shape: [2, 9, 9, 32], groups: 2, mean: 0 },
  { shape: [4, 5, 5, 24], groups: 4, mean: 0 },
  // A mean far from 0 against a spread of ~1.7: float32 E[x^2] - mean^2 would lose the variance.
  { shape: [2, 5, 7, 8], groups: 2, mean: 1000 },
  { shape: [1, 11, 3, 64], groups: 4, mean: -300 },
  // resnet18gn's last stage (256 channels per group), and a group wider than a workgroup.
  { shape: [2, 3, 3, 512], groups: 2, mean: 0 },
  { shape: [1, 3, 3, 520], groups: 1, mean: 0 },
];

/** groupNorm's output, loss sum(y * r) and the gradients in x, scale and offset, read back. */
async function lossAndGrads(
  backend: 'cpu' | 'webgpu',
  c: Case,
  seed: number,
): Promise<Float32Array[]> {
  await initBackend(backend);
  const before = tf.memory().numTensors;
  const rng = Rng.derive(43, seed);
  const channels = c.shape[3];
  const [x, scale, offset, r] = tf.tidy(() => [
    tf.add(tf.mul(randomTensor(rng, c.shape), 3), c.mean),
    tf.add(randomTensor(rng, [channels]), 1),
    randomTensor(rng, [channels]),
    randomTensor(rng, c.shape),
  ]) as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor];
  const f = (a: tf.Tensor, s: tf.Tensor, o: tf.Tensor) =>
    tf.sum(tf.mul(groupNorm(a as tf.Tensor4D, s as tf.Tensor1D, o as tf.Tensor1D, c.groups), r));
  const { value, grads } = tf.valueAndGrads(f)([x, scale, offset]);
  const y = groupNorm(x, scale, offset, c.groups);
  const outs = [y, value, ...grads];
  const values: Float32Array[] = [];
  for (const o of outs) values.push((await o.data()) as Float32Array);
  tf.dispose([x, scale, offset, r, ...outs]);
  expect(tf.memory().numTensors).toBe(before);
  return values;
}

const label = (c: Case) => `x [${c.shape}], ${c.groups} groups, mean ${c.mean}`;

describe('channelLanes', () => {
  it('is the largest power of two up to the channels per group, at most 256', () => {
    expect([1, 2, 3, 6, 8, 24, 256, 520].map(channelLanes)).toEqual([1, 2, 2, 4, 8, 16, 256, 256]);
  });
});

describe.skipIf(!available.ok)('FedslrGroupNorm and its gradient on webgpu', () => {
  it('are the kernels groupNorm runs, forward and backward', async () => {
    await initBackend('webgpu');
    expect(tf.getKernel('FedslrGroupNorm', 'webgpu')).toBe(groupNormConfigs[0]);
    expect(tf.getKernel('FedslrGroupNormGrad', 'webgpu')).toBe(groupNormConfigs[1]);
    const x = tf.ones([1, 2, 2, 4]) as tf.Tensor4D;
    const s = tf.ones([4]) as tf.Tensor1D;
    const profile = await tf.profile(() =>
      tf.grads((a: tf.Tensor) => tf.sum(groupNorm(a as tf.Tensor4D, s, s, 2)))([x]),
    );
    expect(profile.kernelNames).toContain('FedslrGroupNorm');
    expect(profile.kernelNames).toContain('FedslrGroupNormGrad');
    // Not the tf-ops formulation's moments.
    expect(profile.kernelNames).not.toContain('Mean');
    tf.dispose([x, s, ...(profile.result as tf.Tensor[])]);
  });

  it.each(CASES.map((c, i) => [label(c), c, i] as const))(
    'equal the cpu kernels: %s',
    async (_, c, i) => {
      const want = await lossAndGrads('cpu', c, i);
      const got = await lossAndGrads('webgpu', c, i);
      const names = ['y', 'loss', 'dx', 'dscale', 'doffset'];
      // float32 sums in another order (float64 statistics on cpu); and with a large mean, x
      // carries float32 rounding of about |mean| * 6e-8, which rstd * scale carries into y and
      // the two kernels round differently (the cpu's y = x * a + b cancels there).
      const tolerance = 2e-5 * (1 + Math.abs(c.mean) / 100);
      got.forEach((v, j) => expect(relativeError(v, want[j]!), names[j]).toBeLessThan(tolerance));
    },
  );
});
