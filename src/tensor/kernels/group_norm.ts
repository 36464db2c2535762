/**
 * GroupNorm over NHWC as one op with its own gradient. Written with tf ops (moments, sub, div,
 * mul, add), GroupNorm and its tape gradient take about 25 kernel calls and as many passes over
 * the activation per layer, most of them transposing for the reductions; here the forward is
 * two passes and the backward two, on the cpu and wasm backends (other backends fall back to
 * the tf-ops formulation, {@link groupNormReference}).
 *
 * y = (x - mean) * rstd * scale[c] + offset[c], with mean and rstd = 1 / sqrt(var + eps) per
 * (sample, group) over the group's h * w * c / groups values (biased variance, as PyTorch).
 * Backward, with xhat = (x - mean) * rstd and g = dy * scale, n values per group:
 *   dscale[c] = sum(dy * xhat), doffset[c] = sum(dy),
 *   dx = rstd * (g - mean_group(g) - xhat * mean_group(g * xhat)).
 * Statistics are accumulated in float64 (the variance as E[x^2] - mean^2).
 */

import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { heapF32 } from './wasm.js';

const FORWARD = 'FedslrGroupNorm';
const BACKWARD = 'FedslrGroupNormGrad';

interface Dims {
  batch: number;
  /** h * w */
  pixels: number;
  channels: number;
  groups: number;
}

function dimsOf(shape: number[], groups: number): Dims {
  const [batch, h, w, channels] = shape as [number, number, number, number];
  return { batch, pixels: h * w, channels, groups };
}

/** Fills y, mean and rstd ([batch, groups]): one pass for the statistics, one to normalise. */
function forward(
  d: Dims,
  eps: number,
  x: Float32Array,
  scale: Float32Array,
  offset: Float32Array,
  y: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
): void {
  const { batch, pixels, channels: c, groups } = d;
  const cg = c / groups;
  const n = pixels * cg;
  const sum = new Float64Array(groups);
  const sumSq = new Float64Array(groups);
  const a = new Float32Array(c);
  const b = new Float32Array(c);
  for (let s = 0; s < batch; s++) {
    const base = s * pixels * c;
    const end = base + pixels * c;
    sum.fill(0);
    sumSq.fill(0);
    for (let row = base; row < end; row += c) {
      for (let g = 0, i = row; g < groups; g++) {
        let acc = 0;
        let acc2 = 0;
        for (let k = 0; k < cg; k++, i++) {
          const v = x[i]!;
          acc += v;
          acc2 += v * v;
        }
        sum[g] = sum[g]! + acc;
        sumSq[g] = sumSq[g]! + acc2;
      }
    }
    for (let g = 0; g < groups; g++) {
      const mu = sum[g]! / n;
      const r = 1 / Math.sqrt(Math.max(0, sumSq[g]! / n - mu * mu) + eps);
      mean[s * groups + g] = mu;
      rstd[s * groups + g] = r;
      for (let ch = g * cg; ch < (g + 1) * cg; ch++) {
        a[ch] = r * scale[ch]!;
        b[ch] = offset[ch]! - mu * r * scale[ch]!;
      }
    }
    for (let row = base; row < end; row += c) {
      for (let ch = 0; ch < c; ch++) y[row + ch] = x[row + ch]! * a[ch]! + b[ch]!;
    }
  }
}

/**
 * Fills dx, dscale and doffset. One pass gathers, per sample and channel, sum(dy) and
 * sum(dy * x); everything per group follows from those, and dx = alpha*dy + beta*x + gamma with
 * per-(sample, channel) coefficients is the second pass.
 */
