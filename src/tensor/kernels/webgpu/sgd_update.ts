/**
 * FedslrSgdUpdate (`sgd_update.ts`: `w - lr * (g + terms)`, optionally soft-thresholded) for the
 * webgpu backend: one pass over the tensor, the terms' kinds compiled into the shader, instead of
 * the reference's 9-10 kernel dispatches and full-size temporaries per tensor. Each element:
 *   g' = g + sum of terms in order (scaled: x * coef, decay: w * coef, pull: (w - x) * coef)
 *   v = w - g' * lr;  with tau: sign(v) * max(|v| - tau, 0)
 * in float32, as the reference; a GPU may fuse a multiply and an add, so results can differ from
 * cpu/wasm in the last bit (they are bit for bit there, not here).
 */
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { KIND_CODES } from '../sgd_update.js';
import type { WebgpuBackend, WebgpuProgram } from './webgpu.js';

/** Threads per workgroup; a grid-stride loop covers tensors beyond 65535 workgroups. */
const GROUP = 64;
const MAX_GROUPS = 65535;

interface UpdateAttrs {
  kinds: number[];
  coefs: number[];
  lr: number;
  tau: number;
}

/** Every kind of term but the decay (which uses w) has an input tensor. */
const hasInput = (kind: number) => kind !== KIND_CODES.decay;

class SgdUpdateProgram implements WebgpuProgram {
  readonly variableNames: string[];
  readonly uniforms: string;
  readonly workgroupSize: [number, number, number] = [GROUP, 1, 1];
  readonly dispatchLayout: { x: number[] };
  readonly dispatch: [number, number, number];
  readonly shaderKey: string;
  readonly size = true;

  constructor(
    readonly outputShape: number[],
    private readonly kinds: readonly number[],
    private readonly shrink: boolean,
  ) {
    const n = outputShape.reduce((a, b) => a * b, 1);
    this.variableNames = ['w', 'g', ...kinds.flatMap((k, j) => (hasInput(k) ? [`x${j}`] : []))];
    this.uniforms = `lr : f32, tau : f32, ${kinds.map((_, j) => `coef${j} : f32,`).join(' ')}`;
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    this.dispatch = [Math.min(Math.ceil(n / GROUP), MAX_GROUPS), 1, 1];
    this.shaderKey = `fedslrSgdUpdate_${kinds.join('')}_${shrink}`;
  }

  getUserCode(): string {
    const terms = this.kinds.map((k, j) => {
      const x =
        k === KIND_CODES.scaled ? `x${j}[i]` : k === KIND_CODES.decay ? 'wi' : `(wi - x${j}[i])`;
      return `gi = gi + ${x} * uniforms.coef${j};`;
    });
    const store = this.shrink
      ? `let r = max(abs(v) - uniforms.tau, 0.0);
          result[i] = select(select(0.0, r, v > 0.0), -r, v < 0.0);`
      : 'result[i] = v;';
    return `
      fn main(index : i32) {
        let stride = i32(numWorkgroups.x) * ${GROUP};
        for (var i = index; i < uniforms.size; i += stride) {
          let wi = w[i];
          var gi = g[i];
          ${terms.join('\n          ')}
          let v = wi - gi * uniforms.lr;
          ${store}
        }
      }
    `;
  }
}

function sgdUpdateKernel(args: {
  inputs: Record<string, TensorInfo>;
  backend: WebgpuBackend;
  attrs: UpdateAttrs;
}): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { kinds, coefs, lr, tau } = attrs;
  const w = inputs['w']!;
  const program = new SgdUpdateProgram(w.shape, kinds, tau >= 0);
  const ordered = [
    w,
    inputs['g']!,
    ...kinds.flatMap((k, j) => (hasInput(k) ? [inputs[`x${j}`]!] : [])),
  ];
  return backend.runWebGPUProgram(program, ordered, 'float32', [
    { type: 'float32', data: [lr] },
    { type: 'float32', data: [tau] },
    ...coefs.map((c) => ({ type: 'float32' as const, data: [c] })),
  ]);
}

export const sgdUpdateConfig: KernelConfig = {
  kernelName: 'FedslrSgdUpdate',
  backendName: 'webgpu',
  kernelFunc: sgdUpdateKernel as unknown as KernelFunc,
};
