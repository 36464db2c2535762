import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../tensor/backend.js';
import { isPositiveDefinite } from './cholesky.js';
import { plantedMatrix } from './planted.js';
import { lowRankPays } from './prox.js';
import { gramSvd, jacobiSvd, type Svd } from './svd.js';
import {
  balancedFactors,
  gramDomainPolar,
  newtonSchulzSchedule,
  type SvtResult,
  svt,
  svtMatrix,
} from './svt.js';

beforeAll(async () => {
  await initBackend('cpu');
});

function orthError(q: ArrayLike<number>, n: number, k: number): number {
  let e = 0;
  for (let a = 0; a < k; a++)
    for (let b = a; b < k; b++) {
      let d = 0;
      for (let i = 0; i < n; i++) d += q[i * k + a]! * q[i * k + b]!;
      e = Math.max(e, Math.abs(d - (a === b ? 1 : 0)));
    }
  return e;
}

/** Exact SVT of `a` from the float64 Jacobi SVD (itself checked against planted values below). */
function reference(a: Float32Array, rows: number, cols: number, tau: number): Float64Array {
  const d = jacobiSvd(a, rows, cols);
  const out = new Float64Array(rows * cols);
  for (let j = 0; j < d.k && d.s[j]! > tau; j++) {
    const w = d.s[j]! - tau;
    for (let i = 0; i < rows; i++)
      for (let c = 0; c < cols; c++) out[i * cols + c] += d.u[i * d.k + j]! * w * d.v[c * d.k + j]!;
  }
  return out;
}

