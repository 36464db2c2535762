/**
 * The polar path (full regime: every singular value above tau). Then
 *   SVT(A) = A - tau * polar(A),
 * polar(A) = U V^T the orthogonal polar factor. It comes from scaled Newton-Schulz iterations
 *   X_{k+1} = X_k (1.5 a_k I - 0.5 a_k^3 X_k^T X_k),
 * a_k chosen so that the cubic equioscillates on the current singular-value interval [l_k, 1]
 * (l_0 = tau / scale, scale = a power-iteration estimate of s_max with 5% headroom, capped by the
 * Frobenius norm); every step is a tfjs matmul. For matrices at least three times longer than
 * wide the steps run on the n x n Gram matrix instead (gramDomainPolar).
 * Certificate: the last iterate Q is orthonormal to 64 sqrt(m) eps32, and sym(Q^T A) - (tau +
 * margin) I passes a Cholesky factorisation: the eigenvalues of sym(Q^T A) are the singular
 * values, so every one of them is above tau. Before iterating, Cholesky tests on the float32 Gram
 * matrix skip matrices that certainly have a value below tau and certify a lower bound on s_min,
 * which shortens the schedule. Gives the thresholded matrix and the (full) rank, not the factors.
 */
import * as tf from '@tensorflow/tfjs-core';
import { isPositiveDefinite } from '../cholesky.js';
import { dot } from '../dot.js';
import { EPS32 } from './blocks.js';
import type { SvtHint, SvtResult } from './types.js';

/**
 * Largest eigenvalue of a symmetric PSD matrix (float64 power iteration, Rayleigh quotient, so an
 * estimate from below) and its vector. `start` (last round's vector of the same matrix, as the
 * hint keeps it; ignored when zero or of another length) replaces the fixed start vector; the
 * iteration then stops after six steps instead of running the full 30 when the top eigenvalues
 * lie close together.
 */
export function topEigen(
  g: Float32Array,
  n: number,
  start?: Float32Array,
): { value: number; vector: Float32Array } {
  const g64 = Float64Array.from(g);
  let x = new Float64Array(n);
  if (start?.length === n && start.some((v) => v !== 0)) x.set(start);
  else for (let i = 0; i < n; i++) x[i] = 1 + ((i * 7919) % 13) / 13;
  let lambda = 0;
  for (let it = 0; it < 30; it++) {
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) y[i] = dot(g64, i * n, x, 0, n);
    const xx = dot(x, 0, x, 0, n);
    const yy = dot(y, 0, y, 0, n);
    const next = xx > 0 ? dot(x, 0, y, 0, n) / xx : 0;
    if (yy === 0) {
      lambda = 0;
      break;
    }
    const ny = Math.sqrt(yy);
    for (let i = 0; i < n; i++) y[i] = y[i]! / ny;
    x = y;
    const settled = it > 4 && Math.abs(next - lambda) <= 1e-4 * next;
    lambda = next;
    if (settled) break;
  }
  return { value: lambda, vector: Float32Array.from(x) };
}

/**
 * The scaled Newton-Schulz schedule for singular values in [l, 1]: step k maps x to
 * 1.5*a_k*x - 0.5*a_k^3*x^3 with a_k = sqrt(3 / (1 + l_k + l_k^2)), which equioscillates on
 * [l_k, 1] and maps it into [l_{k+1}, 1]. Stops when 1 - l_k is at float32 rounding level.
 */
export function newtonSchulzSchedule(l0: number): number[] {
  const alphas: number[] = [];
  let l = Math.max(l0, 1e-12);
  while (1 - l > 4 * EPS32 && alphas.length < 60) {
    const a = Math.sqrt(3 / (1 + l + l * l));
    alphas.push(a);
    l = 1.5 * a * l - 0.5 * a * a * a * l * l * l;
  }
  return alphas;
}

/**
 * From this ratio of long to short side on, the polar path iterates on the n x n Gram matrix
 * (three n^3 products a step) instead of the m x n matrix (two m n^2 products a step).
 */
const GRAM_DOMAIN_RATIO = 3;

/**
 * Newton-Schulz in the Gram domain, for tall X (m >= 3n). Every iterate is X_k = X_0 M_k with M_k
 * a polynomial in G_0 = X_0^T X_0, so the steps P_k = 1.5 a_k I - 0.5 a_k^3 G_k can run on n x n
 * matrices alone: M_{k+1} = M_k P_k and G_{k+1} = P_k G_k P_k. Float32 rounding in G_0 (relative
 * to s_max^2, large for the smallest values) leaves X_0 M_K only near orthonormal; plain
 * Newton-Schulz steps (a = 1, cubic convergence) then polish it. Their number comes from
 * ||X^T X - I||_F, which bounds every |s^2 - 1|. Null when that bound is too loose to polish from.
 * Returns x and g, which the caller disposes; its other tensors are disposed here.
 */
