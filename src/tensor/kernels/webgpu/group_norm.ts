/**
 * FedslrGroupNorm and FedslrGroupNormGrad (`../group_norm.ts`) for the webgpu backend: 3
 * dispatches forward and 4 backward, instead of the tf-ops formulation's ~25 kernels per layer.
 *
 * NHWC x [batch, h, w, c], `groups` groups of cg = c / groups channels, n = h * w * cg values per
 * (sample s, group g); mean and rstd = 1 / sqrt(var + eps) per (s, g), biased variance.
 * Forward:
 *   1. mean[s, g] = x0 + sum(x - x0) / n     one workgroup per (s, g), shared-memory tree sum;
 *                                             x0 = the group's first value
 *   2. rstd[s, g] from sum((x - mean)^2) / n  likewise: two passes, so a large mean does not
 *                                             cancel in float32 as E[x^2] - mean^2 would
 *   3. y = (x - mean) * rstd * scale[c] + offset[c], element by element
 * Backward, with xhat = (x - mean) * rstd and G = dy * scale:
 *   1. per (s, g), one workgroup: per channel sum(dy) and sum(dy * xhat), and over the group
 *      mean(G) and mean(G * xhat), into one `partials` tensor, a row per sample:
 *      [sum(dy) (c), sum(dy * xhat) (c), mean(G) (groups), mean(G * xhat) (groups)]
 *   2. dx = rstd * (G - mean(G) - xhat * mean(G * xhat)), element by element
 *   3, 4. doffset[c] = sum over samples of sum(dy), dscale[c] of sum(dy * xhat)
 * A workgroup's threads are (channel lane, pixel lane): CL lanes read neighbouring channels of
 * one pixel (CL the largest power of two <= min(cg, 256)), the pixel lanes stride over pixels.
 * Float32 throughout: results agree with the cpu/wasm kernels (float64 statistics) to float32
 * rounding, not bit for bit.
 */
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { GROUP_NORM_BACKWARD, GROUP_NORM_FORWARD } from '../group_norm.js';
import type { WebgpuBackend, WebgpuProgram } from './webgpu.js';

/** Threads of a reduction workgroup (one per (sample, group)). */
const WORKGROUP = 256;
/** Threads of an element-wise workgroup; a grid-stride loop covers more than 65535 groups. */
const FLAT = 64;
const MAX_GROUPS = 65535;

interface Attrs {
  groups: number;
  eps: number;
}

/** The largest power of two <= min(cg, WORKGROUP): channel lanes of a reduction workgroup. */
export function channelLanes(cg: number): number {
  let lanes = 1;
  while (lanes * 2 <= Math.min(cg, WORKGROUP)) lanes *= 2;
  return lanes;
}

const SHAPE_UNIFORMS = 'pixels : i32, channels : i32, groups : i32, cg : i32,';

/** Layout of the reduction programs: workgroup (g, s) of WORKGROUP threads. */
abstract class PerGroupProgram implements WebgpuProgram {
  abstract readonly variableNames: string[];
  readonly workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  readonly dispatchLayout = { x: [1], y: [0] };
  readonly dispatch: [number, number, number];
  readonly lanes: number;

  constructor(
    readonly outputShape: number[],
    batch: number,
    groups: number,
    cg: number,
  ) {
    this.dispatch = [groups, batch, 1];
    this.lanes = channelLanes(cg);
  }

  abstract readonly shaderKey: string;
  abstract getUserCode(): string;

  /** Declarations: thread t as channel lane j0 and pixel lane pl, the group's (g, s) and base. */
  protected prologue(): string {
    return `
        let t = i32(localIndex);
        let j0 = t % ${this.lanes};
        let pl = t / ${this.lanes};
        let g = i32(workgroupId.x);
        let s = i32(workgroupId.y);
        let base = s * uniforms.pixels * uniforms.channels + g * uniforms.cg;`;
  }

  /**
   * In-place tree sum of the workgroup arrays `names`: for stride = `from`, halving down to `to`,
   * each thread t < stride adds entry t + stride into entry t (same channel lane when `to` >= CL).
   */
  protected treeSum(names: string[], from: number, to: number): string {
    return `
        for (var stride = ${from}; stride >= ${to}; stride = stride / 2) {
          if (t < stride) {
            ${names.map((a) => `${a}[t] = ${a}[t] + ${a}[t + stride];`).join('\n            ')}
          }
          workgroupBarrier();
        }`;
  }
}

/** mean[s, g] (kind 'mean') or rstd[s, g] from the mean (kind 'rstd'). */
class StatisticProgram extends PerGroupProgram {
  readonly variableNames: string[];
  readonly uniforms = `${SHAPE_UNIFORMS} eps : f32,`;
  readonly shaderKey: string;

  constructor(
    private readonly kind: 'mean' | 'rstd',
    batch: number,
    groups: number,
    cg: number,
  ) {
    super([batch, groups], batch, groups, cg);
    this.variableNames = kind === 'mean' ? ['x'] : ['x', 'mean'];
    this.shaderKey = `fedslrGroupNorm_${kind}_${this.lanes}`;
  }