function relErr(x: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (x[i]! - ref[i]!) ** 2;
    den += ref[i]! ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

/** Checks a result against the planted singular values `s` (descending) and the exact SVT. */
function checkResult(r: SvtResult, a: Float32Array, s: readonly number[], tau: number): void {
  const kept = s.filter((x) => x > tau);
  expect(r.rank).toBe(kept.length);
  const ref = reference(a, r.rows, r.cols, tau);
  expect(relErr(r.matrix, ref)).toBeLessThan(2e-5);
  if (r.values) {
    kept.forEach((x, i) => expect(Math.abs(r.values![i]! - (x - tau)) / x).toBeLessThan(1e-4));
    expect(orthError(r.u!, r.rows, r.rank)).toBeLessThan(1e-4);
    expect(orthError(r.v!, r.cols, r.rank)).toBeLessThan(1e-4);
  }
}

function geometric(n: number, hi: number, lo: number): number[] {
  return Array.from({ length: n }, (_, i) => hi * (lo / hi) ** (n === 1 ? 0 : i / (n - 1)));
}

interface Case {
  name: string;
  rows: number;
  cols: number;
  s: number[];
  tau: number;
}

const CASES: Case[] = [
  { name: 'full rank, tall', rows: 60, cols: 40, s: geometric(40, 1, 0.05), tau: 0.01 },
  { name: 'full rank, wide', rows: 30, cols: 70, s: geometric(30, 2, 0.1), tau: 0.05 },
  { name: 'low rank (planted zeros)', rows: 50, cols: 50, s: geometric(5, 1, 0.3), tau: 0.001 },
  {
    name: 'most values below tau',
    rows: 45,
    cols: 80,
    s: [...geometric(6, 1, 0.4), ...geometric(39, 0.19, 0.001)],
    tau: 0.2,
  },
  {
    name: 'clustered and repeated values',
    rows: 40,
    cols: 36,
    s: [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.3001, 0.3, 0.2999, ...geometric(26, 0.1, 0.01)],
    tau: 0.05,
  },
  {
    name: 'values just above and just below tau',
    rows: 32,
    cols: 32,
    s: [
      1,
      0.6,
      0.25 * 1.001,
      0.25 * 1.0001,
      0.25 * 0.9999,
      0.25 * 0.999,
      ...geometric(26, 0.2, 0.01),
    ],
    tau: 0.25,
  },
  { name: '1 x N', rows: 1, cols: 57, s: [0.8], tau: 0.3 },
  { name: 'N x 1', rows: 64, cols: 1, s: [0.8], tau: 0.3 },
  { name: '1 x N below tau', rows: 1, cols: 9, s: [0.2], tau: 0.3 },
];

describe('exact SVDs', () => {
  it.each(CASES)(
    '$name: Jacobi and Gram SVDs recover the planted spectrum',
    ({ rows, cols, s }) => {
      const a = plantedMatrix(rows, cols, s, 11);
      const full = [...s, ...new Array(Math.min(rows, cols) - s.length).fill(0)];
      for (const d of [jacobiSvd(a, rows, cols), gramSvd(a, rows, cols)] as Svd[]) {
        expect(d.k).toBe(Math.min(rows, cols));
        full.forEach((x, i) => expect(Math.abs(d.s[i]! - x)).toBeLessThan(1e-6 * (s[0] ?? 1)));
        const nz = s.filter((x) => x > 1e-3 * s[0]!).length;
        expect(orthError(d.u, rows, d.k) < 1e-6 || nz < d.k).toBe(true);
        // Columns for non-zero values are orthonormal.
        const sub = (q: Float64Array, n: number) =>
          Float64Array.from({ length: n * nz }, (_, t) => q[Math.floor(t / nz) * d.k + (t % nz)]!);
        expect(orthError(sub(d.u, rows), rows, nz)).toBeLessThan(1e-6);
        expect(orthError(sub(d.v, cols), cols, nz)).toBeLessThan(1e-6);
      }
    },
  );
});

describe('svt', () => {
  for (const method of ['jacobi', 'gram', 'auto'] as const) {
    it.each(CASES)(`$name (${method})`, async ({ rows, cols, s, tau }) => {
      const a = plantedMatrix(rows, cols, s, 5);
      checkResult(await svt(a, rows, cols, tau, { method }), a, s, tau);
    });
  }

  it.each(CASES)('$name (gram, factors only when they pay)', async ({ rows, cols, s, tau }) => {
    const a = plantedMatrix(rows, cols, s, 5);
    const r = await svt(a, rows, cols, tau, { method: 'gram', factors: 'whenLowRank' });
    expect(r.method).toBe('gram');
    expect(r.values === null).toBe(!lowRankPays(rows, cols, r.rank));
    checkResult(r, a, s, tau);
  });

  it.each([
    { rows: 130, cols: 70 },
    { rows: 70, cols: 130 },
  ])(
    'gram path with its last product in tfjs ($rows x $cols, full rank)',
    async ({ rows, cols }) => {
      const s = geometric(70, 1, 0.02);
      const a = plantedMatrix(rows, cols, s, 8);
      const before = tf.memory().numTensors;
      const r = await svt(a, rows, cols, 0.01, { method: 'gram', factors: 'whenLowRank' });
      expect(tf.memory().numTensors).toBe(before);
      expect(r.method).toBe('gram');
      expect(r.values).toBeNull();
      checkResult(r, a, s, 0.01);
    },
  );

  it('the zero matrix thresholds to zero with rank 0', async () => {
    for (const method of ['jacobi', 'gram', 'auto'] as const) {
      const r = await svt(new Float32Array(12), 3, 4, 0.1, { method });
      expect(r.rank).toBe(0);
      expect(r.matrix.every((x) => x === 0)).toBe(true);
      expect(r.values!.length).toBe(0);
    }
  });

  it('tau = 0 returns the matrix itself', async () => {
    const a = plantedMatrix(20, 12, geometric(12, 1, 0.1), 2);
    const r = await svt(a, 20, 12, 0, { method: 'gram' });
    expect(r.rank).toBe(12);
    expect(relErr(r.matrix, a)).toBeLessThan(1e-6);
  });

  it('balanced factors multiply back to the thresholded matrix', async () => {
    const a = plantedMatrix(24, 18, geometric(10, 1, 0.05), 3);
    const r = await svtMatrix(a, 24, 18, 0.2);
    const back = new Float64Array(24 * 18);
    for (let i = 0; i < 24; i++)
      for (let c = 0; c < 18; c++)
        for (let j = 0; j < r.rank; j++)
          back[i * 18 + c] += r.left[i * r.rank + j]! * r.right[j * 18 + c]!;
    expect(relErr(back, r.matrix)).toBeLessThan(1e-5);
    expect(r.rank).toBe(geometric(10, 1, 0.05).filter((x) => x > 0.2).length);
  });

  it('rejects bad arguments by name', async () => {
    const a = new Float32Array(6);
    await expect(svt(a, 2, 4, 0.1)).rejects.toThrow(/6 values for a 2 x 4/);
    await expect(svt(a, 2, 3, -1)).rejects.toThrow(/tau/);
    await expect(svt(a, 0, 3, 1)).rejects.toThrow(/rows and cols/);
    await expect(svt(a, 2, 3, 1, { method: 'polar' })).rejects.toThrow(/whenLowRank/);
  });
});

describe('polar path', () => {
  it('the Newton-Schulz schedule takes every value in [l, 1] to 1', () => {
    for (const l of [0.5, 0.1, 1e-2, 1e-3]) {
      const alphas = newtonSchulzSchedule(l);
      for (const x0 of [l, 2 * l, 0.3, 0.9, 1].filter((x) => x >= l)) {
        let x = x0;
        for (const a of alphas) x = 1.5 * a * x - 0.5 * a ** 3 * x ** 3;
        expect(Math.abs(x - 1)).toBeLessThan(1e-6);
      }
    }
  });

  it.each([
    { rows: 120, cols: 100, s: geometric(100, 1, 0.02), tau: 0.01 },
    { rows: 100, cols: 130, s: geometric(100, 3, 0.5), tau: 0.2 },
  ])(
    'thresholds a full-rank $rows x $cols matrix exactly, without leaking tensors',
    async ({ rows, cols, s, tau }) => {
      const a = plantedMatrix(rows, cols, s, 8);
      const before = tf.memory().numTensors;
      const r = await svt(a, rows, cols, tau, { method: 'polar', factors: 'whenLowRank' });
      expect(tf.memory().numTensors).toBe(before);
      expect(r.method).toBe('polar');
      expect(r.polarOrthError!).toBeLessThan(1e-4);
      checkResult(r, a, s, tau);
    },
  );

  it('auto takes it from 64 columns; below 96 a value under tau goes on to an exact method', async () => {
    const s = geometric(64, 1, 0.02);
    const a = plantedMatrix(128, 64, s, 23);
    const r = await svt(a, 128, 64, 0.01, { factors: 'whenLowRank' });
    expect(r.method).toBe('polar');
    checkResult(r, a, s, 0.01);
    const below = [...geometric(63, 1, 0.05), 0.01 * 0.999];
    const b = plantedMatrix(64, 80, below, 24);
    const rb = await svt(b, 64, 80, 0.01, { factors: 'whenLowRank' });
    expect(rb.method).toBe('gram');
    expect(rb.rank).toBe(63);
    checkResult(rb, b, below, 0.01);
  });

  it.each([
    { rows: 400, cols: 100 },
    { rows: 100, cols: 400 },
  ])('iterates on the Gram matrix of a $rows x $cols matrix', async ({ rows, cols }) => {
    const s = geometric(100, 1, 0.02);
    const tau = 0.01;
    const a = plantedMatrix(rows, cols, s, 21);
    const r = await svt(a, rows, cols, tau, { method: 'polar', factors: 'whenLowRank' });
    expect(r.method).toBe('polar');
    checkResult(r, a, s, tau);
    // The Gram-domain iterate, before polishing, is already near orthonormal, so one or two plain
    // Newton-Schulz steps finish it.
    const tall = tf.tidy(() => {
      const t = tf.tensor2d(a, [rows, cols]);
      return rows >= cols ? t : tf.transpose(t);
    }) as tf.Tensor2D;
    const before = tf.memory().numTensors;
    const g0 = tf.matMul(tall, tall, true, false) as tf.Tensor2D;
    const eye = tf.eye(100);
    const step = (g: tf.Tensor2D, al: number) =>
      tf.sub(tf.mul(eye, 1.5 * al), tf.mul(g, 0.5 * al ** 3)) as tf.Tensor2D;
    const out = await gramDomainPolar(tall, g0, 1.05, newtonSchulzSchedule(0.01), step);
    expect(out).not.toBeNull();
    expect(out!.polish.length).toBeGreaterThanOrEqual(1);
    expect(out!.polish.length).toBeLessThanOrEqual(2);
    const devT = tf.tidy(() => tf.max(tf.abs(tf.sub(out!.g, eye))));
    expect((await devT.data())[0]!).toBeLessThan(1e-2);
    tf.dispose([g0, eye, devT, out!.x, out!.g]);
    expect(tf.memory().numTensors).toBe(before);
    tall.dispose();
  });

  it('designs its schedule for a certified s_min when the matrix is well conditioned', async () => {
    const s = geometric(100, 2, 0.8);
    const a = plantedMatrix(300, 100, s, 13);
    const r = await svt(a, 300, 100, 1e-3, { method: 'polar', factors: 'whenLowRank' });
    expect(r.method).toBe('polar');
    expect(r.hint.polarL).toBe(0.25);
    checkResult(r, a, s, 1e-3);
    const again = await svt(a, 300, 100, 1e-3, {
      method: 'polar',
      factors: 'whenLowRank',
      hint: r.hint,
    });
    expect(again.hint.polarL).toBe(0.25);
    checkResult(again, a, s, 1e-3);
  });

  it('starts its power iteration from the hint, and a misleading start vector costs time, not exactness', async () => {
    const s = [1, ...geometric(99, 0.9, 0.05)];
    const a = plantedMatrix(200, 100, s, 17);
    const r = await svt(a, 200, 100, 0.01, { factors: 'whenLowRank' });
    expect(r.method).toBe('polar');
    expect(r.hint.topVector?.length).toBe(100);
    checkResult(r, a, s, 0.01);
    const again = await svt(a, 200, 100, 0.01, { factors: 'whenLowRank', hint: r.hint });
    expect(again.method).toBe('polar');
    checkResult(again, a, s, 0.01);
    // A start orthogonal to the top right singular vector: six steps leave the estimate near
    // s_2^2, so the scale undershoots s_1 and Newton-Schulz flips that direction; the certificate
    // must reject it and a later method answer exactly.
    const v1 = jacobiSvd(a, 200, 100).v;
    const start = new Float32Array(100);
    start[0] = 1;
    for (let i = 0; i < 100; i++) start[i] = start[i]! - v1[0]! * v1[i * 100]!;
    const misled = await svt(a, 200, 100, 0.01, {
      factors: 'whenLowRank',
      hint: { ...r.hint, topVector: start },
    });
    expect(misled.method).not.toBe('polar');
    checkResult(misled, a, s, 0.01);
    const zero = await svt(a, 200, 100, 0.01, {
      factors: 'whenLowRank',
      hint: { ...r.hint, topVector: new Float32Array(100) },
    });
    expect(zero.method).toBe('polar');
    checkResult(zero, a, s, 0.01);
  });

  it.each([
    { name: 'one value below tau', s: [...geometric(99, 1, 0.05), 0.009], tau: 0.01 },
    { name: 'one value just below tau', s: [...geometric(99, 1, 0.05), 0.01 * 0.999], tau: 0.01 },
    {
      name: 'most values below tau',
      s: [...geometric(10, 1, 0.3), ...geometric(90, 0.09, 0.001)],
      tau: 0.1,
    },
  ])('stays exact when not every value exceeds tau ($name)', async ({ s, tau }) => {
    const a = plantedMatrix(110, 100, s, 9);
    const before = tf.memory().numTensors;
    const r = await svt(a, 110, 100, tau, { method: 'polar', factors: 'whenLowRank' });
    expect(tf.memory().numTensors).toBe(before);
    checkResult(r, a, s, tau);
    if (lowRankPays(110, 100, r.rank)) expect(balancedFactors(r).left.length).toBe(110 * r.rank);
    else expect(r.values).toBeNull();
    // With last round's polar hint the polar path skips its early test on the Gram matrix and
    // iterates; its final certificate must still send the matrix on.
    const prior = await svt(plantedMatrix(110, 100, geometric(100, 1, 2 * tau), 9), 110, 100, tau, {
      factors: 'whenLowRank',
    });
    expect(prior.hint.polarL).toBeDefined();
    const hinted = await svt(a, 110, 100, tau, { factors: 'whenLowRank', hint: prior.hint });
    expect(hinted.rank).toBe(r.rank);
    checkResult(hinted, a, s, tau);
  });
});

describe('deflated polar path', () => {
  it.each([
    {
      name: 'three values far below tau',
      s: [...geometric(97, 1, 0.02), 1e-3, 1e-4, 0],
      tau: 0.01,
    },
    {
      name: 'deflated values on both sides of tau',
      s: [...geometric(95, 1, 0.05), 0.04, 0.031, 0.0299, 0.01, 0],
      tau: 0.03,
    },
    {
      name: 'values at and near zero, wide',
      s: [...geometric(92, 2, 0.05), ...geometric(8, 0.02, 1e-6)],
      tau: 0.03,
    },
  ])('thresholds a nearly full-rank matrix exactly ($name)', async ({ s, tau }) => {
    const tall = s[99] === 0;
    const [rows, cols] = tall ? [130, 100] : [100, 140];
    const a = plantedMatrix(rows, cols, s, 17);
    const before = tf.memory().numTensors;
    const r = await svt(a, rows, cols, tau, { factors: 'whenLowRank' });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.method).toBe('polar');
    expect(r.rank).toBeLessThan(100);
    checkResult(r, a, s, tau);
  });
});

