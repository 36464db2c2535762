import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../backend.js';
import { Rng } from '../rng.js';
import { onBoth, randomTensor, relativeError } from './compare.js';

type Pad = 'same' | 'valid' | number | [[0, 0], [number, number], [number, number], [0, 0]];

interface Case {
  n: number;
  h: number;
  w: number;
  ci: number;
  co: number;
  kh: number;
  kw: number;
  stride: [number, number];
  pad: Pad;
  rounding?: 'floor' | 'round' | 'ceil';
}

const explicit = (t: number, b: number, l: number, r: number): Pad => [
  [0, 0],
  [t, b],
  [l, r],
  [0, 0],
];

/** Hand-picked cases: every filter size, stride, padding kind and an odd size each. */
const CASES: Case[] = [
  { n: 1, h: 5, w: 5, ci: 1, co: 1, kh: 1, kw: 1, stride: [1, 1], pad: 'valid' },
  { n: 3, h: 7, w: 6, ci: 4, co: 5, kh: 1, kw: 1, stride: [2, 2], pad: 'valid' },
  { n: 2, h: 9, w: 9, ci: 3, co: 8, kh: 3, kw: 3, stride: [1, 1], pad: 'same' },
  { n: 2, h: 7, w: 8, ci: 5, co: 6, kh: 3, kw: 3, stride: [2, 2], pad: 'same' },
  { n: 1, h: 8, w: 8, ci: 16, co: 32, kh: 3, kw: 3, stride: [2, 2], pad: explicit(1, 1, 1, 1) },
  { n: 2, h: 8, w: 9, ci: 2, co: 3, kh: 3, kw: 3, stride: [2, 2], pad: 'valid' },
  { n: 4, h: 12, w: 12, ci: 1, co: 32, kh: 5, kw: 5, stride: [1, 1], pad: explicit(2, 2, 2, 2) },
  { n: 2, h: 10, w: 11, ci: 6, co: 4, kh: 5, kw: 5, stride: [1, 1], pad: 'same' },
  { n: 1, h: 11, w: 11, ci: 3, co: 2, kh: 5, kw: 5, stride: [2, 2], pad: 'valid' },
  { n: 2, h: 9, w: 10, ci: 4, co: 3, kh: 5, kw: 5, stride: [2, 2], pad: 'same' },
  { n: 2, h: 9, w: 7, ci: 3, co: 4, kh: 5, kw: 3, stride: [2, 1], pad: explicit(2, 0, 0, 3) },
  { n: 1, h: 6, w: 6, ci: 2, co: 2, kh: 3, kw: 3, stride: [1, 1], pad: explicit(3, 4, 0, 1) },
  { n: 3, h: 8, w: 8, ci: 4, co: 4, kh: 2, kw: 2, stride: [2, 2], pad: 'valid' },
  { n: 2, h: 7, w: 7, ci: 3, co: 5, kh: 3, kw: 3, stride: [2, 2], pad: 1, rounding: 'round' },
  { n: 1, h: 6, w: 6, ci: 64, co: 64, kh: 3, kw: 3, stride: [1, 1], pad: 'same' },
  { n: 2, h: 8, w: 8, ci: 32, co: 64, kh: 1, kw: 1, stride: [2, 2], pad: 'valid' },
  { n: 2, h: 7, w: 6, ci: 3, co: 4, kh: 1, kw: 1, stride: [2, 2], pad: explicit(1, 0, 1, 2) },
  { n: 1, h: 5, w: 8, ci: 2, co: 3, kh: 1, kw: 1, stride: [1, 2], pad: explicit(2, 1, 0, 1) },
  { n: 2, h: 1, w: 1, ci: 2, co: 3, kh: 1, kw: 1, stride: [2, 2], pad: explicit(1, 1, 1, 1) },
];

/** Seeded random cases (small, so the cpu reference stays fast). */
function randomCases(count: number): Case[] {
  const rng = new Rng(7);
  const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)]!;
  const out: Case[] = [];
  while (out.length < count) {
    const k = pick([1, 3, 5]);
    const s = pick([1, 2]);
    const h = k + rng.int(8);
    const w = k + rng.int(8);
    const p = rng.int(k);
    const pad = pick<Pad>(['same', 'valid', explicit(p, rng.int(k), rng.int(k), p)]);
    out.push({
      n: 1 + rng.int(3),
      h,
      w,
      ci: 1 + rng.int(12),
      co: 1 + rng.int(12),
      kh: k,
      kw: k,
      stride: [s, s],
      pad,
    });
  }
  return out;
}

const label = (c: Case) =>
  `x[${c.n},${c.h},${c.w},${c.ci}] k${c.kh}x${c.kw} co${c.co} s${c.stride} pad ${JSON.stringify(c.pad)}`;

function outShape(c: Case): [number, number, number, number] {
  const info = tf.backend_util.computeConv2DInfo(
    [c.n, c.h, c.w, c.ci],
    [c.kh, c.kw, c.ci, c.co],
    c.stride,
    1,
    c.pad,
    c.rounding,
  );
  return info.outShape;
}