export async function gramDomainPolar(
  x0: tf.Tensor2D,
  g0: tf.Tensor2D,
  scale: number,
  alphas: readonly number[],
  step: (g: tf.Tensor2D, al: number) => tf.Tensor2D,
): Promise<{ x: tf.Tensor2D; g: tf.Tensor2D; polish: number[] } | null> {
  const [x, g, devT] = tf.tidy(() => {
    let gk: tf.Tensor2D = tf.div(g0, scale * scale);
    let acc: tf.Tensor2D | null = null;
    for (const al of alphas) {
      const p = step(gk, al);
      acc = acc ? tf.matMul<tf.Tensor2D>(acc, p) : p;
      gk = tf.matMul(p, tf.matMul(gk, p));
    }
    const xk: tf.Tensor2D = acc ? tf.matMul(x0, tf.div(acc, scale)) : tf.div(x0, scale);
    const gx: tf.Tensor2D = tf.matMul(tf.transpose(xk), xk);
    return [xk, gx, tf.sum(tf.square(tf.sub(gx, tf.eye(gx.shape[0]))))] as const;
  });
  const dev = Math.sqrt((await devT.data())[0]!);
  devT.dispose();
  if (!(dev < 0.5)) {
    tf.dispose([x, g]);
    return null;
  }
  let e = Math.max(1 - Math.sqrt(1 - dev), Math.sqrt(1 + dev) - 1);
  const polish: number[] = [];
  while (e > 4 * EPS32 && polish.length < 6) {
    polish.push(1);
    e = 1.5 * e * e + 0.5 * e * e * e;
  }
  return { x, g, polish };
}

/** The polar path; null when its certificate fails. */
export async function polarSvt(
  a: Float32Array,
  rows: number,
  cols: number,
  tau: number,
  hint: SvtHint | undefined,
): Promise<SvtResult | null> {
  const tall = rows >= cols;
  const n = Math.min(rows, cols);
  const m = Math.max(rows, cols);
  const [x0, g0] = tf.tidy(() => {
    const a2 = tf.tensor2d(a, [rows, cols]);
    const x = tall ? a2 : tf.transpose(a2);
    return [x, tf.matMul(tf.transpose(x), x)] as [tf.Tensor2D, tf.Tensor2D];
  });
  try {
    const gdata = (await g0.data()) as Float32Array;
    let fro2 = 0;
    for (let i = 0; i < n; i++) fro2 += gdata[i * n + i]!;
    // Power iteration approaches s_max from below: 5% headroom, never above the Frobenius norm.
    const top = topEigen(gdata, n, hint?.topVector);
    const scale = Math.min(Math.sqrt(top.value) * 1.05, Math.sqrt(fro2));
    if (!(scale > tau)) return null;
    // Lower bounds on s_min from Cholesky tests on the float32 Gram matrix (error <= marginG).
    // They only choose the schedule and skip hopeless cases; the final certificate decides.
    const marginG = 8 * Math.sqrt(m) * EPS32 * scale * scale;
    // The test that skips hopeless cases is left out when the polar path answered last time (the
    // hint's polarL): the matrix most likely kept every value above tau, and the final certificate
    // checks that anyway.
    const lastL = hint?.polarL;
    if (
      lastL === undefined &&
      tau * tau > 64 * marginG &&
      !(await isPositiveDefinite(gdata, n, tau * tau - marginG))
    ) {
      return null;
    }
    const lTau = tau / scale;
    const ladder = lastL !== undefined ? [lastL] : [0.25, 0.05];
    let lDesign = lTau;
    for (const l of ladder) {
      if (l > lTau && (await isPositiveDefinite(gdata, n, (l * scale) ** 2 + marginG))) {
        lDesign = l;
        break;
      }
    }
    const alphas = newtonSchulzSchedule(lDesign * 0.98);
    const eye = tf.eye(n);
    let fromGram: Awaited<ReturnType<typeof gramDomainPolar>> = null;
    let outputs: tf.Tensor[];
    try {
      const step = (g: tf.Tensor2D, al: number) =>
        tf.sub(tf.mul(eye, 1.5 * al), tf.mul(g, 0.5 * al * al * al)) as tf.Tensor2D;
      fromGram =
        m >= GRAM_DOMAIN_RATIO * n ? await gramDomainPolar(x0, g0, scale, alphas, step) : null;
      outputs = tf.tidy(() => {
        let x: tf.Tensor2D = fromGram?.x ?? tf.div(x0, scale);
        let g: tf.Tensor2D = fromGram?.g ?? tf.div(g0, scale * scale);
        for (const al of fromGram?.polish ?? alphas) {
          x = tf.matMul(x, step(g, al));
          g = tf.matMul(tf.transpose(x), x);
        }
        const res = tf.sub(x0, tf.mul(x, tau));
        return [
          tf.max(tf.abs(tf.sub(g, eye))),
          tf.matMul(tf.transpose(x), x0),
          tall ? res : tf.transpose(res),
        ];
      });
    } finally {
      tf.dispose([eye, ...(fromGram ? [fromGram.x, fromGram.g] : [])]);
    }
    const [orthT, hT, resT] = outputs as [tf.Tensor, tf.Tensor, tf.Tensor];
    const [orthData, h, matrix] = (await Promise.all([orthT.data(), hT.data(), resT.data()])) as [
      Float32Array,
      Float32Array,
      Float32Array,
    ];
    const orth = orthData[0]!;
    tf.dispose([orthT, hT, resT]);
    if (!(orth <= 64 * Math.sqrt(m) * EPS32)) return null;
    // Eigenvalues of sym(Q^T A) are the singular values up to a relative orth and rounding.
    const margin = tau * orth + 8 * Math.sqrt(m) * EPS32 * scale;
    if (!(await isPositiveDefinite(h, n, tau + margin))) return null;
    return {
      rows,
      cols,
      rank: n,
      fullRank: n,
      values: null,
      u: null,
      v: null,
      matrix,
      method: 'polar',
      polarOrthError: orth,
      hint: { fullRank: true, polarL: lDesign, topVector: top.vector },
    };
  } finally {
    tf.dispose([x0, g0]);
  }
}