describe('deflated polar path, float64 bottom pairs', () => {
  // A value at 0.6 of the band (2 tau): Newton-Schulz leaves it nearly converged, which the
  // float32 filter cannot resolve and the certificates reject. A kept value 0.05% above tau:
  // closer to tau than the float32 certificate can tell. The float64 inverse iteration and the
  // float64 certificate of the pairs near tau answer both.
  const head = geometric(96, 1, 0.05);
  it.each([
    { name: 'a value at 0.6 of the band', rows: 130, cols: 100, near: 0.012 },
    { name: 'a value at 0.6 of the band', rows: 100, cols: 140, near: 0.012 },
    { name: 'a kept value 1.0005 tau', rows: 130, cols: 100, near: 0.010005 },
    { name: 'a kept value 1.0005 tau', rows: 100, cols: 140, near: 0.010005 },
  ])(
    'thresholds $rows x $cols exactly without the Gram path ($name)',
    async ({ rows, cols, near }) => {
      const s = [...head, near, 0.009, 0.005, 0];
      const a = plantedMatrix(rows, cols, s, 17);
      const before = tf.memory().numTensors;
      const r = await svt(a, rows, cols, 0.01, { factors: 'whenLowRank' });
      expect(tf.memory().numTensors).toBe(before);
      expect(r.method).toBe('polar');
      checkResult(r, a, s, 0.01);
    },
  );
});

