/**
 * Budgeted singular-value steps: FedSLR's server step when the user asks for a budget instead of
 * the nuclear-norm weight mu. All start from an exact thin SVD A = U diag(s) V^T (s descending,
 * k = min(rows, cols) values) and keep the first r triplets:
 *
 * - relative(f): soft threshold at tau = f * s_1, W = U max(s - tau, 0) V^T. This is the proximal
 *   map of tau * ||.||_*, with tau read off the matrix itself (so its weight changes every round).
 * - energy(f): the smallest r with sum_{i<r} s_i^2 >= f * sum_i s_i^2, kept unshrunk.
 * - rank(k | f): r = min(k, k_full) or floor(f * k_full), kept unshrunk.
 * - a byte budget over several matrices: `chooseRanks`, a greedy knapsack (below).
 *
 * The unshrunk modes are hard truncation: by Eckart-Young, W is the nearest matrix of rank <= r
 * in Frobenius norm, i.e. the projection onto a (non-convex) rank set, not soft thresholding.
 * Values at float32 rounding level (`numericalRank`: below max(rows, cols) eps32 s_1) count as
 * zero and are never kept.
 */
import { numericalRank } from './prox.js';
import { gramSvd, type Svd } from './svd.js';

/** How many singular values a per-matrix rule keeps. */
export type RankRule =
  | { mode: 'relative'; fraction: number }
  | { mode: 'energy'; fraction: number }
  | { mode: 'rank'; rank: number }
  | { mode: 'rank'; fraction: number };

function checkFraction(f: number, where: string, allowOne: boolean): void {
  if (!(f > 0 && (allowOne ? f <= 1 : f < 1)))
    throw new Error(`${where}: fraction must be in (0, 1${allowOne ? ']' : ')'}, got ${f}`);
}

/** Values of an SVD above float32 rounding level: the most any mode keeps. */
export const nonZeroRank = (svd: Pick<Svd, 's' | 'rows' | 'cols'>): number =>
  numericalRank(svd.s, svd.rows, svd.cols);

/** The rank `rule` keeps of an SVD (values descending). */
export function keptRank(svd: Pick<Svd, 's' | 'rows' | 'cols'>, rule: RankRule): number {
  const { s } = svd;
  const nz = nonZeroRank(svd);
  switch (rule.mode) {
    case 'relative': {
      checkFraction(rule.fraction, 'relative', false);
      const tau = rule.fraction * (s[0] ?? 0);
      let r = 0;
      while (r < nz && s[r]! > tau) r++;
      return r;
    }
    case 'energy': {
      checkFraction(rule.fraction, 'energy', true);
      let total = 0;
      for (let i = 0; i < nz; i++) total += s[i]! * s[i]!;
      const want = rule.fraction * total;
      let kept = 0;
      let r = 0;
      // The smallest r whose leading values hold the wanted energy (float64 sums: a fraction of
      // 1 keeps every non-zero value).
      while (r < nz && kept < want) {
        kept += s[r]! * s[r]!;
        r++;
      }
      return r;
    }
    case 'rank': {
      if ('rank' in rule) {
        if (!Number.isInteger(rule.rank) || rule.rank < 0)
          throw new Error(`rank: rank must be an integer >= 0, got ${rule.rank}`);
        return Math.min(rule.rank, nz);
      }
      checkFraction(rule.fraction, 'rank', true);
      return Math.min(Math.floor(rule.fraction * s.length), nz);
    }
  }
}

/**
 * The SVD of the row-major `a` with singular vectors of the long side only where asked: the
 * float64 Gram eigensolver gives s and the short side's vectors; the long side's vectors of the
 * first r values are filled in as A v / s (A^T u / s for wide matrices) by `withLongVectors`.
 * Forming all of them would double the cost of the largest layers.
 */
export function valuesSvd(a: Float32Array, rows: number, cols: number): Svd {
  return gramSvd(a, rows, cols, 0);
}

