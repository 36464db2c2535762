/**
 * Singular-value thresholding (FEDSLR.md step 6): SVT(A) = U max(S - tau, 0) V^T, the proximal map
 * of tau * ||.||_*.
 *
 * Methods (see README.md in this folder for the measurements behind the choice):
 * - 'polar': when every singular value exceeds tau, SVT(A) = A - tau * polar(A). The polar factor
 *   comes from scaled Newton-Schulz iterations (matmuls on the tfjs backend). The answer is
 *   certified: the last iterate must be orthonormal to float32 accuracy and the symmetric factor
 *   sym(Q^T A) - tau I must pass a Cholesky factorisation (so every singular value is above
 *   tau). Gives the thresholded matrix and the rank (full), not the factors. Its deflated variant
 *   handles a few values at or below tau.
 * - 'subspace': warm-started block iteration for low rank, with residual and Weyl certificates.
 * - 'gram': float64 Gram eigensolver (svd.ts), trusted only when its error bound separates every
 *   singular value from tau and keeps the kept values to 5e-6 relative accuracy.
 * - 'jacobi': float64 one-sided Jacobi, exact to relative accuracy; the fallback.
 * - 'auto' (default): polar, deflated polar, subspace, gram, jacobi, each tried where it can pay
 *   and falling through whenever a certificate fails. README.md has the details and numbers.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../tensor/rng.js';
import { choleskyInPlace, isPositiveDefinite } from './cholesky.js';
import { dot } from './dot.js';
import { lowRankPays } from './prox.js';
import { EPS64, jacobiSvd, type Svd, symmetricEigen, tallColumns } from './svd.js';

export type SvtMethod = 'auto' | 'polar' | 'subspace' | 'gram' | 'jacobi';
/**
 * 'always': factors and values are returned; 'whenLowRank': only when the factors are smaller than
 * the dense matrix (rank * (rows + cols) < rows * cols), i.e. when the downlink would send them.
 */
export type FactorPolicy = 'always' | 'whenLowRank';

export interface SvtOptions {
  method?: SvtMethod;
  factors?: FactorPolicy;
  /** What the same matrix looked like last time (from a previous result's `hint`). */
  hint?: SvtHint;
}

/**
 * Memory of the previous call on the same matrix (keep it and pass it back): whether it was full
 * rank, and for low-rank answers the kept rank and right singular vectors (tall orientation,
 * column-major n x rank), which warm-start the subspace path.
 */
export interface SvtHint {
  fullRank: boolean;
  rank?: number;
  basis?: Float32Array;
  /** Certified lower bound on s_min / s_max that the polar path used last time. */
  polarL?: number;
  /** Top eigenvector of the Gram matrix (the polar path's power iteration starts from it). */
  topVector?: Float32Array;
}

export interface SvtResult {
  rows: number;
  cols: number;
  /** Number of singular values above tau. */
  rank: number;
  /** min(rows, cols). */
  fullRank: number;
  /** Thresholded singular values s - tau (> 0), descending; null when factors were not computed. */
  values: Float64Array | null;
  /** rows x rank, row-major, orthonormal columns; null when factors were not computed. */
  u: Float32Array | null;
  /** cols x rank, row-major, orthonormal columns; null when factors were not computed. */
  v: Float32Array | null;
  /** The thresholded matrix, rows x cols row-major. */
  matrix: Float32Array;
  /** The method that produced the answer. */
  method: Exclude<SvtMethod, 'auto'>;
  /** Orthogonality error (max |Q^T Q - I|) of the polar factor when method is 'polar'. */
  polarOrthError?: number;
  hint: SvtHint;
}

const EPS32 = 2 ** -23;
/**
 * Below this many columns (smaller side) the polar path's tfjs round trips cost more than they
 * save. Full regime, warm, median of 400 calls alternating with the Gram path, quiet machine:
 * 64x64 polar 0.90 / Gram 1.43 ms (two XNNPACK threads), 0.91 / 1.11 (one); 128x64 1.24 / 1.59
 * (two), 1.37 / 1.27 (one).
 */
const POLAR_MIN_SIDE = 64;
/** The same for the deflated polar path, whose filter and float64 Rayleigh-Ritz cost more. */
const DEFLATED_MIN_SIDE = 96;
/**
 * The same for the subspace path, which pays from smaller sides: in the low regime (10% of the
 * values above tau, warm) it beats the Gram path from 96x48 on (0.6 against 1.2 ms; 128x64 1.0
 * against 1.9) and ties at 48x48.
 */
const SUBSPACE_MIN_SIDE = 48;

/**
 * From this many multiply-adds (m n^2) on, the Gram path's last product X M is one float32 tfjs
 * matmul instead of float64 dot products in JavaScript: 128x64 (2^19) 1.4 -> ~0.1 ms; the whole
 * of 10x512 (51,200) 0.15 -> 0.07 ms (two XNNPACK threads; 0.13 -> 0.06 on one), while 192x9
 * (15,552) is as fast either way. Its rounding (~sqrt(n) eps32 relative) is that of the other
 * paths' float32 products.
 */
const GRAM_MATMUL_MIN = 2 ** 14;

/** Y^T Y in float64 for the row-major m x k matrix `y` (both triangles filled). */
function gramOfColumns(y: ArrayLike<number>, m: number, k: number): Float64Array {
  const g = new Float64Array(k * k);
  for (let i = 0; i < m; i++) {
    const o = i * k;
    for (let p = 0; p < k; p++) {
      const yp = y[o + p]!;
      if (yp === 0) continue;
      for (let c = p; c < k; c++) g[p * k + c] = g[p * k + c]! + yp * y[o + c]!;
    }
  }
  for (let p = 0; p < k; p++) for (let c = 0; c < p; c++) g[p * k + c] = g[c * k + p]!;
  return g;
}