describe('subspace path', () => {
  const s = [...geometric(10, 1, 0.3), ...geometric(110, 0.09, 0.001)];
  it.each([
    { rows: 150, cols: 120 },
    { rows: 120, cols: 170 },
  ])(
    'finds every value above tau in a low-rank $rows x $cols matrix, cold and warm',
    async ({ rows, cols }) => {
      const a = plantedMatrix(rows, cols, s, 21);
      const before = tf.memory().numTensors;
      const cold = await svt(a, rows, cols, 0.1, { method: 'subspace' });
      expect(cold.method).toBe('subspace');
      checkResult(cold, a, s, 0.1);
      const warm = await svt(a, rows, cols, 0.1, { method: 'subspace', hint: cold.hint });
      expect(warm.method).toBe('subspace');
      checkResult(warm, a, s, 0.1);
      expect(tf.memory().numTensors).toBe(before);
    },
  );

  it('answers small low-rank matrices too, once a round was low-rank', async () => {
    const small = [...geometric(7, 1, 0.3), ...geometric(57, 0.09, 0.001)];
    const a = plantedMatrix(128, 64, small, 22);
    const first = await svt(a, 128, 64, 0.1, { factors: 'whenLowRank' });
    checkResult(first, a, small, 0.1);
    const next = await svt(a, 128, 64, 0.1, { factors: 'whenLowRank', hint: first.hint });
    expect(next.method).toBe('subspace');
    checkResult(next, a, small, 0.1);
  });

  it('falls back when the kept rank exceeds its block (full rank)', async () => {
    const full = geometric(100, 1, 0.2);
    const a = plantedMatrix(110, 100, full, 4);
    const r = await svt(a, 110, 100, 0.1, { method: 'subspace' });
    expect(r.method).not.toBe('subspace');
    checkResult(r, a, full, 0.1);
  });

  it('a stale warm start still gives the exact answer', async () => {
    const a = plantedMatrix(130, 100, s.slice(0, 100), 30);
    const other = await svt(plantedMatrix(130, 100, s.slice(0, 100), 31), 130, 100, 0.1, {
      method: 'subspace',
    });
    const r = await svt(a, 130, 100, 0.1, { method: 'subspace', hint: other.hint });
    checkResult(r, a, s.slice(0, 100), 0.1);
  });
});