/** `svd` (from `valuesSvd`) with the long side's vectors of its first `rank` values filled in. */
export function withLongVectors(a: Float32Array, svd: Svd, rank: number): Svd {
  const { rows, cols, k } = svd;
  const tall = rows >= cols;
  const out = { ...svd, u: svd.u.slice(), v: svd.v.slice() };
  for (let j = 0; j < rank; j++) {
    const s = svd.s[j]!;
    if (s === 0) continue;
    if (tall) {
      // u_j = A v_j / s_j
      for (let i = 0; i < rows; i++) {
        let d = 0;
        for (let c = 0; c < cols; c++) d += a[i * cols + c]! * svd.v[c * k + j]!;
        out.u[i * k + j] = d / s;
      }
    } else {
      // v_j = A^T u_j / s_j
      const col = new Float64Array(cols);
      for (let i = 0; i < rows; i++) {
        const x = svd.u[i * k + j]!;
        if (x === 0) continue;
        for (let c = 0; c < cols; c++) col[c] = col[c]! + x * a[i * cols + c]!;
      }
      for (let c = 0; c < cols; c++) out.v[c * k + j] = col[c]! / s;
    }
  }
  return out;
}

/** The first `rank` triplets of an SVD, values reduced by `shrink`, and the matrix they make. */
export interface Truncation {
  rows: number;
  cols: number;
  rank: number;
  /** min(rows, cols). */
  fullRank: number;
  /** Kept values after the shrink (descending, > 0). */
  values: Float64Array;
  /** rows x rank and cols x rank, row-major, orthonormal columns. */
  u: Float32Array;
  v: Float32Array;
  /** rows x cols, row-major: U_r diag(values) V_r^T, or `a` itself when nothing changes. */
  matrix: Float32Array;
}

/**
 * Keeps the first `rank` triplets of `svd` (the SVD of `a`), each value reduced by `shrink`
 * (0 for hard truncation; values that fall to 0 or below are dropped). When every value is kept
 * unshrunk (all above rounding level) the matrix is `a` itself, bit for bit.
 */
export function truncateSvd(a: Float32Array, svd: Svd, rank: number, shrink = 0): Truncation {
  const { rows, cols, k } = svd;
  if (a.length !== rows * cols)
    throw new Error(`truncateSvd: ${a.length} values for a ${rows} x ${cols} matrix`);
  if (!Number.isInteger(rank) || rank < 0 || rank > k)
    throw new Error(`truncateSvd: rank must be an integer in [0, ${k}], got ${rank}`);
  if (!(shrink >= 0)) throw new Error(`truncateSvd: shrink must be >= 0, got ${shrink}`);
  let r = 0;
  while (r < rank && svd.s[r]! - shrink > 0) r++;
  const values = new Float64Array(r);
  for (let j = 0; j < r; j++) values[j] = svd.s[j]! - shrink;
  const u = new Float32Array(rows * r);
  const v = new Float32Array(cols * r);
  for (let i = 0; i < rows; i++) for (let j = 0; j < r; j++) u[i * r + j] = svd.u[i * k + j]!;
  for (let i = 0; i < cols; i++) for (let j = 0; j < r; j++) v[i * r + j] = svd.v[i * k + j]!;
  const untouched = shrink === 0 && r >= nonZeroRank(svd);
  if (untouched) return { rows, cols, rank: r, fullRank: k, values, u, v, matrix: a };
  // U_r diag(values) V_r^T in float64, from the float64 vectors.
  const matrix = new Float32Array(rows * cols);
  const row = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    row.fill(0);
    for (let j = 0; j < r; j++) {
      const x = svd.u[i * k + j]! * values[j]!;
      if (x === 0) continue;
      for (let c = 0; c < cols; c++) row[c] = row[c]! + x * svd.v[c * k + j]!;
    }
    for (let c = 0; c < cols; c++) matrix[i * cols + c] = row[c]!;
  }
  return { rows, cols, rank: r, fullRank: k, values, u, v, matrix };
}

/** One matrix of a budget: its singular values and what sending it at rank r costs. */
export interface BudgetItem {
  /** Descending singular values. */
  s: ArrayLike<number>;
  /** The most values worth keeping (those above rounding level): `nonZeroRank`. */
  maxRank: number;
  /** Cost of sending the matrix with its first r values, r in [0, s.length]; non-decreasing. */
  cost(rank: number): number;
}

