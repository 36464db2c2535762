/**
 * sgdStep's contract beyond its floats (train.test.ts checks those): a step made only of fusable
 * pieces runs one fused kernel per tensor and never the pieces' own tf-op code, any other piece
 * runs as written, and a bad threshold reaches the prox map's own check. Kernels are read from
 * tf.profile, so these hold whatever the backend (the fused kernel exists on wasm and cpu).
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../tensor/backend.js';
import { disposeParams, type Params } from '../tensor/params.js';
import {
  addDecayedWeights,
  addLinear,
  chain,
  type GradTransform,
  l1ProxMap,
  type ProxMap,
  proximalPull,
  sgdStep,
} from './transforms.js';

beforeAll(async () => {
  await initBackend('wasm');
});

const FUSED = 'FedslrSgdUpdate';
const p = (o: Record<string, number[]>): Params =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k, tf.tensor1d(v)]));
const vals = (o: Params) =>
  Object.fromEntries(Object.entries(o).map(([k, t]) => [k, Array.from(t.dataSync())]));
const close = (o: Record<string, number[]>) =>
  Object.fromEntries(Object.entries(o).map(([k, xs]) => [k, xs.map((x) => expect.closeTo(x, 6))]));

/** The kernels one step runs, and its result as plain numbers. */
async function profileStep(
  transform: GradTransform | undefined,
  prox: ProxMap | undefined,
  params: Params,
  grads: Params,
  lr: number,
) {
  let out: Record<string, number[]> = {};
  const info = await tf.profile(() => {
    const next = tf.tidy(() => sgdStep(transform, prox)(params, grads, lr));
    out = vals(next);
    disposeParams(next);
  });
  return { kernels: info.kernels.map((k) => k.name), out };
}

/** The piece with its `update` or `apply` counting calls; `fused` kept as is. */
function counted<T extends GradTransform | ProxMap>(piece: T): { piece: T; calls: () => number } {
  let n = 0;
  const wrapped =
    'update' in piece
      ? {
          ...piece,
          update: (g: Params, w: Params) => {
            n++;
            return piece.update(g, w);
          },
        }
      : {
          ...piece,
          apply: (w: Params, lr: number) => {
            n++;
            return piece.apply(w, lr);
          },
        };
  return { piece: wrapped as T, calls: () => n };
}

describe('sgdStep', () => {
  const w = p({ a: [0.5, -1, 0.02], b: [2, 0] });
  const g = p({ a: [1, 2, 0], b: [3, -4] });
  const anchor = p({ a: [1, 1, 1] });

  it('runs one fused kernel per tensor, and not the transform’s own ops, for fusable pieces', async () => {
    const t = counted(chain(proximalPull(0.5, anchor), addDecayedWeights(0.1)));
    const prox = counted(l1ProxMap(1, ['a']));
    const r = await profileStep(t.piece, prox.piece, w, g, 0.1);
    expect(r.kernels).toEqual([FUSED, FUSED]);
    expect([t.calls(), prox.calls()]).toEqual([0, 0]);
    // a: v = w - 0.1 (g + 0.5 (w - 1) + 0.1 w), then soft-threshold by 0.1; b: no pull, no prox
    const v = (wi: number, gi: number, pull: number) => wi - 0.1 * (gi + pull + 0.1 * wi);
    const soft = (x: number) => Math.sign(x) * Math.max(Math.abs(x) - 0.1, 0);
    expect(r.out).toEqual(
      close({
        a: [soft(v(0.5, 1, -0.25)), soft(v(-1, 2, -1)), soft(v(0.02, 0, -0.49))],
        b: [v(2, 3, 0), v(0, -4, 0)],
      }),
    );
  });

  it('fuses a zero threshold too (lambda 0 is a valid L1 weight)', async () => {
    const r = await profileStep(undefined, l1ProxMap(0), w, g, 0.5);
    expect(r.kernels).toEqual([FUSED, FUSED]);
    expect(r.out).toEqual(close({ a: [0, -2, 0.02], b: [0.5, 2] }));
  });

  it('adds terms only to the tensors being trained, whatever else the anchor holds', () => {
    const some = { a: g['a']! };
    const out = tf.tidy(() => proximalPull(0.5, { ...anchor, c: w['b']! }).update(some, w));
    expect(Object.keys(out)).toEqual(['a']);
    expect(vals(out)).toEqual(close({ a: [0.75, 1, -0.49] }));
    disposeParams(out);
  });

  it('runs plain SGD as the fused kernel too', async () => {
    const r = await profileStep(undefined, undefined, w, g, 0.5);
    expect(r.kernels).toEqual([FUSED, FUSED]);
    expect(r.out).toEqual(close({ a: [0, -2, 0.02], b: [0.5, 2] }));
  });

  it('applies a transform without fused terms as written, with no fused kernel', async () => {
    const pull = proximalPull(0.5, anchor);
    const t = counted<GradTransform>({ name: 'opaque', update: pull.update });
    const r = await profileStep(t.piece, undefined, w, g, 0.1);
    expect(t.calls()).toBe(1);
    expect(r.kernels).not.toContain(FUSED);
    expect(r.out).toEqual(
      close({ a: [0.5 - 0.1 * 0.75, -1 - 0.1 * 1, 0.02 - 0.1 * -0.49], b: [1.7, 0.4] }),
    );
  });

  it('applies a prox map without a fused form after the fused update', async () => {
    const clip = counted<ProxMap>({
      name: 'clip',
      apply: (q) =>
        Object.fromEntries(Object.entries(q).map(([k, x]) => [k, tf.clipByValue(x, -1, 1)])),
    });
    const r = await profileStep(addDecayedWeights(0), clip.piece, w, g, 0.5);
    expect(clip.calls()).toBe(1);
    expect(r.kernels.filter((k) => k === FUSED)).toHaveLength(2);
    expect(r.kernels).toContain('ClipByValue');
    expect(r.out).toEqual(close({ a: [0, -1, 0.02], b: [0.5, 1] }));
  });

  it('leaves a bad threshold or an unknown name to the L1 map’s own check', () => {
    for (const [prox, message] of [
      [l1ProxMap(-1), /proxL1: tau must be a finite number >= 0, got -0.1/],
      [l1ProxMap(Number.POSITIVE_INFINITY), /proxL1: tau must be a finite number >= 0, got Inf/],
      [l1ProxMap(1, ['a', 'nope']), /proxL1: no parameter 'nope'/],
    ] as const) {
      const step = sgdStep(addDecayedWeights(0.1), prox);
      expect(() => tf.tidy(() => step(w, g, 0.1))).toThrow(message);
    }
  });

  it('names each piece, and a chain by its pieces in order', () => {
    expect(chain(addLinear(anchor, 1), proximalPull(1, anchor), addDecayedWeights(1)).name).toBe(
      'chain(addLinear, proximalPull, addDecayedWeights)',
    );
    expect(l1ProxMap(1).name).toBe('l1ProxMap');
    expect(l1ProxMap(1).fused).toEqual({ kind: 'l1', lambda: 1 });
    expect(chain(addLinear(anchor, 2)).fused).toEqual([
      { kind: 'scaled', tensors: anchor, coef: 2 },
    ]);
  });
});