function backward(
  d: Dims,
  dy: Float32Array,
  x: Float32Array,
  scale: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
  dx: Float32Array,
  dscale: Float32Array,
  doffset: Float32Array,
): void {
  const { batch, pixels, channels: c, groups } = d;
  const cg = c / groups;
  const n = pixels * cg;
  const sumDy = new Float64Array(c);
  const sumDyX = new Float64Array(c);
  const ds = new Float64Array(c);
  const dof = new Float64Array(c);
  const alpha = new Float32Array(c);
  const beta = new Float32Array(c);
  const gamma = new Float32Array(c);
  for (let s = 0; s < batch; s++) {
    const base = s * pixels * c;
    const end = base + pixels * c;
    sumDy.fill(0);
    sumDyX.fill(0);
    for (let row = base; row < end; row += c) {
      for (let ch = 0; ch < c; ch++) {
        const v = dy[row + ch]!;
        sumDy[ch] = sumDy[ch]! + v;
        sumDyX[ch] = sumDyX[ch]! + v * x[row + ch]!;
      }
    }
    for (let g = 0; g < groups; g++) {
      const m = mean[s * groups + g]!;
      const r = rstd[s * groups + g]!;
      // Per group: mean of g = dy * scale, and mean of g * xhat.
      let sg = 0;
      let sgx = 0;
      for (let ch = g * cg; ch < (g + 1) * cg; ch++) {
        const dyXhat = r * (sumDyX[ch]! - m * sumDy[ch]!);
        ds[ch] = ds[ch]! + dyXhat;
        dof[ch] = dof[ch]! + sumDy[ch]!;
        sg += scale[ch]! * sumDy[ch]!;
        sgx += scale[ch]! * dyXhat;
      }
      const meanG = sg / n;
      const meanGX = sgx / n;
      for (let ch = g * cg; ch < (g + 1) * cg; ch++) {
        alpha[ch] = r * scale[ch]!;
        beta[ch] = -r * r * meanGX;
        gamma[ch] = r * (r * m * meanGX - meanG);
      }
    }
    for (let row = base; row < end; row += c) {
      for (let ch = 0; ch < c; ch++) {
        const i = row + ch;
        dx[i] = alpha[ch]! * dy[i]! + beta[ch]! * x[i]! + gamma[ch]!;
      }
    }
  }
  for (let ch = 0; ch < c; ch++) {
    dscale[ch] = ds[ch]!;
    doffset[ch] = dof[ch]!;
  }
}

interface GroupNormAttrs {
  groups: number;
  eps: number;
}

/** Per-backend access to float32 data: inputs as arrays, outputs allocated by shape. */
interface Io {
  read(t: TensorInfo): Float32Array;
  /** Allocates the outputs, then gives their arrays (valid until the next allocation). */
  write(shapes: number[][]): { infos: TensorInfo[]; arrays: Float32Array[] };
}

function wasmIo(backend: BackendWasm): Io {
  return {
    read: (t) => heapF32(backend, t),
    write: (shapes) => {
      const infos = shapes.map((s) => backend.makeOutput(s, 'float32'));
      return { infos, arrays: infos.map((t) => heapF32(backend, t)) };
    },
  };
}

function cpuIo(backend: MathBackendCPU): Io {
  return {
    read: (t) => backend.data.get(t.dataId)!.values as Float32Array,
    write: (shapes) => {
      const arrays = shapes.map((s) => new Float32Array(s.reduce((p, q) => p * q, 1)));
      return {
        infos: shapes.map((s, i) => backend.makeTensorInfo(s, 'float32', arrays[i])),
        arrays,
      };
    },
  };
}

function forwardKernel(io: (backend: unknown) => Io): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { x, scale, offset } = inputs as Record<'x' | 'scale' | 'offset', TensorInfo>;
    const { groups, eps } = attrs as unknown as GroupNormAttrs;
    const d = dimsOf(x.shape, groups);
    const rw = io(backend);
    const { infos, arrays } = rw.write([x.shape, [d.batch, groups], [d.batch, groups]]);
    const [y, mean, rstd] = arrays as [Float32Array, Float32Array, Float32Array];
    forward(d, eps, rw.read(x), rw.read(scale), rw.read(offset), y, mean, rstd);
    return infos;
  };
}

