/**
 * Matrices with a planted spectrum, for tests and the benchmark: A = U diag(s) V^T with U and V
 * orthonormal (float64 Gram-Schmidt, twice, of seeded Gaussian columns), rounded to float32.
 */
import { Rng } from '../tensor/rng.js';

/** k orthonormal columns of length m, column-major (column j at [j*m, (j+1)*m)). */
export function randomOrthonormal(m: number, k: number, rng: Rng): Float64Array {
  if (k > m)
    throw new Error(`randomOrthonormal: ${k} columns cannot be orthonormal in dimension ${m}`);
  const q = new Float64Array(m * k);
  for (let j = 0; j < k; j++) {
    const c = j * m;
    for (let i = 0; i < m; i++) q[c + i] = rng.normal();
    for (let pass = 0; pass < 2; pass++) {
      for (let p = 0; p < j; p++) {
        const po = p * m;
        let d = 0;
        for (let i = 0; i < m; i++) d += q[po + i]! * q[c + i]!;
        for (let i = 0; i < m; i++) q[c + i] = q[c + i]! - d * q[po + i]!;
      }
    }
    let nrm = 0;
    for (let i = 0; i < m; i++) nrm += q[c + i]! * q[c + i]!;
    nrm = Math.sqrt(nrm);
    for (let i = 0; i < m; i++) q[c + i] = q[c + i]! / nrm;
  }
  return q;
}

export interface Planted {
  /** rows x cols, row-major, float32. */
  a: Float32Array;
  /** The planted factors in float64, column-major: rows x s.length and cols x s.length. */
  u: Float64Array;
  v: Float64Array;
}

/** A rows x cols matrix whose singular values are `s` (padded with zeros), with its factors. */
export function plantedSvd(
  rows: number,
  cols: number,
  s: readonly number[],
  seed: number,
): Planted {
  const k = Math.min(rows, cols);
  if (s.length > k) {
    throw new Error(`plantedMatrix: ${s.length} singular values for a ${rows} x ${cols} matrix`);
  }
  const rng = Rng.derive(seed, rows, cols);
  const r = s.length;
  const u = randomOrthonormal(rows, r, rng);
  const v = randomOrthonormal(cols, r, rng);
  return { a: Float32Array.from(lowRankProduct(u, v, s, rows, cols)), u, v };
}

/** U diag(w) V^T in float64 (row-major) from column-major factors. */
export function lowRankProduct(
  u: Float64Array,
  v: Float64Array,
  w: readonly number[] | Float64Array,
  rows: number,
  cols: number,
): Float64Array {
  const r = w.length;
  const a = new Float64Array(rows * cols);
  const row = new Float64Array(r);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < r; j++) row[j] = u[j * rows + i]! * w[j]!;
    const o = i * cols;
    for (let j = 0; j < r; j++) {
      const x = row[j]!;
      if (x === 0) continue;
      const vo = j * cols;
      for (let c = 0; c < cols; c++) a[o + c] = a[o + c]! + x * v[vo + c]!;
    }
  }
  return a;
}

/** A rows x cols float32 matrix (row-major) whose singular values are `s` (padded with zeros). */
export function plantedMatrix(
  rows: number,
  cols: number,
  s: readonly number[],
  seed: number,
): Float32Array {
  return plantedSvd(rows, cols, s, seed).a;
}