function checkArgs(a: Float32Array, rows: number, cols: number, tau: number): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1) {
    throw new Error(`svt: rows and cols must be positive integers, got ${rows} x ${cols}`);
  }
  if (a.length !== rows * cols)
    throw new Error(`svt: ${a.length} values for a ${rows} x ${cols} matrix`);
  if (!Number.isFinite(tau) || tau < 0)
    throw new Error(`svt: tau must be a finite number >= 0, got ${tau}`);
}

/** Builds the result from an exact SVD (the Jacobi path). */
function fromSvd(svd: Svd, tau: number, policy: FactorPolicy): SvtResult {
  const { rows, cols, k, s } = svd;
  let rank = 0;
  while (rank < k && s[rank]! > tau) rank++;
  const values = new Float64Array(rank);
  for (let j = 0; j < rank; j++) values[j] = s[j]! - tau;
  const matrix = new Float32Array(rows * cols);
  const acc = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    acc.fill(0);
    for (let j = 0; j < rank; j++) {
      const x = svd.u[i * k + j]! * values[j]!;
      if (x === 0) continue;
      for (let c = 0; c < cols; c++) acc[c] = acc[c]! + x * svd.v[c * k + j]!;
    }
    matrix.set(acc, i * cols);
  }
  const full = Math.min(rows, cols);
  const withFactors = policy === 'always' || lowRankPays(rows, cols, rank);
  let u: Float32Array | null = null;
  let v: Float32Array | null = null;
  if (withFactors) {
    u = new Float32Array(rows * rank);
    v = new Float32Array(cols * rank);
    for (let i = 0; i < rows; i++)
      for (let j = 0; j < rank; j++) u[i * rank + j] = svd.u[i * k + j]!;
    for (let i = 0; i < cols; i++)
      for (let j = 0; j < rank; j++) v[i * rank + j] = svd.v[i * k + j]!;
  }
  return {
    rows,
    cols,
    rank,
    fullRank: full,
    values: withFactors ? values : null,
    u,
    v,
    matrix,
    method: 'jacobi',
    hint: { fullRank: rank === full, rank },
  };
}

/**
 * The Gram path: eigendecomposition of the float64 Gram matrix G = X^T X of the tall orientation
 * X (m x n), then SVT(X) = X V_r diag(1 - tau / s) V_r^T over the r values above tau, without
 * forming the left singular vectors unless the factors are wanted. Null when the error bound of
 * the Gram eigenvalues (about n eps64 s_max^2) does not separate every s^2 from tau^2 or keep
 * each kept s^2 to 1e-5 relative accuracy.
 */
function gramSvt(
  a: Float32Array,
  rows: number,
  cols: number,
  tau: number,
  policy: FactorPolicy,
): SvtResult | null {
  const tall = rows >= cols;
  const n = tall ? cols : rows;
  const m = tall ? rows : cols;
  // X row-major (m x n) and column-major (its n columns), in float64; every product below is a
  // dot product of contiguous rows, which V8 runs several times faster than row updates.
  const xr = new Float64Array(m * n);
  const xc = new Float64Array(m * n);
  // Element (i, p) of X is a[i * cols + p] (tall) or a[p * cols + i] (wide).
  const si = tall ? cols : 1;
  const sp = tall ? 1 : cols;
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < n; p++) {
      const x = a[i * si + p * sp]!;
      xr[i * n + p] = x;
      xc[p * m + i] = x;
    }
  }
  const { values, vt } = symmetricEigen(symmetricDots(xc, xc, n, m), n);
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => values[y]! - values[x]!);
  const s = order.map((j) => Math.sqrt(Math.max(values[j]!, 0)));
  const smax = s[0]!;
  if (smax > 0) {
    const dl = 8 * n * EPS64 * smax * smax;
    const t2 = tau * tau;
    for (let i = 0; i < n; i++) {
      const l = s[i]! * s[i]!;
      if (Math.abs(l - t2) <= dl) return null;
      if (s[i]! > tau && dl / l > 1e-5) return null;
    }
  }
  let r = 0;
  while (r < n && s[r]! > tau) r++;
  // The kept right singular vectors of X: as rows (vk, r x n) and as columns (vkRows, n x r,
  // row p holding component p of each), and that second form scaled by w_j = 1 - tau / s_j.
  const vk = new Float64Array(r * n);
  const vkRows = new Float64Array(n * r);
  const vkRowsW = new Float64Array(n * r);
  for (let j = 0; j < r; j++) {
    const src = order[j]! * n;
    const w = 1 - tau / s[j]!;
    for (let p = 0; p < n; p++) {
      const x = vt[src + p]!;
      vk[j * n + p] = x;
      vkRows[p * r + j] = x;
      vkRowsW[p * r + j] = x * w;
    }
  }
  const withFactors = policy === 'always' || lowRankPays(rows, cols, r);
  // Element (i, q) of SVT(X) goes to matrix[i * si + q * sp].
  const matrix = new Float32Array(rows * cols);
  const values64 = new Float64Array(r);
  for (let j = 0; j < r; j++) values64[j] = s[j]! - tau;
  let u: Float32Array | null = null;
  let v: Float32Array | null = null;
  if (withFactors || 2 * m * r < n * r + m * n) {
    // Y = X V_r (m x r); SVT(X) = Y diag(w) V_r^T; the left vectors are y_j / s_j.
    const y = new Float64Array(m * r);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < r; j++) y[i * r + j] = dot(xr, i * n, vk, j * n, n);
    for (let i = 0; i < m; i++)
      for (let q = 0; q < n; q++) matrix[i * si + q * sp] = dot(y, i * r, vkRowsW, q * r, r);
    if (withFactors) {
      const mSide = new Float32Array(m * r);
      for (let i = 0; i < m; i++)
        for (let j = 0; j < r; j++) mSide[i * r + j] = y[i * r + j]! / s[j]!;
      const nSide = Float32Array.from(vkRows);
      u = tall ? mSide : nSide;
      v = tall ? nSide : mSide;
    }
  } else {
    // M = V_r diag(w) V_r^T (n x n, symmetric), SVT(X) = X M, i.e. A M (tall) or M A (wide).
    const mm = symmetricDots(vkRowsW, vkRows, n, r);
    if (m * n * n >= GRAM_MATMUL_MIN) {
      const product = tf.tidy(() => {
        const a2 = tf.tensor2d(a, [rows, cols]);
        const m2 = tf.tensor2d(Float32Array.from(mm), [n, n]);
        return tall ? tf.matMul(a2, m2) : tf.matMul(m2, a2);
      });
      matrix.set(product.dataSync() as Float32Array);
      product.dispose();
    } else {
      for (let i = 0; i < m; i++)
        for (let q = 0; q < n; q++) matrix[i * si + q * sp] = dot(xr, i * n, mm, q * n, n);
    }
  }
  return {
    rows,
    cols,
    rank: r,
    fullRank: n,
    values: withFactors ? values64 : null,
    u,
    v,
    matrix,
    method: 'gram',
    hint: { fullRank: r === n, rank: r },
  };
}