/**
 * Ranks r_j maximising the kept shares of energy sum_j (sum_{i<r_j} s_ji^2) / (sum_i s_ji^2)
 * (equivalently, the least sum of the matrices' relative squared Frobenius errors) subject to
 * sum_j cost_j(r_j) <= budget. Shares, not absolute energy: in a ReLU network a layer's weights
 * can be scaled by c and the next layer's by 1/c without changing the function, so absolute
 * energies cannot be compared across layers (on the Fashion-MNIST cnn they cut conv2 to rank 6
 * of 160, a 3% share of the dense bytes, to keep fc1 values). This is a knapsack; the greedy
 * answer starts from every matrix whole and, while over budget, takes the
 * step that loses the least share per unit of cost saved (a step drops a matrix to the next
 * lower rank that costs less: one value, or from whole to the largest rank whose factors beat
 * dense). Then it adds back, best share per cost first, every step that still fits. So the
 * result never exceeds the budget and no single further step fits; it is not always the optimum.
 * Throws when even rank 0 everywhere exceeds the budget.
 */
export function chooseRanks(items: readonly BudgetItem[], budget: number): number[] {
  const ranks = items.map((it) => it.maxRank);
  const floor = items.reduce((sum, it) => sum + it.cost(0), 0);
  if (floor > budget)
    throw new Error(
      `the budget of ${budget} is below the smallest possible cost, ${floor} (every matrix at rank 0)`,
    );
  let total = items.reduce((sum, it, j) => sum + it.cost(ranks[j]!), 0);
  const sumSquares = (it: BudgetItem, from: number, to: number) => {
    let e = 0;
    for (let i = from; i < to; i++) e += it.s[i]! * it.s[i]!;
    return e;
  };
  const totals = items.map((it) => sumSquares(it, 0, it.s.length));
  /** The share of item j's energy in its values from..to-1. */
  const share = (j: number, from: number, to: number) =>
    totals[j]! > 0 ? sumSquares(items[j]!, from, to) / totals[j]! : 0;
  // Down steps: the largest lower rank that costs strictly less.
  while (total > budget) {
    let best = -1;
    let bestRank = 0;
    let bestRatio = Number.POSITIVE_INFINITY;
    items.forEach((it, j) => {
      const r = ranks[j]!;
      if (r === 0) return;
      const c = it.cost(r);
      let to = r - 1;
      while (to > 0 && it.cost(to) >= c) to--;
      const saved = c - it.cost(to);
      if (saved <= 0) return;
      const ratio = share(j, to, r) / saved;
      if (ratio < bestRatio) {
        bestRatio = ratio;
        best = j;
        bestRank = to;
      }
    });
    if (best < 0) break;
    total += items[best]!.cost(bestRank) - items[best]!.cost(ranks[best]!);
    ranks[best] = bestRank;
  }
  // Up steps that fit: the next rank that keeps more energy (through equal-cost ranks).
  for (;;) {
    let best = -1;
    let bestRank = 0;
    let bestRatio = -1;
    items.forEach((it, j) => {
      const r = ranks[j]!;
      if (r >= it.maxRank) return;
      const c = it.cost(r);
      let to = r + 1;
      while (to < it.maxRank && it.cost(to + 1) === it.cost(to)) to++;
      const extra = it.cost(to) - c;
      if (total + extra > budget) return;
      const ratio = extra > 0 ? share(j, r, to) / extra : Number.POSITIVE_INFINITY;
      if (ratio > bestRatio) {
        bestRatio = ratio;
        best = j;
        bestRank = to;
      }
    });
    if (best < 0) break;
    total += items[best]!.cost(bestRank) - items[best]!.cost(ranks[best]!);
    ranks[best] = bestRank;
  }
  return ranks;
}

/** The factors the downlink sends: U sqrt(S) (rows x rank) and sqrt(S) V^T (rank x cols). */
export function truncationFactors(t: Truncation): { left: Float32Array; right: Float32Array } {
  const { rows, cols, rank } = t;
  const left = new Float32Array(rows * rank);
  const right = new Float32Array(rank * cols);
  for (let j = 0; j < rank; j++) {
    const q = Math.sqrt(t.values[j]!);
    for (let i = 0; i < rows; i++) left[i * rank + j] = t.u[i * rank + j]! * q;
    for (let c = 0; c < cols; c++) right[j * cols + c] = t.v[c * rank + j]! * q;
  }
  return { left, right };
}