/** A^T A of the square row-major n x n `a`, summed in float64, stored in float32. */
function gramOf(a: Float32Array, n: number): Float32Array {
  const h = new Float32Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let t = 0;
      for (let k = 0; k < n; k++) t += a[k * n + i]! * a[k * n + j]!;
      h[i * n + j] = t;
    }
  return h;
}

describe('certificates', () => {
  it('the Cholesky test separates definite from indefinite, small and blocked', async () => {
    for (const n of [40, 300]) {
      const a = plantedMatrix(n, n, geometric(n, 2, 0.5), 7);
      // h = A^T A has eigenvalues s^2 in [0.25, 4].
      const h = gramOf(a, n);
      expect(await isPositiveDefinite(h, n, 0.24)).toBe(true);
      expect(await isPositiveDefinite(h, n, 0.26)).toBe(false);
      expect(await isPositiveDefinite(h, n, 4.1)).toBe(false);
    }
  });

  it('the blocked Cholesky test resolves the smallest eigenvalue of an ill-conditioned matrix to 2%', async () => {
    const n = 300;
    const s = geometric(n, 1, 0.03);
    const a = plantedMatrix(n, n, s, 11);
    // h = A^T A, eigenvalues s^2 from 1 down to 9e-4; made slightly unsymmetric, as sym(Q^T A) is.
    const h = gramOf(a, n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) h[i * n + j] = h[i * n + j]! + (i < j ? 1e-7 : -1e-7);
    }
    const lmin = s[n - 1]! ** 2;
    expect(await isPositiveDefinite(h, n, lmin * 0.98)).toBe(true);
    expect(await isPositiveDefinite(h, n, lmin * 1.02)).toBe(false);
  });

  it('the subspace path certifies a matrix with nothing above tau', async () => {
    const s = geometric(100, 0.05, 0.001);
    const a = plantedMatrix(120, 100, s, 12);
    const r = await svt(a, 120, 100, 0.1, { method: 'subspace' });
    expect(r.method).toBe('subspace');
    expect(r.rank).toBe(0);
    expect(r.matrix.every((x) => x === 0)).toBe(true);
  });
});
