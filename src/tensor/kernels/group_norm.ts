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

export const GROUP_NORM_FORWARD = 'FedslrGroupNorm';
export const GROUP_NORM_BACKWARD = 'FedslrGroupNormGrad';

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

/**
 * Per channel over one sample's pixels (rows `base`, `base + c`, ... up to `end`): sum(u) into
 * `su` and sum(u * w) into `suw`, in float64. Channels go four at a time with their sums in
 * locals; V8 runs this about three times faster than a pass that updates per-channel arrays.
 */
function channelSums(
  u: Float32Array,
  w: Float32Array,
  base: number,
  end: number,
  c: number,
  su: Float64Array,
  suw: Float64Array,
): void {
  let ch = 0;
  for (; ch + 3 < c; ch += 4) {
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let p0 = 0;
    let p1 = 0;
    let p2 = 0;
    let p3 = 0;
    for (let i = base + ch; i < end; i += c) {
      const u0 = u[i]!;
      const u1 = u[i + 1]!;
      const u2 = u[i + 2]!;
      const u3 = u[i + 3]!;
      s0 += u0;
      s1 += u1;
      s2 += u2;
      s3 += u3;
      p0 += u0 * w[i]!;
      p1 += u1 * w[i + 1]!;
      p2 += u2 * w[i + 2]!;
      p3 += u3 * w[i + 3]!;
    }
    su[ch] = s0;
    su[ch + 1] = s1;
    su[ch + 2] = s2;
    su[ch + 3] = s3;
    suw[ch] = p0;
    suw[ch + 1] = p1;
    suw[ch + 2] = p2;
    suw[ch + 3] = p3;
  }
  for (; ch < c; ch++) {
    let s0 = 0;
    let p0 = 0;
    for (let i = base + ch; i < end; i += c) {
      s0 += u[i]!;
      p0 += u[i]! * w[i]!;
    }
    su[ch] = s0;
    suw[ch] = p0;
  }
}

/**
 * out = u * a[ch] + b[ch] (and `+ w * e[ch]` before b when w and e are given, i.e.
 * (u * a + w * e) + b), element by element over one sample; channels four at a time with their
 * coefficients in locals.
 */
function affine(
  out: Float32Array,
  u: Float32Array,
  a: Float32Array,
  b: Float32Array,
  base: number,
  end: number,
  c: number,
  w?: Float32Array,
  e?: Float32Array,
): void {
  let ch = 0;
  for (; ch + 3 < c; ch += 4) {
    const [a0, a1, a2, a3] = [a[ch]!, a[ch + 1]!, a[ch + 2]!, a[ch + 3]!];
    const [b0, b1, b2, b3] = [b[ch]!, b[ch + 1]!, b[ch + 2]!, b[ch + 3]!];
    if (w && e) {
      const [e0, e1, e2, e3] = [e[ch]!, e[ch + 1]!, e[ch + 2]!, e[ch + 3]!];
      for (let i = base + ch; i < end; i += c) {
        out[i] = u[i]! * a0 + w[i]! * e0 + b0;
        out[i + 1] = u[i + 1]! * a1 + w[i + 1]! * e1 + b1;
        out[i + 2] = u[i + 2]! * a2 + w[i + 2]! * e2 + b2;
        out[i + 3] = u[i + 3]! * a3 + w[i + 3]! * e3 + b3;
      }
    } else {
      for (let i = base + ch; i < end; i += c) {
        out[i] = u[i]! * a0 + b0;
        out[i + 1] = u[i + 1]! * a1 + b1;
        out[i + 2] = u[i + 2]! * a2 + b2;
        out[i + 3] = u[i + 3]! * a3 + b3;
      }
    }
  }
  for (; ch < c; ch++) {
    const [a0, b0] = [a[ch]!, b[ch]!];
    if (w && e) {
      const e0 = e[ch]!;
      for (let i = base + ch; i < end; i += c) out[i] = u[i]! * a0 + w[i]! * e0 + b0;
    } else for (let i = base + ch; i < end; i += c) out[i] = u[i]! * a0 + b0;
  }
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
  const sum = new Float64Array(c);
  const sumSq = new Float64Array(c);
  const a = new Float32Array(c);
  const b = new Float32Array(c);
  for (let s = 0; s < batch; s++) {
    const base = s * pixels * c;
    const end = base + pixels * c;
    channelSums(x, x, base, end, c, sum, sumSq);
    for (let g = 0; g < groups; g++) {
      let gs = 0;
      let gq = 0;
      for (let ch = g * cg; ch < (g + 1) * cg; ch++) {
        gs += sum[ch]!;
        gq += sumSq[ch]!;
      }
      const mu = gs / n;
      const r = 1 / Math.sqrt(Math.max(0, gq / n - mu * mu) + eps);
      mean[s * groups + g] = mu;
      rstd[s * groups + g] = r;
      for (let ch = g * cg; ch < (g + 1) * cg; ch++) {
        a[ch] = r * scale[ch]!;
        b[ch] = offset[ch]! - mu * r * scale[ch]!;
      }
    }
    affine(y, x, a, b, base, end, c);
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
    channelSums(dy, x, base, end, c, sumDy, sumDyX);
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
    affine(dx, dy, alpha, gamma, base, end, c, x, beta);
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
  { kernelName: GROUP_NORM_FORWARD, backendName: 'wasm', kernelFunc: forwardKernel(toWasm) },
  { kernelName: GROUP_NORM_BACKWARD, backendName: 'wasm', kernelFunc: backwardKernel(toWasm) },
  { kernelName: GROUP_NORM_FORWARD, backendName: 'cpu', kernelFunc: forwardKernel(toCpu) },
  { kernelName: GROUP_NORM_BACKWARD, backendName: 'cpu', kernelFunc: backwardKernel(toCpu) },
];

/**
 * Registers this file's kernels for `backend`; whether it has both (webgpu's are registered with
 * the webgpu backend, `webgpu/register.ts`).
 */
function ensureKernels(backend: string): boolean {
  const configs = GROUP_NORM_KERNELS.filter((k) => k.backendName === backend);
  for (const k of configs) if (!tf.getKernel(k.kernelName, backend)) tf.registerKernel(k);
  return (
    tf.getKernel(GROUP_NORM_FORWARD, backend) !== undefined &&
    tf.getKernel(GROUP_NORM_BACKWARD, backend) !== undefined
  );
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
      .runKernel(GROUP_NORM_FORWARD, { x: xs, scale: sc, offset: of }, attrs) as tf.Tensor[];
    save([xs, sc, mean!, rstd!]);
    return {
      value: y!,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [sx, ss, sm, sr] = saved;
        return tf
          .engine()
          .runKernel(
            GROUP_NORM_BACKWARD,
            { dy: dy as tf.Tensor, x: sx!, scale: ss!, mean: sm!, rstd: sr! },
            attrs,
          ) as tf.Tensor[];
      },
    };
  });
  return op(x, scale, offset) as tf.Tensor4D;
}
