import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../tensor/backend.js';
import { disposeParams, paramCount, toArrays } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { createModel, MODEL_NAMES } from './index.js';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('models', () => {
  it('have the known parameter counts', () => {
    expect(
      paramCount(createModel('resnet18gn', { inputShape: [32, 32, 3], classes: 100 }).spec),
    ).toBe(11_220_032);
    expect(paramCount(createModel('cnn', { inputShape: [28, 28, 1], classes: 10 }).spec)).toBe(
      1_663_370,
    );
    // 784*200+200 + 200*200+200 + 200*10+10
    expect(paramCount(createModel('mlp', { inputShape: [28, 28, 1], classes: 10 }).spec)).toBe(
      199_210,
    );
  });

  it('resnet8gn has three stages with shortcuts where the shape changes', () => {
    const m = createModel('resnet8gn', { inputShape: [32, 32, 3], classes: 10 });
    const names = m.spec.map((p) => p.name);
    expect(names.filter((n) => n.endsWith('.short.kernel'))).toEqual([
      's2.b1.short.kernel',
      's3.b1.short.kernel',
    ]);
    expect(names.some((n) => n.endsWith('.bias'))).toBe(false);
    expect(m.spec.find((p) => p.name === 'fc.kernel')!.shape).toEqual([64, 10]);
  });

  it('give logits of the right shape without leaking tensors', () => {
    for (const name of MODEL_NAMES) {
      const shape = name.startsWith('resnet') ? ([16, 16, 3] as const) : ([28, 28, 1] as const);
      const m = createModel(name, { inputShape: shape, classes: 7 });
      const params = m.init(new Rng(1));
      const before = tf.memory().numTensors;
      const x = tf.randomNormal([3, ...shape]) as tf.Tensor4D;
      const y = m.forward(params, x);
      expect(y.shape).toEqual([3, 7]);
      expect(Array.from(y.dataSync()).every(Number.isFinite)).toBe(true);
      tf.dispose([x, y]);
      expect(tf.memory().numTensors).toBe(before);
      disposeParams(params);
    }
  });

  it('initialise deterministically from the seed, with PyTorch default bounds', () => {
    const m = createModel('cnn', { inputShape: [28, 28, 1], classes: 10 });
    const a = m.init(new Rng(5));
    const b = m.init(new Rng(5));
    const c = m.init(new Rng(6));
    const [ra, rb, rc] = [toArrays(a), toArrays(b), toArrays(c)];
    const bytes = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    expect(bytes(ra['fc1.kernel']!.data).equals(bytes(rb['fc1.kernel']!.data))).toBe(true);
    expect(bytes(ra['fc1.kernel']!.data).equals(bytes(rc['fc1.kernel']!.data))).toBe(false);
    const bound = 1 / Math.sqrt(5 * 5 * 32);
    const w = ra['conv2.kernel']!.data;
    const maxAbs = w.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(maxAbs).toBeLessThanOrEqual(bound);
    expect(maxAbs).toBeGreaterThan(0.95 * bound);
    disposeParams(a, b, c);
  });

  it('reject inputs of the wrong shape, naming the expected one', () => {
    const m = createModel('cnn', { inputShape: [28, 28, 1], classes: 10 });
    const p = m.init(new Rng(1));
    const x = tf.zeros([2, 32, 32, 3]) as tf.Tensor4D;
    expect(() => m.forward(p, x)).toThrow(/expected input \[batch, 28, 28, 1\]/);
    tf.dispose(x);
    disposeParams(p);
  });
});