/**
 * The count x count matrix of dot products of rows p of `x` and q of `y` (each `len` long,
 * row-major), computed for q >= p and mirrored: callers pass rows whose products are symmetric.
 * Rows go in pairs against pairs, four sums in registers for each pair of loads: twice as fast
 * as one dot product at a time on 1536 rows of 1536 (1.4 against 2.7 s).
 */
function symmetricDots(x: Float64Array, y: Float64Array, count: number, len: number): Float64Array {
  const out = new Float64Array(count * count);
  const put = (p: number, q: number, t: number) => {
    out[p * count + q] = t;
    out[q * count + p] = t;
  };
  let p = 0;
  for (; p + 1 < count; p += 2) {
    const x0 = p * len;
    const x1 = x0 + len;
    for (let q = p; q < count; q += 2) {
      const y0 = q * len;
      if (q + 1 === count) {
        put(p, q, dot(x, x0, y, y0, len));
        put(p + 1, q, dot(x, x1, y, y0, len));
        continue;
      }
      const y1 = y0 + len;
      let t00 = 0;
      let t01 = 0;
      let t10 = 0;
      let t11 = 0;
      for (let k = 0; k < len; k++) {
        const a0 = x[x0 + k]!;
        const a1 = x[x1 + k]!;
        const b0 = y[y0 + k]!;
        const b1 = y[y1 + k]!;
        t00 += a0 * b0;
        t01 += a0 * b1;
        t10 += a1 * b0;
        t11 += a1 * b1;
      }
      put(p, q, t00);
      put(p, q + 1, t01);
      put(p + 1, q + 1, t11);
      // On the diagonal block (p+1, p) mirrors (p, p+1).
      if (q !== p) put(p + 1, q, t10);
    }
  }
  if (p < count) put(p, p, dot(x, p * len, y, p * len, len));
  return out;
}

/**
 * Largest eigenvalue of a symmetric PSD matrix (float64 power iteration, Rayleigh quotient, so an
 * estimate from below) and its vector. `start` (last round's vector of the same matrix, as the
 * hint keeps it; ignored when zero or of another length) replaces the fixed start vector; the
 * iteration then stops after six steps instead of running the full 30 when the top eigenvalues
 * lie close together.
 */