function backwardKernel(io: (backend: unknown) => Io): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { dy, x, scale, mean, rstd } = inputs as Record<
      'dy' | 'x' | 'scale' | 'mean' | 'rstd',
      TensorInfo
    >;
    const { groups } = attrs as unknown as GroupNormAttrs;
    const d = dimsOf(x.shape, groups);
    const rw = io(backend);
    const { infos, arrays } = rw.write([x.shape, scale.shape, scale.shape]);
    const [dx, dscale, doffset] = arrays as [Float32Array, Float32Array, Float32Array];
    backward(
      d,
      rw.read(dy),
      rw.read(x),
      rw.read(scale),
      rw.read(mean),
      rw.read(rstd),
      dx,
      dscale,
      doffset,
    );
    return infos;
  };
}

const toWasm = (b: unknown) => wasmIo(b as BackendWasm);
const toCpu = (b: unknown) => cpuIo(b as MathBackendCPU);

export const GROUP_NORM_KERNELS: readonly KernelConfig[] = [
  { kernelName: FORWARD, backendName: 'wasm', kernelFunc: forwardKernel(toWasm) },
  { kernelName: BACKWARD, backendName: 'wasm', kernelFunc: backwardKernel(toWasm) },
  { kernelName: FORWARD, backendName: 'cpu', kernelFunc: forwardKernel(toCpu) },
  { kernelName: BACKWARD, backendName: 'cpu', kernelFunc: backwardKernel(toCpu) },
];

function ensureKernels(backend: string): boolean {
  const configs = GROUP_NORM_KERNELS.filter((k) => k.backendName === backend);
  for (const k of configs) if (!tf.getKernel(k.kernelName, backend)) tf.registerKernel(k);
  return configs.length > 0;
}

/** GroupNorm written with tf ops: the reference, and the path on backends without our kernels. */
export function groupNormReference(
  x: tf.Tensor4D,
  scale: tf.Tensor1D,
  offset: tf.Tensor1D,
  groups: number,
  eps = 1e-5,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, h, w, c] = x.shape;
    const xg = tf.reshape(x, [b, h, w, groups, c / groups]);
    const { mean, variance } = tf.moments(xg, [1, 2, 4], true);
    const normed = tf.reshape(tf.div(tf.sub(xg, mean), tf.sqrt(tf.add(variance, eps))), x.shape);
    return tf.add(tf.mul(normed, scale), offset) as tf.Tensor4D;
  });
}

/**
 * GroupNorm of NHWC `x` ([batch, h, w, c]) with `groups` groups (c divisible by groups) and
 * per-channel `scale` and `offset` ([c]). Differentiable in all three.
 */
export function groupNorm(
  x: tf.Tensor4D,
  scale: tf.Tensor1D,
  offset: tf.Tensor1D,
  groups: number,
  eps = 1e-5,
): tf.Tensor4D {
  const c = x.shape[3];
  if (x.rank !== 4) throw new Error(`groupNorm: x must be [batch, h, w, c], got [${x.shape}]`);
  if (!Number.isInteger(groups) || groups < 1 || c % groups !== 0) {
    throw new Error(`groupNorm: groups must be a positive divisor of ${c} channels, got ${groups}`);
  }
  if (
    scale.shape.length !== 1 ||
    scale.shape[0] !== c ||
    offset.shape.length !== 1 ||
    offset.shape[0] !== c
  ) {
    throw new Error(
      `groupNorm: scale and offset must be [${c}], got [${scale.shape}] and [${offset.shape}]`,
    );
  }
  if (x.dtype !== 'float32' || !ensureKernels(tf.getBackend())) {
    return groupNormReference(x, scale, offset, groups, eps);
  }
  const attrs = { groups, eps } as unknown as NamedAttrMap;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xs, sc, of, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const [y, mean, rstd] = tf
      .engine()
      .runKernel(FORWARD, { x: xs, scale: sc, offset: of }, attrs) as tf.Tensor[];
    save([xs, sc, mean!, rstd!]);
    return {
      value: y!,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [sx, ss, sm, sr] = saved;
        return tf
          .engine()
          .runKernel(
            BACKWARD,
            { dy: dy as tf.Tensor, x: sx!, scale: ss!, mean: sm!, rstd: sr! },
            attrs,
          ) as tf.Tensor[];
      },
    };
  });
  return op(x, scale, offset) as tf.Tensor4D;
}