const TOL = 1e-5;
const ALL = [...CASES, ...randomCases(24)];

describe('Conv2DBackpropFilter on wasm', () => {
  it.each(ALL.map((c, i) => [label(c), c, i] as const))('equals cpu: %s', async (_, c, i) => {
    const { cpu, wasm } = await onBoth(() => {
      const rng = Rng.derive(11, i);
      const x = randomTensor(rng, [c.n, c.h, c.w, c.ci]);
      const dy = randomTensor(rng, outShape(c));
      return tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
        strides: c.stride,
        pad: c.pad,
        dataFormat: 'NHWC',
        dimRoundingMode: c.rounding,
        filterShape: [c.kh, c.kw, c.ci, c.co],
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
    });
    expect(wasm.shapes).toEqual([[c.kh, c.kw, c.ci, c.co]]);
    expect(relativeError(wasm.values[0]!, cpu.values[0]!)).toBeLessThan(TOL);
  });
});

describe('Conv2DBackpropInput on wasm', () => {
  it.each(ALL.map((c, i) => [label(c), c, i] as const))('equals cpu: %s', async (_, c, i) => {
    const { cpu, wasm } = await onBoth(() => {
      const rng = Rng.derive(12, i);
      const filter = randomTensor(rng, [c.kh, c.kw, c.ci, c.co]);
      const dy = randomTensor(rng, outShape(c));
      return tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, {
        strides: c.stride,
        pad: c.pad,
        dataFormat: 'NHWC',
        dimRoundingMode: c.rounding,
        inputShape: [c.n, c.h, c.w, c.ci],
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
    });
    expect(wasm.shapes).toEqual([[c.n, c.h, c.w, c.ci]]);
    expect(relativeError(wasm.values[0]!, cpu.values[0]!)).toBeLessThan(TOL);
  });

  it('rejects NCHW with a message naming the kernel', async () => {
    await initBackend('wasm');
    const dy = tf.zeros([1, 2, 2, 1]);
    const filter = tf.zeros([1, 1, 1, 1]);
    expect(() =>
      tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, {
        strides: 1,
        pad: 'valid',
        dataFormat: 'NCHW',
        inputShape: [1, 2, 2, 1],
      } as unknown as tf.NamedAttrMap),
    ).toThrow(/Conv2DBackpropInput.*NHWC/);
    tf.dispose([dy, filter]);
  });
});

describe('conv2d gradients through tf.grads on wasm', () => {
  it.each(CASES.map((c, i) => [label(c), c, i] as const))('equal cpu: %s', async (_, c, i) => {
    const { cpu, wasm } = await onBoth(() => {
      const rng = Rng.derive(13, i);
      const x = randomTensor(rng, [c.n, c.h, c.w, c.ci]);
      const w = randomTensor(rng, [c.kh, c.kw, c.ci, c.co]);
      const r = randomTensor(rng, outShape(c));
      const f = (a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(
          tf.mul(
            tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad, 'NHWC', 1, c.rounding),
            r,
          ),
        );
      return tf.grads(f)([x, w]);
    });
    expect(relativeError(wasm.values[0]!, cpu.values[0]!)).toBeLessThan(TOL);
    expect(relativeError(wasm.values[1]!, cpu.values[1]!)).toBeLessThan(TOL);
  });

  it('match central finite differences (the loss is linear in each argument)', async () => {
    await initBackend('wasm');
    const before = tf.memory().numTensors;
    const c = CASES[3]!;
    const xShape = [c.n, c.h, c.w, c.ci];
    const wShape = [c.kh, c.kw, c.ci, c.co];
    const [fdX, gX, fdW, gW] = tf.tidy(() => {
      const rng = new Rng(5);
      const [x, w, r, dx, dw] = [xShape, wShape, outShape(c), xShape, wShape].map((s) =>
        randomTensor(rng, s),
      ) as tf.Tensor4D[];
      const f = (a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), r!));
      const [gx, gw] = tf.grads(f)([x!, w!]);
      const value = (t: tf.Tensor) => t.dataSync()[0]!;
      const eps = 0.5;
      const step = (t: tf.Tensor, d: tf.Tensor, sign: number) => tf.add(t, tf.mul(d, sign * eps));
      return [
        (value(f(step(x!, dx!, 1), w!)) - value(f(step(x!, dx!, -1), w!))) / (2 * eps),
        value(tf.sum(tf.mul(gx!, dx!))),
        (value(f(x!, step(w!, dw!, 1))) - value(f(x!, step(w!, dw!, -1)))) / (2 * eps),
        value(tf.sum(tf.mul(gw!, dw!))),
      ];
    });
    expect(fdX).toBeCloseTo(gX!, 3);
    expect(fdW).toBeCloseTo(gW!, 3);
    expect(tf.memory().numTensors).toBe(before);
  });
});
