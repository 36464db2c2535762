/**
 * Functional models: an ordered parameter spec, a seeded initialiser and a pure
 * `forward(params, x)`. Inputs are NHWC float32 batches; forward returns logits [batch, classes].
 */
import * as tf from '@tensorflow/tfjs-core';
import { groupNorm as fusedGroupNorm } from '../tensor/kernels/group_norm.js';
import type { ParamInfo, ParamSpec, Params, Role } from '../tensor/params.js';
import { sizeOf } from '../tensor/params.js';
import type { Rng } from '../tensor/rng.js';

export type InputShape = readonly [height: number, width: number, channels: number];

export interface Model {
  readonly name: string;
  readonly spec: ParamSpec;
  readonly inputShape: InputShape;
  readonly classes: number;
  /** Fresh parameters (PyTorch's default initialisation), drawn from `rng`. */
  init(rng: Rng): Params;
  /** Logits for a batch `x` of shape [batch, h, w, c]. */
  forward(params: Params, x: tf.Tensor4D): tf.Tensor2D;
}

/** Collects a spec and the fan-in used to initialise each tensor. */
export class SpecBuilder {
  readonly spec: ParamInfo[] = [];
  readonly fanIn = new Map<string, number>();

  add(name: string, shape: number[], role: Role, fanIn = 0): string {
    if (this.fanIn.has(name)) throw new Error(`duplicate parameter name '${name}'`);
    this.spec.push({ name, shape, role });
    this.fanIn.set(name, fanIn);
    return name;
  }

  conv(name: string, k: number, cin: number, cout: number, bias: boolean): void {
    this.add(`${name}.kernel`, [k, k, cin, cout], 'conv', k * k * cin);
    if (bias) this.add(`${name}.bias`, [cout], 'bias', k * k * cin);
  }

  dense(name: string, din: number, dout: number, bias: boolean): void {
    this.add(`${name}.kernel`, [din, dout], 'dense', din);
    if (bias) this.add(`${name}.bias`, [dout], 'bias', din);
  }

  groupNorm(name: string, channels: number): void {
    this.add(`${name}.scale`, [channels], 'normScale');
    this.add(`${name}.offset`, [channels], 'normOffset');
  }

  /**
   * PyTorch's defaults: weights and biases uniform in +-1/sqrt(fan_in) (kaiming_uniform with
   * a = sqrt(5) for weights), norm scale 1 and offset 0.
   */
  init(rng: Rng): Params {
    const out: Params = {};
    for (const p of this.spec) {
      const n = sizeOf(p.shape);
      const data = new Float32Array(n);
      if (p.role === 'normScale') data.fill(1);
      else if (p.role !== 'normOffset') {
        const bound = 1 / Math.sqrt(this.fanIn.get(p.name)!);
        for (let i = 0; i < n; i++) data[i] = (2 * rng.uniform() - 1) * bound;
      }
      out[p.name] = tf.tensor(data, p.shape as number[], 'float32');
    }
    return out;
  }
}

/** 'same'-style symmetric padding as PyTorch does it (pad on both sides). */
export function conv(
  x: tf.Tensor4D,
  params: Params,
  name: string,
  stride: number,
  pad: number,
): tf.Tensor4D {
  const kernel = params[`${name}.kernel`] as tf.Tensor4D;
  const padding: [[0, 0], [number, number], [number, number], [0, 0]] | 'valid' =
    pad === 0
      ? 'valid'
      : [
          [0, 0],
          [pad, pad],
          [pad, pad],
          [0, 0],
        ];
  let y = tf.conv2d(x, kernel, stride, padding);
  const bias = params[`${name}.bias`];
  if (bias) y = tf.add(y, bias);
  return y;
}

export function dense(x: tf.Tensor2D, params: Params, name: string): tf.Tensor2D {
  let y: tf.Tensor2D = tf.matMul(x, params[`${name}.kernel`] as tf.Tensor2D);
  const bias = params[`${name}.bias`];
  if (bias) y = tf.add(y, bias);
  return y;
}

/** GroupNorm over NHWC input (eps 1e-5, as PyTorch). */
export function groupNorm(
  x: tf.Tensor4D,
  params: Params,
  name: string,
  groups: number,
): tf.Tensor4D {
  const c = x.shape[3];
  if (c % groups !== 0)
    throw new Error(`groupNorm '${name}': ${c} channels not divisible by ${groups} groups`);
  const scale = params[`${name}.scale`] as tf.Tensor1D;
  const offset = params[`${name}.offset`] as tf.Tensor1D;
  return fusedGroupNorm(x, scale, offset, groups, 1e-5);
}

export function checkInput(model: Model, x: tf.Tensor): void {
  const [h, w, c] = model.inputShape;
  if (x.rank !== 4 || x.shape[1] !== h || x.shape[2] !== w || x.shape[3] !== c) {
    throw new Error(`${model.name}: expected input [batch, ${h}, ${w}, ${c}], got [${x.shape}]`);
  }
}
