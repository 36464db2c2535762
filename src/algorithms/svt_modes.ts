/**
 * The server's low-rank step when the user asks for a budget rather than FedSLR's mu
 * (`algorithm.svt`), shared by FedSLR and FedAvg with a downlink budget. Per weight matrix V_j
 * (matrix view) with exact SVD U diag(s) V^T:
 *
 * - absolute: SVT at mu / alpha (fedslr.ts's own path, unchanged; not handled here).
 * - relative(f): soft threshold at f * s_1(V_j): the prox of (f s_1) ||.||_*.
 * - energy(f): hard truncation at the smallest rank holding f of sum s^2.
 * - rank(k | f): hard truncation at k, or floor(f * full rank).
 * - bytes(f | B): hard truncation at the ranks `chooseRanks` picks so that one client's encoded
 *   download (MessagePack, as sent) is at most B bytes, or f times the dense download's bytes.
 *   A matrix costs its low-rank factors when r (R + C) < R C, else its dense bytes; 1-D tensors
 *   and the message's envelope are always sent whole.
 *
 * energy, rank and bytes take `cut: soft` as well: the same ranks, but each kept value reduced by
 * the largest one dropped, tau_j = s_{r_j + 1}(V_j) (0 when nothing is dropped). That is the
 * prox of tau_j ||.||_* (soft thresholding at tau_j keeps exactly the values above it), a convex
 * step with a weight read off each matrix every round, as in relative; the hard cut is a
 * projection onto a rank set. The soft cut keeps at most the hard cut's ranks (values equal to
 * tau_j go too), so a budget still holds.
 *
 * 1-D tensors pass unchanged. A matrix whose every value is kept unshrunk is V_j bit for bit.
 */
import { z } from 'zod';
import { pack } from '../codec/wire.js';
import { denseTensorBytes, lowRankTensorBytes } from '../codec/wire_size.js';
import { fromMatrixArray, matrixShape, toMatrixArray } from '../linalg/matrix_view.js';
import { lowRankPays } from '../linalg/prox.js';
import type { Svd } from '../linalg/svd.js';
import {
  type BudgetItem,
  chooseRanks,
  keptRank,
  nonZeroRank,
  type RankRule,
  truncateSvd,
  truncationFactors,
  valuesSvd,
  withLongVectors,
} from '../linalg/svt_budget.js';
import type { ArrayParam, ParamArrays, ParamSpec } from '../tensor/params.js';
import { InputError } from '../util/errors.js';
import type { ServerStats } from './types.js';

const fraction = z.number().gt(0).lte(1);
/** How a budget cuts: keeps the values unshrunk (hard, when absent) or reduces them by the first
 * value cut (soft). */
const cut = z.enum(['hard', 'soft']).optional();
/** Exactly one of two keys of a budget (rank: rank | fraction; bytes: bytes | fraction). */
const oneOf = (keys: [string, string]) => (v: Record<string, unknown>, ctx: z.RefinementCtx) => {
  const given = keys.filter((k) => v[k] !== undefined);
  if (given.length !== 1)
    ctx.addIssue({
      code: 'custom',
      path: given.length ? [given[1]!] : [],
      message: `mode ${String(v['mode'])} takes exactly one of ${keys.join(', ')}${given.length ? `, got both` : ''}`,
    });
};

/** `algorithm.svt` of FedSLR: SVT at mu / alpha (absolute, the default) or a budget. */
export const svtSchema = z.discriminatedUnion('mode', [
  z.strictObject({ mode: z.literal('absolute') }),
  /** Soft threshold at `fraction` of each matrix's largest singular value. */
  z.strictObject({ mode: z.literal('relative'), fraction: z.number().gt(0).lt(1) }),
  /** Keep the smallest rank holding `fraction` of each matrix's squared spectrum. */
  z.strictObject({ mode: z.literal('energy'), fraction, cut }),
  /** Keep at most `rank` values per matrix, or `fraction` of its full rank. */
  z
    .strictObject({
      mode: z.literal('rank'),
      rank: z.number().int().nonnegative().optional(),
      fraction: fraction.optional(),
      cut,
    })
    .superRefine(oneOf(['rank', 'fraction'])),
  /** One client's download at most `bytes`, or `fraction` of the dense download's bytes. */
  z
    .strictObject({
      mode: z.literal('bytes'),
      fraction: fraction.optional(),
      bytes: z.number().int().positive().optional(),
      cut,
    })
    .superRefine(oneOf(['fraction', 'bytes'])),
]);

/** `algorithm.svt`: how the server's low-rank step picks what to keep. */
export type SvtMode = z.output<typeof svtSchema>;

export type BudgetMode = Exclude<SvtMode, { mode: 'absolute' }>;

/** A downlink budget: a fraction of the dense download's bytes, or bytes. */
export type DownlinkBudget = { fraction: number } | { bytes: number };

export interface BudgetStep {
  global: ParamArrays;
  /** left (rows x r) and right (r x cols) factors of the matrices sent factored. */
  factors: Record<string, { left: ArrayParam; right: ArrayParam }>;
  ranks: NonNullable<ServerStats['ranks']>;
}

