/**
 * Our webgpu Conv2DBackpropFilter against the cpu backend, on a WebGPU adapter (lavapipe where
 * there is no GPU; skipped, with the reason printed, where there is none).
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../backend.js';
import { Rng } from '../../rng.js';
import { webgpuAvailable } from '../../webgpu.js';
import { randomValues, relativeError } from '../compare.js';
import { conv2dBackpropFilterConfig, splitK } from './conv2d_backprop_filter.js';
import { registerWebgpuKernels } from './register.js';

const available = await webgpuAvailable();
if (!available.ok) console.warn(`webgpu kernel tests skipped: ${available.reason}`);

type Pad = 'same' | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]];
interface Case {
  n: number;
  h: number;
  w: number;
  ci: number;
  co: number;
  k: [number, number];
  stride: [number, number];
  pad: Pad;
}

const CASES: Case[] = [
  { n: 1, h: 5, w: 5, ci: 1, co: 1, k: [1, 1], stride: [1, 1], pad: 'valid' },
  { n: 3, h: 7, w: 6, ci: 4, co: 5, k: [1, 1], stride: [2, 2], pad: 'valid' },
  { n: 2, h: 9, w: 9, ci: 3, co: 8, k: [3, 3], stride: [1, 1], pad: 'same' },
  { n: 2, h: 7, w: 8, ci: 5, co: 6, k: [3, 3], stride: [2, 2], pad: 'same' },
  {
    n: 2,
    h: 9,
    w: 7,
    ci: 3,
    co: 4,
    k: [5, 3],
    stride: [2, 1],
    pad: [
      [0, 0],
      [2, 0],
      [0, 3],
      [0, 0],
    ],
  },
  { n: 1, h: 6, w: 6, ci: 64, co: 64, k: [3, 3], stride: [1, 1], pad: 'same' },
  { n: 2, h: 8, w: 8, ci: 33, co: 65, k: [3, 3], stride: [2, 2], pad: 'same' },
  // The cnn's first layer at batch 20 (one tile, many K slices); its second (several tiles;
  // batch 3, as the cpu reference takes ~50 s at 20).
  { n: 20, h: 28, w: 28, ci: 1, co: 32, k: [5, 5], stride: [1, 1], pad: 'same' },
  { n: 3, h: 14, w: 14, ci: 32, co: 64, k: [5, 5], stride: [1, 1], pad: 'same' },
];

/** Seeded random cases: odd sizes, strides 1-2, every padding kind. */
function randomCases(count: number): Case[] {
  const rng = new Rng(17);
  const out: Case[] = [];
  while (out.length < count) {
    const k = [1, 3, 5][rng.int(3)]!;
    const p = rng.int(k);
    out.push({
      n: 1 + rng.int(4),
      h: k + rng.int(9),
      w: k + rng.int(9),
      ci: 1 + rng.int(40),
      co: 1 + rng.int(40),
      k: [k, k],
      stride: [1 + rng.int(2), 1 + rng.int(2)] as [number, number],
      pad: (
        [
          'same',
          'valid',
          [
            [0, 0],
            [p, rng.int(k)],
            [rng.int(k), p],
            [0, 0],
          ],
        ] as Pad[]
      )[rng.int(3)]!,
    });
  }
  return out;
}

const label = (c: Case) =>
  `x[${c.n},${c.h},${c.w},${c.ci}] k${c.k} co${c.co} s${c.stride} pad ${JSON.stringify(c.pad)}`;

/** dW on `backend` from fixed values, checking that nothing is left behind. */
async function filterGradient(
  backend: 'cpu' | 'webgpu',
  c: Case,
  seed: number,
): Promise<Float32Array> {
  await initBackend(backend);
  const before = tf.memory().numTensors;
  const info = tf.backend_util.computeConv2DInfo(
    [c.n, c.h, c.w, c.ci],
    [c.k[0], c.k[1], c.ci, c.co],
    c.stride,
    1,
    c.pad,
  );
  const rng = new Rng(seed);
  const x = tf.tensor4d(randomValues(rng, c.n * c.h * c.w * c.ci), [c.n, c.h, c.w, c.ci]);
  const dy = tf.tensor4d(
    randomValues(
      rng,
      info.outShape.reduce((a, b) => a * b),
    ),
    info.outShape,
  );
  const dw = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
    strides: c.stride,
    pad: c.pad,
    dataFormat: 'NHWC',
    filterShape: [c.k[0], c.k[1], c.ci, c.co],
  } as unknown as tf.NamedAttrMap) as tf.Tensor;
  expect(dw.shape).toEqual([c.k[0], c.k[1], c.ci, c.co]);
  const values = (await dw.data()) as Float32Array;
  tf.dispose([x, dy, dw]);
  expect(tf.memory().numTensors).toBe(before);
  return values;
}

describe('splitK', () => {
  it('cuts K into tile-multiple slices that cover it, more of them when dW has few tiles', () => {
    for (const [m, n, k] of [
      [25, 32, 15680],
      [800, 64, 3920],
      [9, 1, 20],
      [4608, 512, 80],
    ] as const) {
      const { slices, chunk } = splitK(m, n, k);
      expect(chunk % 32).toBe(0);
      expect(slices * chunk).toBeGreaterThanOrEqual(k);
      expect((slices - 1) * chunk).toBeLessThan(k);
    }
    expect(splitK(25, 32, 15680).slices).toBeGreaterThan(splitK(800, 64, 15680).slices);
    expect(splitK(9, 1, 20).slices).toBe(1);
  });
});

describe.skipIf(!available.ok)('Conv2DBackpropFilter on webgpu', () => {
  // Ours, as on a GPU (on a software adapter, initBackend keeps tfjs's kernel).
  if (available.ok) registerWebgpuKernels(false);
  it('is the kernel registered', () => {
    expect(tf.getKernel('Conv2DBackpropFilter', 'webgpu')).toBe(conv2dBackpropFilterConfig);
  });

  const all = [...CASES, ...randomCases(12)];
  it.each(all.map((c, i) => [label(c), c, i] as const))('equals cpu: %s', async (_, c, i) => {
    const cpu = await filterGradient('cpu', c, 100 + i);
    const gpu = await filterGradient('webgpu', c, 100 + i);
    // float32 sums of up to 15680 products in another order (slices, then their sum).
    expect(relativeError(gpu, cpu)).toBeLessThan(1e-5);
  });
});
