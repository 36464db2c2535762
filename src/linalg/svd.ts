/**
 * Exact thin SVDs in float64 plain TypeScript. Matrices are row-major `rows x cols`.
 *
 * - `jacobiSvd`: one-sided (Hestenes) Jacobi. Slowest, but relatively accurate for every singular
 *   value, tiny ones included; the reference and the last-resort fallback.
 * - `gramSvd`: eigendecomposition of the float64 Gram matrix (Householder tridiagonalisation +
 *   implicit QL, as in EISPACK tred2/tql2). A singular value s comes out with an absolute error of
 *   about n * eps64 * s_max^2 / s, ample for every value above a threshold tau unless
 *   s_max / tau exceeds ~1e5; `svt.ts` checks that bound before trusting it.
 *
 * Both return all min(rows, cols) singular values in descending order; `u` and `v` hold the
 * matching singular vectors as columns (row-major `rows x k` and `cols x k`). A vector that
 * belongs to a zero singular value is returned as zeros.
 */

export interface Svd {
  rows: number;
  cols: number;
  /** min(rows, cols). */
  k: number;
  s: Float64Array;
  u: Float64Array;
  v: Float64Array;
}

export const EPS64 = 2 ** -52;

function checkMatrix(a: ArrayLike<number>, rows: number, cols: number, where: string): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1) {
    throw new Error(`${where}: rows and cols must be positive integers, got ${rows} x ${cols}`);
  }
  if (a.length !== rows * cols) {
    throw new Error(`${where}: ${a.length} values for a ${rows} x ${cols} matrix`);
  }
}

/**
 * Columns of the tall orientation, column-major: for rows >= cols the columns of A, otherwise
 * those of A^T. Returns [data, m, n] with m >= n.
 */
export function tallColumns(
  a: ArrayLike<number>,
  rows: number,
  cols: number,
): [Float64Array, number, number] {
  const tall = rows >= cols;
  const m = tall ? rows : cols;
  const n = tall ? cols : rows;
  const w = new Float64Array(m * n);
  if (tall) {
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) w[j * m + i] = a[i * cols + j]!;
  } else {
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) w[i * m + j] = a[i * cols + j]!;
  }
  return [w, m, n];
}

/** Sorts (s, left columns, right columns) by descending s and lays them out row-major. */
function assemble(
  rows: number,
  cols: number,
  s: Float64Array,
  left: Float64Array,
  m: number,
  right: Float64Array,
  n: number,
): Svd {
  const k = s.length;
  const order = Array.from({ length: k }, (_, i) => i).sort((x, y) => s[y]! - s[x]!);
  const tall = rows >= cols;
  const u = new Float64Array(rows * k);
  const v = new Float64Array(cols * k);
  const so = new Float64Array(k);
  order.forEach((src, dst) => {
    so[dst] = s[src]!;
    const l = tall ? u : v;
    const r = tall ? v : u;
    for (let i = 0; i < m; i++) l[i * k + dst] = left[src * m + i]!;
    for (let i = 0; i < n; i++) r[i * k + dst] = right[src * n + i]!;
  });
  return { rows, cols, k, s: so, u, v };
}

/** One-sided Jacobi SVD (float64). */
export function jacobiSvd(a: ArrayLike<number>, rows: number, cols: number): Svd {
  checkMatrix(a, rows, cols, 'jacobiSvd');
  const [w, m, n] = tallColumns(a, rows, cols);
  const vv = new Float64Array(n * n);
  for (let j = 0; j < n; j++) vv[j * n + j] = 1;
  const norms = new Float64Array(n);
  const tol = 4 * EPS64;
  for (let sweep = 0; sweep < 80; sweep++) {
    for (let j = 0; j < n; j++) {
      let t = 0;
      for (let i = j * m, e = i + m; i < e; i++) t += w[i]! * w[i]!;
      norms[j] = t;
    }
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      const po = p * m;
      for (let q = p + 1; q < n; q++) {
        const alpha = norms[p]!;
        const beta = norms[q]!;
        if (alpha === 0 || beta === 0) continue;
        const qo = q * m;
        let gamma = 0;
        for (let i = 0; i < m; i++) gamma += w[po + i]! * w[qo + i]!;
        if (Math.abs(gamma) <= tol * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        for (let i = 0; i < m; i++) {
          const x = w[po + i]!;
          const y = w[qo + i]!;
          w[po + i] = c * x - s * y;
          w[qo + i] = s * x + c * y;
        }
        const pv = p * n;
        const qv = q * n;
        for (let i = 0; i < n; i++) {
          const x = vv[pv + i]!;
          const y = vv[qv + i]!;
          vv[pv + i] = c * x - s * y;
          vv[qv + i] = s * x + c * y;
        }
        norms[p] = alpha - t * gamma;
        norms[q] = beta + t * gamma;
      }
    }
    if (!rotated) break;
  }
  const s = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let t = 0;
    for (let i = j * m, e = i + m; i < e; i++) t += w[i]! * w[i]!;
    const sj = Math.sqrt(t);
    s[j] = sj;
    for (let i = j * m, e = i + m; i < e; i++) w[i] = sj > 0 ? w[i]! / sj : 0;
  }
  return assemble(rows, cols, s, w, m, vv, n);
}