interface MatrixPart {
  name: string;
  shape: number[];
  rows: number;
  cols: number;
  a: Float32Array;
  svd: Svd;
}

/** Bytes of `pack({round, params})` for the spec's tensor names with every value 1 byte (nil). */
function envelopeBytes(spec: ParamSpec, round: number): number {
  const params = Object.fromEntries(spec.map((p) => [p.name, null]));
  return pack({ round, params }).byteLength - spec.length;
}

/** What one matrix costs on the wire at rank r: factors while they beat dense, else dense. */
export function matrixWireBytes(shape: readonly number[], rows: number, cols: number, r: number) {
  return lowRankPays(rows, cols, r)
    ? lowRankTensorBytes(shape, rows, cols, r)
    : denseTensorBytes(shape);
}

/**
 * The ranks that keep one client's download within `budget`. `fixed` is what the download
 * costs besides its matrices (envelope and 1-D tensors).
 */
function budgetRanks(parts: readonly MatrixPart[], fixed: number, budget: DownlinkBudget) {
  const dense = parts.reduce((sum, m) => sum + denseTensorBytes(m.shape), fixed);
  const limit = 'bytes' in budget ? budget.bytes : Math.floor(budget.fraction * dense);
  const items: BudgetItem[] = parts.map((m) => ({
    s: m.svd.s,
    maxRank: nonZeroRank(m.svd),
    cost: (r) => matrixWireBytes(m.shape, m.rows, m.cols, r),
  }));
  try {
    return chooseRanks(items, limit - fixed);
  } catch (err) {
    // The budget the user set is below what the model's 1-D tensors and rank-1 factors need.
    throw new InputError(
      `downlink budget of ${limit} bytes (${'bytes' in budget ? 'bytes' : `${budget.fraction} of the dense ${dense}`}) cannot be met: ${(err as Error).message} plus ${fixed} bytes of 1-D tensors and message`,
    );
  }
}

function ruleOf(mode: BudgetMode): RankRule {
  switch (mode.mode) {
    case 'relative':
    case 'energy':
      return { mode: mode.mode, fraction: mode.fraction };
    case 'rank':
      if (mode.rank !== undefined) return { mode: 'rank', rank: mode.rank };
      if (mode.fraction !== undefined) return { mode: 'rank', fraction: mode.fraction };
      throw new Error('svt mode rank: give rank or fraction');
    case 'bytes':
      throw new Error('svt mode bytes has no per-matrix rule');
  }
}

/**
 * The budgeted low-rank step on `V`, for the download of round `round` (its number is part of
 * the message, so of its bytes).
 */
export function budgetStep(
  spec: ParamSpec,
  V: ParamArrays,
  mode: BudgetMode,
  round: number,
): BudgetStep {
  const global: ParamArrays = {};
  const parts: MatrixPart[] = [];
  let fixed = envelopeBytes(spec, round);
  for (const p of spec) {
    const v = V[p.name];
    if (!v) throw new Error(`svt ${mode.mode}: no tensor '${p.name}' in the model`);
    const ms = matrixShape(p.shape, p.role);
    if (!ms) {
      global[p.name] = v;
      fixed += denseTensorBytes(p.shape);
      continue;
    }
    const a = toMatrixArray(v.data, p.shape, p.role);
    parts.push({
      name: p.name,
      shape: [...p.shape],
      rows: ms[0],
      cols: ms[1],
      a,
      svd: valuesSvd(a, ms[0], ms[1]),
    });
  }
  const ranks =
    mode.mode === 'bytes'
      ? budgetRanks(
          parts,
          fixed,
          'bytes' in mode && mode.bytes !== undefined
            ? { bytes: mode.bytes }
            : { fraction: mode.fraction! },
        )
      : parts.map((m) => keptRank(m.svd, ruleOf(mode)));
  const factors: BudgetStep['factors'] = {};
  const stats: BudgetStep['ranks'] = {};
  parts.forEach((m, j) => {
    const shrink =
      mode.mode === 'relative'
        ? mode.fraction * m.svd.s[0]!
        : mode.cut === 'soft'
          ? (m.svd.s[ranks[j]!] ?? 0)
          : 0;
    const t = truncateSvd(m.a, withLongVectors(m.a, m.svd, ranks[j]!), ranks[j]!, shrink);
    global[m.name] =
      t.matrix === m.a
        ? V[m.name]!
        : {
            shape: [...m.shape],
            data: fromMatrixArray(t.matrix, m.shape, spec.find((p) => p.name === m.name)!.role),
          };
    stats[m.name] = { rank: t.rank, full: t.fullRank };
    if (lowRankPays(m.rows, m.cols, t.rank)) {
      const f = truncationFactors(t);
      factors[m.name] = {
        left: { shape: [m.rows, t.rank], data: f.left },
        right: { shape: [t.rank, m.cols], data: f.right },
      };
    }
  });
  return { global, factors, ranks: stats };
}