  getUserCode(): string {
    const rstd = this.kind === 'rstd';
    return `
      var<workgroup> acc : array<f32, ${WORKGROUP}>;

      fn main() {
        ${this.prologue()}
        // The mean sums x - x[base] (so a mean far from 0 does not eat the float32 precision of
        // the sum), the variance (x - mean)^2.
        let m = ${rstd ? 'mean[s * uniforms.groups + g]' : 'x[base]'};
        var sum = 0.0;
        for (var p = pl; p < uniforms.pixels; p += ${WORKGROUP / this.lanes}) {
          let row = base + p * uniforms.channels;
          for (var j = j0; j < uniforms.cg; j += ${this.lanes}) {
            let d = x[row + j] - m;
            sum += ${rstd ? 'd * d' : 'd'};
          }
        }
        acc[t] = sum;
        workgroupBarrier();
        ${this.treeSum(['acc'], WORKGROUP / 2, 1)}
        if (t == 0) {
          let v = acc[0] / f32(uniforms.pixels * uniforms.cg);
          result[s * uniforms.groups + g] = ${rstd ? '1.0 / sqrt(v + uniforms.eps)' : 'm + v'};
        }
      }
    `;
  }
}

/**
 * The backward's per-(sample, group) pass: a row per sample of
 * [sum(dy) (c), sum(dy * xhat) (c), mean(G) (groups), mean(G * xhat) (groups)].
 */
class PartialsProgram extends PerGroupProgram {
  readonly variableNames = ['dy', 'x', 'scale', 'mean', 'rstd'];
  readonly uniforms = `${SHAPE_UNIFORMS} rounds : i32,`;
  readonly shaderKey: string;

  constructor(batch: number, channels: number, groups: number, cg: number) {
    super([batch, 2 * channels + 2 * groups], batch, groups, cg);
    this.shaderKey = `fedslrGroupNormGrad_partials_${this.lanes}`;
  }

  getUserCode(): string {
    const lanes = this.lanes;
    return `
      var<workgroup> sumDy : array<f32, ${WORKGROUP}>;
      var<workgroup> sumDyXhat : array<f32, ${WORKGROUP}>;

      fn main() {
        ${this.prologue()}
        let c = uniforms.channels;
        let k = s * uniforms.groups + g;
        let m = mean[k];
        let r = rstd[k];
        let row = s * (2 * c + 2 * uniforms.groups);
        // Lanes of pixel lane 0 gather, over the rounds, sum(G) and sum(G * xhat) of the group.
        var groupG = 0.0;
        var groupGX = 0.0;
        for (var round = 0; round < uniforms.rounds; round++) {
          let j = j0 + round * ${lanes};
          var a = 0.0;
          var b = 0.0;
          if (j < uniforms.cg) {
            for (var p = pl; p < uniforms.pixels; p += ${WORKGROUP / lanes}) {
              let i = base + p * c + j;
              let d = dy[i];
              a += d;
              b += d * (x[i] - m);
            }
          }
          sumDy[t] = a;
          sumDyXhat[t] = b * r;
          workgroupBarrier();
          ${this.treeSum(['sumDy', 'sumDyXhat'], WORKGROUP / 2, lanes)}
          if (t < ${lanes} && j < uniforms.cg) {
            let ch = g * uniforms.cg + j;
            let sd = sumDy[t];
            let sx = sumDyXhat[t];
            result[row + ch] = sd;
            result[row + c + ch] = sx;
            groupG += scale[ch] * sd;
            groupGX += scale[ch] * sx;
          }
          workgroupBarrier();
        }
        sumDy[t] = groupG;
        sumDyXhat[t] = groupGX;
        workgroupBarrier();
        ${this.treeSum(['sumDy', 'sumDyXhat'], lanes >> 1, 1)}
        if (t == 0) {
          let n = f32(uniforms.pixels * uniforms.cg);
          result[row + 2 * c + g] = sumDy[0] / n;
          result[row + 2 * c + uniforms.groups + g] = sumDyXhat[0] / n;
        }
      }
    `;
  }
}

/** Element-wise programs over x's shape (y, dx) or over channels (dscale, doffset). */
class ElementwiseProgram implements WebgpuProgram {
  readonly workgroupSize: [number, number, number] = [FLAT, 1, 1];
  readonly dispatchLayout: { x: number[] };
  readonly dispatch: [number, number, number];
  readonly size = true;
  readonly shaderKey: string;