/**
 * sqrt(a^2 + b^2) without overflow or harmful underflow. V8's Math.hypot takes 50-85 ns a call
 * here against ~3 ns for this, and the QL iteration calls it twice per rotation.
 */
function hypot(a: number, b: number): number {
  const x = Math.abs(a);
  const y = Math.abs(b);
  const big = Math.max(x, y);
  if (big > 1e150 || (big < 1e-150 && big > 0)) {
    const p = x / big;
    const q = y / big;
    return big * Math.sqrt(p * p + q * q);
  }
  return Math.sqrt(a * a + b * b);
}

/**
 * Symmetric eigendecomposition (float64, EISPACK tred2 + tql2 as in JAMA). `g` is row-major
 * n x n and is overwritten. Returns eigenvalues (ascending) and eigenvectors as the rows of `vt`.
 */
export function symmetricEigen(
  g: Float64Array,
  n: number,
): { values: Float64Array; vt: Float64Array } {
  const V = g;
  const d = new Float64Array(n);
  const dots = new Float64Array(n);
  const e = new Float64Array(n);
  for (let j = 0; j < n; j++) d[j] = V[(n - 1) * n + j]!;
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]!);
    if (scale === 0) {
      e[i] = d[i - 1]!;
      for (let j = 0; j < i; j++) {
        d[j] = V[(i - 1) * n + j]!;
        V[i * n + j] = 0;
        V[j * n + i] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        d[k] = d[k]! / scale;
        h += d[k]! * d[k]!;
      }
      let f = d[i - 1]!;
      let g2 = Math.sqrt(h);
      if (f > 0) g2 = -g2;
      e[i] = scale * g2;
      h -= f * g2;
      d[i - 1] = f - g2;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        V[j * n + i] = f;
        g2 = e[j]! + V[j * n + j]! * f;
        for (let k = j + 1; k <= i - 1; k++) {
          const vkj = V[k * n + j]!;
          g2 += vkj * d[k]!;
          e[k] = e[k]! + vkj * f;
        }
        e[j] = g2;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j] = e[j]! / h;
        f += e[j]! * d[j]!;
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] = e[j]! - hh * d[j]!;
      // V[k][j] -= d[j] e[k] + e[j] d[k] for j <= k < i, row by row (contiguous memory).
      for (let k = 0; k < i; k++) {
        const o = k * n;
        const ek = e[k]!;
        const dk = d[k]!;
        for (let j = 0; j <= k; j++) V[o + j] = V[o + j]! - (d[j]! * ek + e[j]! * dk);
      }
      for (let j = 0; j < i; j++) {
        d[j] = V[(i - 1) * n + j]!;
        V[i * n + j] = 0;
      }
    }
    d[i] = h;
  }
  for (let i = 0; i < n - 1; i++) {
    V[(n - 1) * n + i] = V[i * n + i]!;
    V[i * n + i] = 1;
    const h = d[i + 1]!;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = V[k * n + i + 1]! / h;
      // dots[j] = sum over k of V[k][i+1] V[k][j], then V[k][j] -= dots[j] d[k]: row by row,
      // summed in the same order as column by column.
      dots.fill(0, 0, i + 1);
      for (let k = 0; k <= i; k++) {
        const o = k * n;
        const vk = V[o + i + 1]!;
        for (let j = 0; j <= i; j++) dots[j] = dots[j]! + vk * V[o + j]!;
      }
      for (let k = 0; k <= i; k++) {
        const o = k * n;
        const dk = d[k]!;
        for (let j = 0; j <= i; j++) V[o + j] = V[o + j]! - dots[j]! * dk;
      }
    }
    for (let k = 0; k <= i; k++) V[k * n + i + 1] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = V[(n - 1) * n + j]!;
    V[(n - 1) * n + j] = 0;
  }
  V[(n - 1) * n + n - 1] = 1;
  e[0] = 0;
  // Eigenvectors as rows from here on, so the QL rotations touch contiguous memory.
  const vt = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) vt[j * n + i] = V[i * n + j]!;
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]!) + Math.abs(e[l]!));
    let m = l;
    while (m < n) {
      if (Math.abs(e[m]!) <= EPS64 * tst1) break;
      m++;
    }
    if (m > l) {
      for (let iter = 0; iter < 200; iter++) {
        let g2 = d[l]!;
        let p = (d[l + 1]! - g2) / (2 * e[l]!);
        let r = hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l]! / (p + r);
        d[l + 1] = e[l]! * (p + r);
        const dl1 = d[l + 1]!;
        let h = g2 - d[l]!;
        for (let i = l + 2; i < n; i++) d[i] = d[i]! - h;
        f += h;
        p = d[m]!;
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1]!;
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g2 = c * e[i]!;
          h = c * p;
          r = hypot(p, e[i]!);
          e[i + 1] = s * r;
          s = e[i]! / r;
          c = p / r;
          p = c * d[i]! - s * g2;
          d[i + 1] = h + s * (c * g2 + s * d[i]!);
          const a0 = i * n;
          const a1 = a0 + n;
          for (let k = 0; k < n; k++) {
            const x = vt[a1 + k]!;
            const y = vt[a0 + k]!;
            vt[a1 + k] = s * y + c * x;
            vt[a0 + k] = c * y - s * x;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]!) / dl1;
        e[l] = s * p;
        d[l] = c * p;
        if (!(Math.abs(e[l]!) > EPS64 * tst1)) break;
      }
    }
    d[l] = d[l]! + f;
    e[l] = 0;
  }
  return { values: d, vt };
}