function topEigen(
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
 * Call it inside tf.tidy: its intermediates are left to the enclosing scope.
 */
export function gramDomainPolar(
  x0: tf.Tensor2D,
  g0: tf.Tensor2D,
  scale: number,
  alphas: readonly number[],
  step: (g: tf.Tensor2D, al: number) => tf.Tensor2D,
): { x: tf.Tensor2D; g: tf.Tensor2D; polish: number[] } | null {
  let g: tf.Tensor2D = tf.div(g0, scale * scale);
  let acc: tf.Tensor2D | null = null;
  for (const al of alphas) {
    const p = step(g, al);
    acc = acc ? tf.matMul<tf.Tensor2D>(acc, p) : p;
    g = tf.matMul(p, tf.matMul(g, p));
  }
  const x: tf.Tensor2D = acc ? tf.matMul(x0, tf.div(acc, scale)) : tf.div(x0, scale);
  g = tf.matMul(tf.transpose(x), x);
  const dev = Math.sqrt(tf.sum(tf.square(tf.sub(g, tf.eye(g.shape[0])))).dataSync()[0]!);
  if (!(dev < 0.5)) return null;
  let e = Math.max(1 - Math.sqrt(1 - dev), Math.sqrt(1 + dev) - 1);
  const polish: number[] = [];
  while (e > 4 * EPS32 && polish.length < 6) {
    polish.push(1);
    e = 1.5 * e * e + 0.5 * e * e * e;
  }
  return { x, g, polish };
}

/** The polar path; null when its certificate fails. */
function polarSvt(
  a: Float32Array,
  rows: number,
  cols: number,
  tau: number,
  hint: SvtHint | undefined,
): SvtResult | null {
  const tall = rows >= cols;
  const n = Math.min(rows, cols);
  const m = Math.max(rows, cols);
  const [x0, g0] = tf.tidy(() => {
    const a2 = tf.tensor2d(a, [rows, cols]);
    const x = tall ? a2 : tf.transpose(a2);
    return [x, tf.matMul(tf.transpose(x), x)] as [tf.Tensor2D, tf.Tensor2D];
  });
  try {
    const gdata = g0.dataSync() as Float32Array;
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
      !isPositiveDefinite(gdata, n, tau * tau - marginG)
    ) {
      return null;
    }
    const lTau = tau / scale;
    const ladder = lastL !== undefined ? [lastL] : [0.25, 0.05];
    let lDesign = lTau;
    for (const l of ladder) {
      if (l > lTau && isPositiveDefinite(gdata, n, (l * scale) ** 2 + marginG)) {
        lDesign = l;
        break;
      }
    }
    const alphas = newtonSchulzSchedule(lDesign * 0.98);
    const [orthT, hT, resT] = tf.tidy(() => {
      const eye = tf.eye(n);
      const step = (g: tf.Tensor2D, al: number) =>
        tf.sub(tf.mul(eye, 1.5 * al), tf.mul(g, 0.5 * al * al * al)) as tf.Tensor2D;
      const fromGram =
        m >= GRAM_DOMAIN_RATIO * n ? gramDomainPolar(x0, g0, scale, alphas, step) : null;
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
    const orth = orthT.dataSync()[0]!;
    const h = hT.dataSync() as Float32Array;
    const matrix = resT.dataSync() as Float32Array;
    tf.dispose([orthT, hT, resT]);
    if (!(orth <= 64 * Math.sqrt(m) * EPS32)) return null;
    // Eigenvalues of sym(Q^T A) are the singular values up to a relative orth and rounding.
    const margin = tau * orth + 8 * Math.sqrt(m) * EPS32 * scale;
    if (!isPositiveDefinite(h, n, tau + margin)) return null;
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

/**
 * Newton-Schulz in the deflated path is designed to converge for singular values above
 * DEFLATE_BAND * tau; the values below it are found and thresholded exactly instead.
 */
const DEFLATE_BAND = 2;

/** Y = X B in float64: X the tall orientation of the row-major float32 `a`, B row-major n x k. */
function timesX(
  a: Float32Array,
  rows: number,
  cols: number,
  b: Float64Array,
  k: number,
): Float64Array {
  const tall = rows >= cols;
  const m = Math.max(rows, cols);
  const y = new Float64Array(m * k);
  for (let r = 0; r < rows; r++) {
    const ao = r * cols;
    for (let c = 0; c < cols; c++) {
      const x = a[ao + c]!;
      if (x === 0) continue;
      // X[i, j] = a[r, c] with (i, j) = (r, c) when tall, (c, r) when wide.
      const [i, j] = tall ? [r, c] : [c, r];
      const yo = i * k;
      const bo = j * k;
      for (let q = 0; q < k; q++) y[yo + q] = y[yo + q]! + x * b[bo + q]!;
    }
  }
  return y;
}

/** Z = X^T Y in float64 for Y row-major m x k (X as in timesX). */
function timesXT(
  a: Float32Array,
  rows: number,
  cols: number,
  y: Float64Array,
  k: number,
): Float64Array {
  const tall = rows >= cols;
  const n = Math.min(rows, cols);
  const z = new Float64Array(n * k);
  for (let r = 0; r < rows; r++) {
    const ao = r * cols;
    for (let c = 0; c < cols; c++) {
      const x = a[ao + c]!;
      if (x === 0) continue;
      const [i, j] = tall ? [r, c] : [c, r];
      const zo = j * k;
      const yo = i * k;
      for (let q = 0; q < k; q++) z[zo + q] = z[zo + q]! + x * y[yo + q]!;
    }
  }
  return z;
}

/**
 * The polar path with deflation, for "nearly full" matrices (a few singular values at or below
 * tau, as random square layers have). Newton-Schulz designed for [2 tau, s_max] leaves the
 * values below 2 tau unconverged; E = I - X_K^T X_K is then a filter whose dominant eigenvectors
 * are their right singular vectors. A few block iterations on E find them, and a float64
 * Rayleigh-Ritz on X Q gives those pairs; the ones with a float64 residual ||X^T X v - s^2 v||
 * at float32 rounding are deflated: V_l (s <= tau, dropped) and V_h (s > tau, kept exactly).
 * With Q = X_K (I - V_d V_d^T) + U_h V_h^T (u = X v / s),
 *   SVT(A) = A - A V_l V_l^T - tau Q.
 * Certificates: Q^T Q = I - V_l V_l^T to float32 accuracy, and sym(Q^T X) + 2 s_max V_l V_l^T
 * - tau I passes Cholesky. As v^T Q^T X v <= ||Q v|| ||X v||, that proves n - l singular values
 * above tau; by interlacing, the l dropped Ritz values (each <= tau) prove l at or below it.
 * When the certificates fail with the filter's pairs (a value a little below the band: its E
 * eigenvalue is too near float32 rounding to resolve, too large to pass), the bottom pairs come
 * from float64 block inverse iteration on G instead (bottomBasis), and the same steps follow.
 * Null when a certificate fails, a Ritz value is within rounding of tau or the block would be
 * large.
 */
function deflatedPolarSvt(
  a: Float32Array,
  rows: number,
  cols: number,
  tau: number,
): SvtResult | null {
  const tall = rows >= cols;
  const n = Math.min(rows, cols);
  const [x0, g0] = tf.tidy(() => {
    const a2 = tf.tensor2d(a, [rows, cols]);
    const x = tall ? a2 : tf.transpose(a2);
    return [x, tf.matMul(tf.transpose(x), x)] as [tf.Tensor2D, tf.Tensor2D];
  });
  const owned: tf.Tensor[] = [x0, g0];
  try {
    const gdata = g0.dataSync() as Float32Array;
    let fro2 = 0;
    for (let i = 0; i < n; i++) fro2 += gdata[i * n + i]!;
    const scale = Math.min(Math.sqrt(topEigen(gdata, n).value) * 1.05, Math.sqrt(fro2));
    const band = DEFLATE_BAND * tau;
    if (!(scale > band) || tau === 0) return null;
    const alphas = newtonSchulzSchedule((band / scale) * 0.98);
    const [xK, eK] = tf.tidy(() => {
      let x: tf.Tensor2D = tf.div(x0, scale);
      let g: tf.Tensor2D = tf.div(g0, scale * scale);
      const eye = tf.eye(n);
      for (const al of alphas) {
        x = tf.matMul(x, tf.sub(tf.mul(eye, 1.5 * al), tf.mul(g, 0.5 * al * al * al)));
        g = tf.matMul(tf.transpose(x), x);
      }
      return [x, tf.sub(eye, g)] as [tf.Tensor2D, tf.Tensor2D];
    });
    owned.push(xK, eK);
    const ed = eK.dataSync() as Float32Array;
    let trace = 0;
    for (let i = 0; i < n; i++) trace += ed[i * n + i]!;
    const b = Math.ceil(1.5 * Math.max(trace, 0)) + 8;
    if (b > n / 4) return null;
    const rng = new Rng(0xdef1 ^ (rows * 65599 + cols));
    const q = new Float64Array(n * b);
    for (let i = 0; i < q.length; i++) q[i] = rng.normal();
    orthonormalize(q, n, b);
    for (let it = 0; it < 4; it++) {
      const y = tf.tidy(() => tf.matMul(eK, tf.tensor2d(toRowMajor(q, n, b), [n, b])));
      const yd = y.dataSync();
      y.dispose();
      for (let j = 0; j < b; j++) for (let i = 0; i < n; i++) q[j * n + i] = yd[i * b + j]!;
      orthonormalize(q, n, b);
    }
    const problem: Deflation = { a, rows, cols, tau, scale, band, x0, xK };
    const filtered = deflateAndCertify(problem, q, b);
    if (filtered) return filtered;
    // Values a little below the band (about 0.65-0.85 of it) leave E eigenvalues too near float32
    // rounding to be resolved by the filter, and too large for the certificates: find the bottom
    // of the spectrum in float64 instead.
    const bottom = bottomBasis(a, rows, cols, b, scale, rng);
    return bottom && deflateAndCertify(problem, bottom, b);
  } finally {
    tf.dispose(owned);
  }
}

/** What deflateAndCertify needs of the deflated polar path's state. */
interface Deflation {
  a: Float32Array;
  rows: number;
  cols: number;
  tau: number;
  scale: number;
  band: number;
  /** The tall orientation X of `a`, and the last Newton-Schulz iterate. */
  x0: tf.Tensor2D;
  xK: tf.Tensor2D;
}

/**
 * The deflated polar path's second half: Rayleigh-Ritz on X Q (Q the column-major n x b basis
 * `q`), deflation of the converged pairs below the band, the thresholded matrix and its two
 * certificates. Null when a certificate fails or a Ritz value is within rounding of tau.
 */
function deflateAndCertify(d: Deflation, q: Float64Array, b: number): SvtResult | null {
  const { a, rows, cols, tau, scale, band, x0, xK } = d;
  const tall = rows >= cols;
  const n = Math.min(rows, cols);
  const m = Math.max(rows, cols);
  const owned: tf.Tensor[] = [];
  try {
    // Rayleigh-Ritz on X Q in float64; the pairs below the band are deflated.
    const qRows = new Float64Array(n * b);
    for (let j = 0; j < b; j++) for (let i = 0; i < n; i++) qRows[i * b + j] = q[j * n + i]!;
    const { values, vt } = symmetricEigen(gramOfColumns(timesX(a, rows, cols, qRows, b), m, b), b);
    const cand = Array.from({ length: b }, (_, j) => j).filter((j) => values[j]! < band * band);
    // Candidate pairs (n x c, row-major, float64) and their residuals for G = X^T X; only the
    // converged ones (residual at float32 rounding of G) are deflated. A value near the band may
    // have been left mixed in the block; it then stays with the polar part, whose certificates
    // below check that it converged there.
    const c0 = cand.length;
    const vc = new Float64Array(n * c0);
    cand.forEach((j, c) => {
      for (let p = 0; p < b; p++) {
        const w = vt[j * b + p]!;
        for (let i = 0; i < n; i++) vc[i * c0 + c] = vc[i * c0 + c]! + qRows[i * b + p]! * w;
      }
    });
    const xc = timesX(a, rows, cols, vc, c0);
    const gc = timesXT(a, rows, cols, xc, c0);
    const tol = 16 * Math.sqrt(m) * EPS32 * scale * scale;
    const keep: number[] = [];
    const residual: number[] = [];
    for (let c = 0; c < c0; c++) {
      const l = Math.max(values[cand[c]!]!, 0);
      let r2 = 0;
      for (let i = 0; i < n; i++) r2 += (gc[i * c0 + c]! - vc[i * c0 + c]! * l) ** 2;
      // s^2 is within the residual (plus float64 rounding) of an eigenvalue of X^T X.
      const dl = Math.sqrt(r2) + 8 * m * EPS64 * scale * scale;
      residual[c] = dl;
      if (dl > tol) continue;
      keep.push(c);
    }
    if (keep.length === 0) return null;
    // Deflated pairs at or below tau (dropped) and above it (kept exactly: s - tau).
    const sOf = (c: number) => Math.sqrt(Math.max(values[cand[c]!]!, 0));
    if (keep.some((c) => Math.abs(sOf(c) - tau) <= 64 * m * EPS64 * scale)) return null;
    const lowCols = keep.filter((c) => sOf(c) <= tau);
    const highCols = keep.filter((c) => sOf(c) > tau);
    // Kept pairs too close to tau for the float32 certificate below (its margin is at most
    // `marginMax`) are certified in float64 instead.
    const marginMax = (64 * tau + 8 * scale) * Math.sqrt(m) * EPS32;
    const nearCols = highCols.filter((c) => sOf(c) < tau + 4 * marginMax);
    const lifted = [...lowCols, ...nearCols];
    const columns = (y: Float64Array, rowsOf: number, cs: number[], f?: (c: number) => number) => {
      const out = new Float32Array(rowsOf * cs.length);
      for (let i = 0; i < rowsOf; i++)
        cs.forEach((c, k) => {
          out[i * cs.length + k] = y[i * c0 + c]! * (f ? f(c) : 1);
        });
      return tf.tensor2d(out, [rowsOf, cs.length]);
    };
    const [orthT, hT, outT] = tf.tidy(() => {
      const vd = columns(vc, n, keep);
      // Q = X_K on the complement of V_d, u v^T (u = X v / s) on the deflated pairs above tau:
      // orthonormal except on the dropped pairs, where it is zero.
      let q = tf.sub(xK, tf.matMul(tf.matMul(xK, vd), vd, false, true));
      let expected = tf.eye(n) as tf.Tensor2D;
      let drop: tf.Tensor2D = tf.zeros([m, n]);
      if (highCols.length)
        q = tf.add(
          q,
          tf.matMul(
            columns(xc, m, highCols, (c) => 1 / sOf(c)),
            columns(vc, n, highCols),
            false,
            true,
          ),
        );
      let h = tf.matMul(q, x0, true, false);
      if (lifted.length) {
        const vs = columns(vc, n, lifted);
        h = tf.add(h, tf.mul(tf.matMul(vs, vs, false, true), 2 * scale));
      }
      if (lowCols.length) {
        const vl = columns(vc, n, lowCols);
        expected = tf.sub(expected, tf.matMul(vl, vl, false, true));
        drop = tf.matMul(columns(xc, m, lowCols), vl, false, true);
      }
      const orth = tf.max(tf.abs(tf.sub(tf.matMul(q, q, true, false), expected)));
      // SVT(X) = X - (dropped pairs) - tau Q.
      const out = tf.sub(tf.sub(x0, drop), tf.mul(q, tau));
      return [orth, h, tall ? out : tf.transpose(out)];
    });
    owned.push(orthT, hT, outT);
    const orth = orthT.dataSync()[0]!;
    if (!(orth <= 64 * Math.sqrt(m) * EPS32)) return null;
    // v^T Q^T X v <= ||Q v|| ||X v||, so sym(Q^T X) + 2 s_max P_lifted > (tau + margin) I
    // proves ||X v|| > tau ||v|| on the complement C of the lifted pairs (the margin covers the
    // float32 rounding), i.e. n - #lifted singular values above tau. Pairs near tau (V_n) join C
    // when the certificate leaves a second margin: then ||X c|| >= (tau + margin) ||c|| on C and,
    // for v = c + w with w in span(V_n), ||X v||^2 >= (tau + margin)^2 ||c||^2 + (min theta_n -
    // R) ||w||^2 - 2 R ||c|| ||w||, R the norm of their float64 residuals, which exceeds
    // tau^2 ||v||^2 when R^2 < gapC gapN. So n - #low values are above tau; interlacing (each
    // dropped Ritz value bounds a singular value from above) proves #low at or below it.
    const margin = tau * orth + 8 * Math.sqrt(m) * EPS32 * scale;
    const extra = nearCols.length ? margin : 0;
    if (!isPositiveDefinite(hT.dataSync() as Float32Array, n, tau + margin + extra)) return null;
    if (nearCols.length) {
      const r = Math.hypot(...nearCols.map((c) => residual[c]!));
      const gapC = (tau + margin) ** 2 - tau * tau;
      const gapN = Math.min(...nearCols.map((c) => values[cand[c]!]!)) - r - tau * tau;
      if (!(gapN > 0 && r * r < gapC * gapN)) return null;
    }
    const rank = n - lowCols.length;
    return {
      rows,
      cols,
      rank,
      fullRank: n,
      values: null,
      u: null,
      v: null,
      matrix: outT.dataSync() as Float32Array,
      method: 'polar',
      polarOrthError: orth,
      hint: { fullRank: rank === n, rank },
    };
  } finally {
    tf.dispose(owned);
  }
}

/**
 * An orthonormal basis (column-major n x b) of the eigenvectors of the b smallest eigenvalues of
 * G = X^T X, to float64 accuracy: G formed in float64, six steps of block inverse iteration with
 * the Cholesky factor of G + sigma I (sigma, at G's float64 rounding, keeps exactly singular
 * matrices factorisable). Null when the factorisation fails.
 */
function bottomBasis(
  a: Float32Array,
  rows: number,
  cols: number,
  b: number,
  scale: number,
  rng: Rng,
): Float64Array | null {
  // The columns of X as rows, so that G's entries are dot products of contiguous rows.
  const [xc, m, n] = tallColumns(a, rows, cols);
  const l = symmetricDots(xc, xc, n, m);
  const sigma = 64 * n * EPS64 * scale * scale;
  for (let i = 0; i < n; i++) l[i * n + i] = l[i * n + i]! + sigma;
  if (!choleskyInPlace(l, n, n)) return null;
  const q = new Float64Array(n * b);
  for (let i = 0; i < q.length; i++) q[i] = rng.normal();
  orthonormalize(q, n, b);
  for (let it = 0; it < 6; it++) {
    for (let j = 0; j < b; j++) solveCholesky(l, n, q, j * n);
    orthonormalize(q, n, b);
  }
  return q;
}

/**
 * Solves L L^T z = x in place for x = y[yo .. yo + n), L the lower triangle of the row-major
 * n x n `l` (what choleskyInPlace leaves there).
 */
function solveCholesky(l: Float64Array, n: number, y: Float64Array, yo: number): void {
  for (let i = 0; i < n; i++) y[yo + i] = (y[yo + i]! - dot(l, i * n, y, yo, i)) / l[i * n + i]!;
  // L^T z = y from the last row up: once z_i is known, z_i times row i of L leaves the rows above.
  for (let i = n - 1; i >= 0; i--) {
    const z = y[yo + i]! / l[i * n + i]!;
    y[yo + i] = z;
    const o = i * n;
    for (let k = 0; k < i; k++) y[yo + k] = y[yo + k]! - l[o + k]! * z;
  }
}

/** Orthonormalises the k columns of the column-major n x k `q` in place (Gram-Schmidt, twice). */
function orthonormalize(q: Float64Array, n: number, k: number): void {
  for (let j = 0; j < k; j++) {
    const c = j * n;
    for (let pass = 0; pass < 2; pass++) {
      for (let p = 0; p < j; p++) {
        const po = p * n;
        let d = 0;
        for (let i = 0; i < n; i++) d += q[po + i]! * q[c + i]!;
        for (let i = 0; i < n; i++) q[c + i] = q[c + i]! - d * q[po + i]!;
      }
    }
    let nrm = 0;
    for (let i = 0; i < n; i++) nrm += q[c + i]! * q[c + i]!;
    nrm = Math.sqrt(nrm);
    // A column that vanished is replaced by a coordinate vector and orthonormalised again.
    if (!(nrm > 1e-300)) {
      q.fill(0, c, c + n);
      q[c + (j % n)] = 1;
      j--;
      continue;
    }
    for (let i = 0; i < n; i++) q[c + i] = q[c + i]! / nrm;
  }
}

/** Column-major n x k float64 -> row-major n x k float32 (tfjs layout). */
function toRowMajor(q: Float64Array, n: number, k: number): Float32Array {
  const out = new Float32Array(n * k);
  for (let j = 0; j < k; j++) for (let i = 0; i < n; i++) out[i * k + j] = q[j * n + i]!;
  return out;
}

/**
 * The subspace path for low rank: block power iteration on the Gram matrix G = X^T X (tfjs
 * matmuls), Rayleigh-Ritz on X itself in float64, then two certificates: every kept triplet has a
 * residual ||X^T u - s v|| below 1e-6 s, and (tau^2 - margin) I - (G - V_r S_r^2 V_r^T) passes a
 * Cholesky factorisation, which by Weyl's inequality proves that no singular value beyond the r
 * kept ones exceeds tau. Null when a certificate fails.
 */
function subspaceSvt(
  a: Float32Array,
  rows: number,
  cols: number,
  tau: number,
  policy: FactorPolicy,
  hint: SvtHint | undefined,
): SvtResult | null {
  const tall = rows >= cols;
  const n = Math.min(rows, cols);
  const m = Math.max(rows, cols);
  const warm = hint?.basis && hint.rank !== undefined && hint.basis.length === n * hint.rank;
  const r0 = warm ? hint!.rank! : Math.ceil(n / 8);
  const k = Math.min(n, warm ? r0 + 10 + Math.ceil(r0 / 10) : Math.max(8, 2 * r0 + 8));
  // A block this wide costs as much as the exact path and rarely certifies.
  if (k > 0.75 * n) return null;
  const iters = warm ? 2 : 5;
  const rng = new Rng(0x5eed ^ (rows * 65599 + cols));
  const q = new Float64Array(n * k);
  const start = warm ? hint!.basis!.length : 0;
  if (warm) q.set(hint!.basis!);
  for (let i = start; i < n * k; i++) q[i] = rng.normal();
  const [x, g] = tf.tidy(() => {
    const a2 = tf.tensor2d(a, [rows, cols]);
    const xx = tall ? a2 : tf.transpose(a2);
    return [xx, tf.matMul(tf.transpose(xx), xx)] as [tf.Tensor2D, tf.Tensor2D];
  });
  try {
    orthonormalize(q, n, k);
    for (let it = 0; it < iters; it++) {
      const y = tf.tidy(() => tf.matMul(g, tf.tensor2d(toRowMajor(q, n, k), [n, k])));
      const yd = y.dataSync();
      y.dispose();
      for (let j = 0; j < k; j++) for (let i = 0; i < n; i++) q[j * n + i] = yd[i * k + j]!;
      orthonormalize(q, n, k);
    }
    // Rayleigh-Ritz on X: the SVD of Y = X Q (m x k) in float64 via its Gram matrix.
    const qt = tf.tensor2d(toRowMajor(q, n, k), [n, k]);
    const yT = tf.matMul(x, qt);
    const yd = yT.dataSync();
    yT.dispose();
    const gy = gramOfColumns(yd, m, k);
    const { values, vt } = symmetricEigen(gy, k);
    const order = Array.from({ length: k }, (_, i) => i).sort((i, j) => values[j]! - values[i]!);
    const s = order.map((i) => Math.sqrt(Math.max(values[i]!, 0)));
    let r = 0;
    while (r < k && s[r]! > tau) r++;
    if (r === k) {
      qt.dispose();
      return null;
    }
    // Right vectors V_r = Q W_r (n x r), left vectors U_r = Y W_r / s (m x r), row-major.
    const w = new Float32Array(k * r);
    for (let j = 0; j < r; j++) for (let p = 0; p < k; p++) w[p * r + j] = vt[order[j]! * k + p]!;
    const [vT, uT, resT, dT, xT] = tf.tidy(() => {
      if (r === 0) {
        const z = tf.zeros([0]);
        return [z, z.clone(), z.clone(), g.clone(), tf.zeros([rows, cols])];
      }
      const wt = tf.tensor2d(w, [k, r]);
      const sInv = tf.tensor1d(s.slice(0, r).map((x) => 1 / x));
      const sv = tf.tensor1d(s.slice(0, r));
      const vv = tf.matMul(qt, wt);
      const uu = tf.mul(tf.matMul(tf.tensor2d(yd, [m, k]), wt), sInv);
      const res = tf.sqrt(
        tf.sum(tf.square(tf.sub(tf.matMul(tf.transpose(x), uu), tf.mul(vv, sv))), 0),
      );
      const vs = tf.mul(vv, sv);
      const recon = tf.matMul(tf.mul(uu, tf.sub(sv, tau)), tf.transpose(vv));
      return [
        vv,
        uu,
        res,
        tf.sub(g, tf.matMul(vs, tf.transpose(vs))),
        tall ? recon : tf.transpose(recon),
      ];
    });
    qt.dispose();
    const vd = vT.dataSync() as Float32Array;
    const ud = uT.dataSync() as Float32Array;
    const res = resT.dataSync();
    const dd = dT.dataSync() as Float32Array;
    const matrix = xT.dataSync() as Float32Array;
    tf.dispose([vT, uT, resT, dT, xT]);
    for (let j = 0; j < r; j++)
      if (!(res[j]! <= 1e-6 * s[j]! + 4 * Math.sqrt(m) * EPS32 * s[0]!)) return null;
    const margin = 8 * Math.sqrt(m) * EPS32 * s[0]! * s[0]!;
    for (let i = 0; i < n * n; i++) dd[i] = -dd[i]!;
    if (!isPositiveDefinite(dd, n, margin - tau * tau)) return null;
    const values32 = new Float64Array(r);
    for (let j = 0; j < r; j++) values32[j] = s[j]! - tau;
    const uRows = tall ? ud : vd;
    const vRows = tall ? vd : ud;
    const basis = new Float32Array(n * r);
    for (let j = 0; j < r; j++) for (let i = 0; i < n; i++) basis[j * n + i] = vd[i * r + j]!;
    const full = n;
    const withFactors = policy === 'always' || lowRankPays(rows, cols, r);
    return {
      rows,
      cols,
      rank: r,
      fullRank: full,
      values: withFactors ? values32 : null,
      u: withFactors ? uRows : null,
      v: withFactors ? vRows : null,
      matrix,
      method: 'subspace',
      hint: { fullRank: r === full, rank: r, basis },
    };
  } finally {
    tf.dispose([x, g]);
  }
}

/** Singular-value thresholding of the row-major `rows x cols` matrix `a` at `tau`. */
export function svt(
  a: Float32Array,
  rows: number,
  cols: number,
  tau: number,
  opts: SvtOptions = {},
): SvtResult {
  checkArgs(a, rows, cols, tau);
  const method = opts.method ?? 'auto';
  const policy = opts.factors ?? 'always';
  if (!['auto', 'polar', 'subspace', 'gram', 'jacobi'].includes(method)) {
    throw new Error(
      `svt: method must be one of auto, polar, subspace, gram, jacobi; got '${method}'`,
    );
  }
  if (method === 'jacobi') return fromSvd(jacobiSvd(a, rows, cols), tau, policy);
  const side = Math.min(rows, cols);
  if (method === 'polar' && policy === 'always') {
    throw new Error("svt: method 'polar' returns no factors; use factors: 'whenLowRank'");
  }
  const lastFull = opts.hint?.fullRank ?? true;
  const tryPolar =
    method === 'polar' ||
    (method === 'auto' &&
      policy === 'whenLowRank' &&
      side >= POLAR_MIN_SIDE &&
      tau > 0 &&
      lastFull);
  if (tryPolar) {
    const r = polarSvt(a, rows, cols, tau, opts.hint);
    if (r) return r;
  }
  // Nearly full rank (a few values at or below tau): the deflated polar path, whose factors never
  // pay (its rank is above 3/4 of full).
  const lastRank = opts.hint?.rank ?? Math.min(rows, cols);
  if (
    (tryPolar && (method === 'polar' || side >= DEFLATED_MIN_SIDE)) ||
    (method === 'auto' &&
      policy === 'whenLowRank' &&
      side >= DEFLATED_MIN_SIDE &&
      tau > 0 &&
      lastRank > 0.75 * side)
  ) {
    const r = deflatedPolarSvt(a, rows, cols, tau);
    if (r && !lowRankPays(rows, cols, r.rank)) return r;
  }
  const trySubspace =
    method === 'subspace' ||
    (method === 'auto' && side >= SUBSPACE_MIN_SIDE && (tryPolar || !lastFull));
  if (trySubspace) {
    const r = subspaceSvt(a, rows, cols, tau, policy, opts.hint);
    if (r) return r;
  }
  return gramSvt(a, rows, cols, tau, policy) ?? fromSvd(jacobiSvd(a, rows, cols), tau, policy);
}

/** The factors FEDSLR.md's downlink sends: U sqrt(S) (rows x rank) and sqrt(S) V^T (rank x cols). */
export function balancedFactors(r: SvtResult): { left: Float32Array; right: Float32Array } {
  if (!r.values || !r.u || !r.v) {
    throw new Error(
      'balancedFactors: this SVT result carries no factors (computed with factors: whenLowRank where they do not pay)',
    );
  }
  const { rows, cols, rank } = r;
  const left = new Float32Array(rows * rank);
  const right = new Float32Array(rank * cols);
  for (let j = 0; j < rank; j++) {
    const q = Math.sqrt(r.values[j]!);
    for (let i = 0; i < rows; i++) left[i * rank + j] = r.u[i * rank + j]! * q;
    for (let c = 0; c < cols; c++) right[j * cols + c] = r.v[c * rank + j]! * q;
  }
  return { left, right };
}

/**
 * Convenience for callers that always want the balanced factors with the thresholded matrix.
 * Always computes factors, so it never takes the fast polar path; `svtParams` (or `svt` with
 * factors: 'whenLowRank') does.
 */
export function svtMatrix(
  a: Float32Array,
  rows: number,
  cols: number,
  tau: number,
  opts: Omit<SvtOptions, 'factors'> = {},
): {
  matrix: Float32Array;
  rank: number;
  fullRank: number;
  left: Float32Array;
  right: Float32Array;
} {
  const r = svt(a, rows, cols, tau, { ...opts, factors: 'always' });
  return { matrix: r.matrix, rank: r.rank, fullRank: r.fullRank, ...balancedFactors(r) };
}