  constructor(
    readonly outputShape: number[],
    readonly variableNames: string[],
    readonly uniforms: string,
    private readonly body: string,
    name: string,
  ) {
    const n = outputShape.reduce((a, b) => a * b, 1);
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    this.dispatch = [Math.min(Math.ceil(n / FLAT), MAX_GROUPS), 1, 1];
    this.shaderKey = `fedslrGroupNorm_${name}`;
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        let stride = i32(numWorkgroups.x) * ${FLAT};
        for (var i = index; i < uniforms.size; i += stride) {
          ${this.body}
        }
      }
    `;
  }
}

/** Per element i of x: its channel, and k = (sample, group) into mean and rstd. */
const ELEMENT_INDEX = `
          let ch = i % uniforms.channels;
          let s = i / (uniforms.pixels * uniforms.channels);
          let g = ch / uniforms.cg;
          let k = s * uniforms.groups + g;`;

const normalize = (shape: number[]) =>
  new ElementwiseProgram(
    shape,
    ['x', 'scale', 'offset', 'mean', 'rstd'],
    SHAPE_UNIFORMS,
    `${ELEMENT_INDEX}
          result[i] = (x[i] - mean[k]) * rstd[k] * scale[ch] + offset[ch];`,
    'normalize',
  );

const inputGradient = (shape: number[]) =>
  new ElementwiseProgram(
    shape,
    ['dy', 'x', 'scale', 'mean', 'rstd', 'partials'],
    SHAPE_UNIFORMS,
    `${ELEMENT_INDEX}
          let r = rstd[k];
          let xhat = (x[i] - mean[k]) * r;
          let at = s * (2 * uniforms.channels + 2 * uniforms.groups) + 2 * uniforms.channels;
          result[i] = r * (scale[ch] * dy[i] - partials[at + g] - xhat * partials[at + uniforms.groups + g]);`,
    'dx',
  );

/** result[ch] = sum over samples of partials[s, start + ch]. */
const batchSum = (channels: number) =>
  new ElementwiseProgram(
    [channels],
    ['partials'],
    'batch : i32, row : i32, start : i32,',
    `var sum = 0.0;
          for (var s = 0; s < uniforms.batch; s++) {
            sum += partials[s * uniforms.row + uniforms.start + i];
          }
          result[i] = sum;`,
    'batchSum',
  );

const ints = (values: number[]) => values.map((v) => ({ type: 'int32' as const, data: [v] }));

function dimsOf(x: TensorInfo, groups: number) {
  const [batch, h, w, channels] = x.shape as [number, number, number, number];
  return { batch, pixels: h * w, channels, groups, cg: channels / groups };
}

function forward(args: {
  inputs: Record<'x' | 'scale' | 'offset', TensorInfo>;
  backend: WebgpuBackend;
  attrs: Attrs;
}): TensorInfo[] {
  const { inputs, backend, attrs } = args;
  const { x, scale, offset } = inputs;
  const d = dimsOf(x, attrs.groups);
  const shape = ints([d.pixels, d.channels, d.groups, d.cg]);
  const withEps = [...shape, { type: 'float32' as const, data: [attrs.eps] }];
  const mean = backend.runWebGPUProgram(
    new StatisticProgram('mean', d.batch, d.groups, d.cg),
    [x],
    'float32',
    withEps,
  );
  const rstd = backend.runWebGPUProgram(
    new StatisticProgram('rstd', d.batch, d.groups, d.cg),
    [x, mean],
    'float32',
    withEps,
  );
  const y = backend.runWebGPUProgram(
    normalize(x.shape),
    [x, scale, offset, mean, rstd],
    'float32',
    shape,
  );
  return [y, mean, rstd];
}

function backward(args: {
  inputs: Record<'dy' | 'x' | 'scale' | 'mean' | 'rstd', TensorInfo>;
  backend: WebgpuBackend;
  attrs: Attrs;
}): TensorInfo[] {
  const { inputs, backend, attrs } = args;
  const { dy, x, scale, mean, rstd } = inputs;
  const d = dimsOf(x, attrs.groups);
  const shape = ints([d.pixels, d.channels, d.groups, d.cg]);
  const program = new PartialsProgram(d.batch, d.channels, d.groups, d.cg);
  const rounds = Math.ceil(d.cg / program.lanes);
  const partials = backend.runWebGPUProgram(program, [dy, x, scale, mean, rstd], 'float32', [
    ...shape,
    ...ints([rounds]),
  ]);
  const dx = backend.runWebGPUProgram(
    inputGradient(x.shape),
    [dy, x, scale, mean, rstd, partials],
    'float32',
    shape,
  );
  const row = 2 * d.channels + 2 * d.groups;
  const [doffset, dscale] = [0, d.channels].map((start) =>
    backend.runWebGPUProgram(
      batchSum(d.channels),
      [partials],
      'float32',
      ints([d.batch, row, start]),
    ),
  ) as [TensorInfo, TensorInfo];
  backend.disposeData(partials.dataId);
  return [dx, dscale, doffset];
}

export const groupNormConfigs: readonly KernelConfig[] = [
  {
    kernelName: GROUP_NORM_FORWARD,
    backendName: 'webgpu',
    kernelFunc: forward as unknown as KernelFunc,
  },
  {
    kernelName: GROUP_NORM_BACKWARD,
    backendName: 'webgpu',
    kernelFunc: backward as unknown as KernelFunc,
  },
];