/** Float64 Gram matrix W^T W of the column-major m x n matrix `w`. */
function gram(w: Float64Array, m: number, n: number): Float64Array {
  const g = new Float64Array(n * n);
  for (let p = 0; p < n; p++) {
    const po = p * m;
    for (let q = p; q < n; q++) {
      const qo = q * m;
      let t = 0;
      for (let i = 0; i < m; i++) t += w[po + i]! * w[qo + i]!;
      g[p * n + q] = t;
      g[q * n + p] = t;
    }
  }
  return g;
}

/**
 * SVD from the float64 Gram matrix's eigendecomposition. Left vectors are computed only for the
 * `need` largest singular values (default all): u_j = A v_j / s_j.
 */
export function gramSvd(a: ArrayLike<number>, rows: number, cols: number, need?: number): Svd {
  checkMatrix(a, rows, cols, 'gramSvd');
  const [w, m, n] = tallColumns(a, rows, cols);
  const { values, vt } = symmetricEigen(gram(w, m, n), n);
  const s = new Float64Array(n);
  for (let j = 0; j < n; j++) s[j] = Math.sqrt(Math.max(values[j]!, 0));
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => s[y]! - s[x]!);
  const want = Math.min(need ?? n, n);
  const left = new Float64Array(m * n);
  for (let r = 0; r < want; r++) {
    const j = order[r]!;
    const sj = s[j]!;
    if (sj === 0) continue;
    const out = j * m;
    const vo = j * n;
    for (let q = 0; q < n; q++) {
      const c = vt[vo + q]! / sj;
      if (c === 0) continue;
      const qo = q * m;
      for (let i = 0; i < m; i++) left[out + i] = left[out + i]! + c * w[qo + i]!;
    }
  }
  return assemble(rows, cols, s, left, m, vt, n);
}
