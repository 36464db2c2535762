/**
 * FedSLR (Huang et al., TMLR 2023), exactly as ../shared/FEDSLR.md states it. Client i's model is
 * W + P_i: W, the global knowledge representation, is pushed to low rank by the server's
 * singular-value thresholding; P_i, the personal component, is pushed to sparsity by an L1 prox
 * after every local step and never leaves the client.
 *
 * State: the server keeps W, D (sum of ALL clients' duals), the low-rank factors of W's matrices
 * that are sent factored, and each matrix's SVT warm start; a client keeps pi_i (absent means
 * zero) and P_i. The codecs below are the only place that knows how they are stored.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { decodeParams } from '../codec/params.js';
import type { WireParams } from '../codec/wire.js';
import { dense, denseParams } from '../codec/wire.js';
import { fromMatrixArray, matrixShape, toMatrixArray } from '../linalg/matrix_view.js';
import { lowRankPays } from '../linalg/prox.js';
import { type SvtHint, svt } from '../linalg/svt.js';
import type { ArrayParam, ParamArrays, ParamSpec } from '../tensor/params.js';
import {
  add,
  allFinite,
  disposeParams,
  fromArrays,
  readArrays,
  sub,
  zerosLike,
} from '../tensor/params.js';
import {
  addDecayedWeights,
  addLinear,
  chain,
  l1ProxMap,
  proximalPull,
} from '../train/transforms.js';
import { addArrays, combine, type SetsState, setsCodec, sgd } from './common.js';
import { capDensity, DENSITY_HEADROOM, nextLambda } from './density_target.js';
import { defaultsOf, describeAlgorithm } from './descriptor.js';
import { budgetStep, svtSchema } from './svt_modes.js';
import type { Algorithm, AlgorithmContext, ServerStats, StateCodec, StateRecord } from './types.js';

const fedslrSchema = z
  .strictObject({
    name: z.literal('fedslr'),
    /** Augmented-Lagrangian coefficient alpha. */
    alpha: z.number().positive().default(0.1),
    /** Nuclear-norm weight mu: singular values are thresholded at mu / alpha. */
    mu: z.number().nonnegative().default(1e-4),
    /** L1 weight lambda of the personal components. */
    lambda: z.number().nonnegative().default(1e-3),
    /** Stage-2 epochs E2. */
    personalEpochs: z.number().int().nonnegative().default(1),
    /** P_i's start: the initial weights (norm scale/offset zero; the authors' choice), or zeros. */
    personalInit: z.enum(['init', 'zeros']).default('init'),
    /**
     * Which of the two parts to keep: both (FedSLR), low-rank only (no stage 2: the personal model
     * is the global one), sparse only (no SVT: FedDyn's global model + sparse personal parts).
     */
    ablation: z.enum(['both', 'low-rank-only', 'sparse-only']).default('both'),
    /**
     * How the server's low-rank step picks what to keep: SVT at mu / alpha (absolute, bit for bit
     * the step above), or a budget (relative, energy, rank, bytes; svt_modes.ts).
     */
    svt: svtSchema.default({ mode: 'absolute' }),
    /** Target share of non-zeros of each P_i: lambda is then adapted per client (density_target.ts). */
    density: z.number().gt(0).lte(1).optional(),
    /**
     * A stage 2 that ends with a non-finite value in P_i is discarded (P_i and lambda_i stay as
     * they were) instead of kept; FEDSLR.md (and the authors' code) keep it, and the personal
     * model stays non-finite from then on. Runs where no stage 2 diverges are the same bits
     * either way.
     */
    discardNonFinite: z.boolean().default(false),
  })
  .refine((v) => v.density === undefined || v.lambda > 0, {
    path: ['lambda'],
    message: 'a density target adapts lambda multiplicatively: lambda must be > 0',
  });

export type FedSLROptions = Omit<z.output<typeof fedslrSchema>, 'name'>;
export type FedSLRAblation = FedSLROptions['ablation'];
export const FEDSLR_DEFAULTS = defaultsOf(fedslrSchema);

/**
 * The stages one member of the FedSLR family runs: SVT on the server or not; what the personal
 * model is (W + P_i with stage 2, W itself, or none). FedSLR's ablations and FedDyn (no SVT, no
 * personal part) are all members.
 */
export interface DynamicParts {
  name: string;
  svt: boolean;
  personal: 'sparse' | 'global' | 'none';
}

const ABLATION_PARTS: Record<FedSLRAblation, Omit<DynamicParts, 'name'>> = {
  both: { svt: true, personal: 'sparse' },
  'low-rank-only': { svt: true, personal: 'global' },
  'sparse-only': { svt: false, personal: 'sparse' },
};

/**
 * The wire factors of a thresholded matrix: left = U sqrt(S) (rows x r), right = sqrt(S) V^T
 * (r x cols), from U (rows x r) and V (cols x r) as row-major arrays.
 */
export function splitFactors(
  u: Float32Array,
  v: Float32Array,
  values: ArrayLike<number>,
  rows: number,
  cols: number,
): { left: Float32Array; right: Float32Array } {
  const r = values.length;
  const root = Array.from(values, Math.sqrt);
  const left = new Float32Array(rows * r);
  const right = new Float32Array(r * cols);
  for (let i = 0; i < rows; i++)
    for (let k = 0; k < r; k++) left[i * r + k] = u[i * r + k]! * root[k]!;
  for (let k = 0; k < r; k++)
    for (let j = 0; j < cols; j++) right[k * cols + j] = root[k]! * v[j * r + k]!;
  return { left, right };
}

/** P_i's starting value. */
export function initialSparse(
  spec: ParamSpec,
  init: ParamArrays,
  how: 'init' | 'zeros',
): ParamArrays {
  const out: ParamArrays = {};
  for (const p of spec) {
    const copy = how === 'init' && (p.role === 'conv' || p.role === 'dense' || p.role === 'bias');
    out[p.name] = copy
      ? init[p.name]!
      : { shape: [...p.shape], data: new Float32Array(init[p.name]!.data.length) };
  }
  return out;
}

/** The server's state: W, D, the factors W's matrices are sent as, and SVT warm starts. */
export interface FedSLRServer {
  global: ParamArrays;
  /** D, the sum of all clients' duals (absent before the first aggregation). */
  dualSum?: ParamArrays;
  /** left (rows x r) and right (r x cols) factors of the matrices that are sent factored. */
  factors: Record<string, { left: ArrayParam; right: ArrayParam }>;
  /**
   * The SVT warm start of each matrix (every field of its hint), kept so that a resumed run
   * repeats an uninterrupted one bit for bit.
   */
  hints: Record<string, SvtHint>;
}

/**
 * A client's dual pi_i (absent: zero), sparse personal part P_i (when there is one), with a
 * density target its own adapted L1 weight lambda_i (absent: the configured lambda), and how
 * many of its stage-2 results `discardNonFinite` has discarded (absent: none).
 */
export type FedSLRClient = SetsState<never, 'dual' | 'sparse', never> & {
  lambda?: number;
  discarded?: number;
};

const clientSets = setsCodec({ optional: ['dual', 'sparse'] });

/**
 * Stored layout: `tensors.dual`, `tensors.sparse`, and `scalars.lambda` and `scalars.discarded`
 * when there are.
 */
const clientCodec: StateCodec<FedSLRClient> = {
  toRecord(state) {
    const record = clientSets.toRecord(state);
    const scalars: Record<string, number> = {};
    if (state.lambda !== undefined) scalars['lambda'] = state.lambda;
    if (state.discarded !== undefined) scalars['discarded'] = state.discarded;
    if (Object.keys(scalars).length) record.scalars = scalars;
    return record;
  },
  fromRecord(record, where) {
    const state: FedSLRClient = clientSets.fromRecord(record, where);
    const lambda = record.scalars?.['lambda'];
    if (lambda !== undefined) {
      if (!(typeof lambda === 'number' && lambda > 0))
        throw new Error(`${where}: the client's lambda must be a positive number, got ${lambda}`);
      state.lambda = lambda;
    }
    const discarded = record.scalars?.['discarded'];
    if (discarded !== undefined) {
      if (!(Number.isInteger(discarded) && discarded > 0))
        throw new Error(
          `${where}: the client's count of discarded stage-2 results must be a positive integer, got ${discarded}`,
        );
      state.discarded = discarded;
    }
    return state;
  },
};

/**
 * Stored layout: `tensors.dualSum` = D, `tensors.factors` = `<name>:left` / `<name>:right`,
 * `tensors.svtHints` = `<name>|<field>` arrays, `scalars` = `<name>|<field>[|bool]` numbers.
 */
export const fedslrServerCodec: StateCodec<FedSLRServer> = {
  toRecord(server) {
    const factors: ParamArrays = {};
    for (const [name, f] of Object.entries(server.factors)) {
      factors[`${name}:left`] = f.left;
      factors[`${name}:right`] = f.right;
    }
    const scalars: Record<string, number> = {};
    const svtHints: ParamArrays = {};
    for (const [name, hint] of Object.entries(server.hints))
      writeHint(hint, name, scalars, svtHints);
    const tensors: StateRecord['tensors'] = { factors, svtHints };
    if (server.dualSum) tensors['dualSum'] = server.dualSum;
    return { global: server.global, tensors, scalars };
  },
  fromRecord(record, where) {
    if (!record.global) throw new Error(`${where}: the server state lacks W`);
    const flat = record.tensors['factors'] ?? {};
    const factors: FedSLRServer['factors'] = {};
    for (const [key, left] of Object.entries(flat)) {
      if (!key.endsWith(':left')) continue;
      const name = key.slice(0, -':left'.length);
      const right = flat[`${name}:right`];
      if (!right) throw new Error(`${where}: the factors of '${name}' lack their right factor`);
      factors[name] = { left, right };
    }
    const fields: Record<string, Record<string, unknown>> = {};
    const field = (name: string) => {
      fields[name] ??= { fullRank: true };
      return fields[name];
    };
    for (const [key, v] of Object.entries(record.scalars ?? {})) {
      const [name, f, kind] = key.split('|');
      field(name!)[f!] = kind === 'bool' ? v === 1 : v;
    }
    for (const [key, a] of Object.entries(record.tensors['svtHints'] ?? {})) {
      const [name, f] = key.split('|');
      field(name!)[f!] = a.data;
    }
    const server: FedSLRServer = {
      global: record.global,
      factors,
      hints: fields as unknown as Record<string, SvtHint>,
    };
    const dualSum = record.tensors['dualSum'];
    if (dualSum) server.dualSum = dualSum;
    return server;
  },
};

function writeHint(
  hint: SvtHint,
  name: string,
  scalars: Record<string, number>,
  arrays: ParamArrays,
): void {
  for (const [field, v] of Object.entries(hint)) {
    if (typeof v === 'number') scalars[`${name}|${field}`] = v;
    else if (typeof v === 'boolean') scalars[`${name}|${field}|bool`] = v ? 1 : 0;
    else if (v instanceof Float32Array) arrays[`${name}|${field}`] = { shape: [v.length], data: v };
    else if (v !== undefined)
      throw new Error(`fedslr: cannot keep SVT hint field '${field}' of '${name}'`);
  }
}

function nonZeroShare(set: ParamArrays): number {
  let nnz = 0;
  let size = 0;
  for (const a of Object.values(set)) {
    size += a.data.length;
    for (let i = 0; i < a.data.length; i++) if (a.data[i] !== 0) nnz++;
  }
  return size ? nnz / size : 0;
}

/**
 * W^t as FEDSLR.md's downlink sends it: matrices with factors in the server state go as those
 * factors, everything else dense (FedSLR's download and evaluation download, and FedAvg's with a
 * downlink budget).
 */
export function factoredDownload(
  spec: ParamSpec,
  server: Pick<FedSLRServer, 'global' | 'factors'>,
  round: number,
): { round: number; params: WireParams } {
  const params: WireParams = {};
  for (const p of spec) {
    const ms = matrixShape(p.shape, p.role);
    const f = server.factors[p.name];
    params[p.name] =
      ms && f
        ? {
            kind: 'lowrank',
            shape: [...p.shape],
            rows: ms[0],
            cols: ms[1],
            rank: f.left.shape[1]!,
            left: f.left.data,
            right: f.right.data,
          }
        : dense(server.global[p.name]!);
  }
  return { round, params };
}

export function fedslr(
  ctx: AlgorithmContext,
  options: Partial<FedSLROptions> = {},
): Algorithm<FedSLRServer, FedSLRClient> {
  const opts = { ...FEDSLR_DEFAULTS, ...options };
  return dynamicFamily(ctx, opts, { name: 'fedslr', ...ABLATION_PARTS[opts.ablation] });
}

/** The FedDyn-style round of FEDSLR.md with the stages `parts` names (see DynamicParts). */
export function dynamicFamily(
  ctx: AlgorithmContext,
  opts: FedSLROptions,
  parts: DynamicParts,
): Algorithm<FedSLRServer, FedSLRClient> {
  const { spec } = ctx.model;
  const wd = ctx.train.weightDecay;
  const N = ctx.numClients;
  const tau = opts.mu / opts.alpha;

  const sparse = parts.personal === 'sparse';
  // A budget replaces the SVT at mu / alpha; `absolute` keeps the step below bit for bit.
  const budgeted = parts.svt && opts.svt.mode !== 'absolute' ? opts.svt : undefined;
  const download = (server: FedSLRServer, round: number) => factoredDownload(spec, server, round);

  /** The server's proximal step from D and V = mean_i w_i - D / (alpha N): W^{t+1} and its factors. */
  const proximalStep = async (
    server: FedSLRServer,
    round: number,
    dualSum: ParamArrays,
    V: ParamArrays,
  ): Promise<{ server: FedSLRServer; stats: ServerStats }> => {
    if (budgeted) {
      // The download of round + 1 carries the result: its number is part of the bytes.
      const step = budgetStep(spec, V, budgeted, round + 1);
      return {
        server: { global: step.global, dualSum, factors: step.factors, hints: {} },
        stats: { ranks: step.ranks },
      };
    }
    const global: ParamArrays = {};
    const factors: FedSLRServer['factors'] = {};
    const ranks: NonNullable<ServerStats['ranks']> = {};
    const hints: FedSLRServer['hints'] = {};
    for (const p of spec) {
      const ms = matrixShape(p.shape, p.role);
      const v = V[p.name]!;
      if (!ms || !parts.svt) {
        global[p.name] = v;
        continue;
      }
      const r = await svt(toMatrixArray(v.data, p.shape, p.role), ms[0], ms[1], tau, {
        factors: 'whenLowRank',
        hint: server.hints[p.name] ?? { fullRank: true },
      });
      global[p.name] = {
        shape: [...p.shape],
        data: fromMatrixArray(r.matrix, p.shape, p.role),
      };
      hints[p.name] = r.hint;
      ranks[p.name] = { rank: r.rank, full: r.fullRank };
      if (r.u && r.v && r.values && lowRankPays(ms[0], ms[1], r.rank)) {
        const f = splitFactors(r.u, r.v, r.values, ms[0], ms[1]);
        factors[p.name] = {
          left: { shape: [ms[0], r.rank], data: f.left },
          right: { shape: [r.rank, ms[1]], data: f.right },
        };
      }
    }
    return {
      server: { global, dualSum, factors, hints },
      stats: parts.svt ? { ranks } : {},
    };
  };

  return {
    name: parts.name,
    hasGlobal: true,
    hasPersonal: parts.personal !== 'none',
    clientStateSets: sparse ? 2 : 1,
    server: {
      codec: fedslrServerCodec,
      initServer(init) {
        if (!budgeted) return { global: init, factors: {}, hints: {} };
        // Round 0's download meets the budget too.
        const step = budgetStep(spec, init, budgeted, 0);
        return { global: step.global, factors: step.factors, hints: {} };
      },
      download: (server, round) => download(server, round),
      evalDownload: download,
      async aggregate(server, round, uploads) {
        const W = server.global;
        const ws = uploads.map((u) => decodeParams(u.upload.params, spec));
        const S = ws.length;
        const a = opts.alpha;
        // D <- D + alpha * (|S| W^t - sum_i w_i)
        const dPrev = server.dualSum;
        const dualSum = combine([W, ...(dPrev ? [dPrev] : []), ...ws], (v) => {
          let s = 0;
          for (let j = 1 + (dPrev ? 1 : 0); j < v.length; j++) s += v[j]!;
          return (dPrev ? v[1]! : 0) + a * (S * v[0]! - s);
        });
        // V = mean_i w_i - D / (alpha N)
        const V = combine([dualSum, ...ws], (v) => {
          let s = 0;
          for (let j = 1; j < v.length; j++) s += v[j]!;
          return s / S - v[0]! / (a * N);
        });
        return proximalStep(server, round, dualSum, V);
      },
      // The same two updates from sum_i w_i and |S| (the sum is already a float32 array).
      async aggregateSum(server, round, { count: S, params: sum }) {
        const a = opts.alpha;
        const dPrev = server.dualSum;
        const dualSum = combine([server.global, sum, ...(dPrev ? [dPrev] : [])], (v) => {
          return (dPrev ? v[2]! : 0) + a * (S * v[0]! - v[1]!);
        });
        const V = combine([dualSum, sum], (v) => v[1]! / S - v[0]! / (a * N));
        return proximalStep(server, round, dualSum, V);
      },
      global: (server) => server.global,
    },
    client: {
      codec: clientCodec,
      initClient: (_client, init): FedSLRClient =>
        sparse ? { sparse: initialSparse(spec, init, opts.personalInit) } : {},

      async train(down, state, run) {
        const W = fromArrays(decodeParams(down.params, spec));
        const pi = state.dual ? fromArrays(state.dual) : zerosLike(W);
        // Stage 1: SGD on f_i(w) - <pi_i, w> + (alpha/2)||w - W^t||^2 + (wd/2)||w||^2 from W^t.
        const s1 = await sgd(ctx, run, W, ctx.train.epochs, {
          transform: chain(addLinear(pi, -1), proximalPull(opts.alpha, W), addDecayedWeights(wd)),
        });
        // Dual update: pi_i <- pi_i + alpha (W^t - w_i).
        const drift = sub(W, s1.params);
        const piNext = tf.tidy(() =>
          Object.fromEntries(
            Object.keys(pi).map((k) => [k, tf.add(pi[k]!, tf.mul(drift[k]!, opts.alpha))]),
          ),
        );
        const upload = await readArrays(s1.params);
        const next: FedSLRClient = { dual: await readArrays(piNext) };
        disposeParams(pi, s1.params, drift, piNext);
        if (sparse) {
          if (!state.sparse) throw new Error(`${parts.name}: the client state lacks P_i`);
          // Stage 2: proximal SGD on f_i(W^t + P) + (wd/2)||P||^2 over P, W^t frozen.
          const P = fromArrays(state.sparse);
          const lambda = state.lambda ?? opts.lambda;
          const s2 = await sgd(ctx, run, P, opts.personalEpochs, {
            compose: (p) => add(W, p),
            transform: addDecayedWeights(wd),
            prox: l1ProxMap(lambda),
          });
          next.sparse = await readArrays(s2.params);
          disposeParams(P, s2.params);
          if (state.discarded !== undefined) next.discarded = state.discarded;
          if (
            opts.discardNonFinite &&
            !Object.values(next.sparse).every((a) => allFinite(a.data))
          ) {
            // The stage diverged: P_i (and lambda_i) stay as they were before it.
            next.sparse = state.sparse;
            if (state.lambda !== undefined) next.lambda = state.lambda;
            next.discarded = (state.discarded ?? 0) + 1;
          } else if (opts.density !== undefined) {
            // The density target (density_target.ts): cap P_i at it, adapt lambda_i towards it.
            const density = nonZeroShare(next.sparse);
            next.sparse = capDensity(next.sparse, opts.density).set;
            next.lambda = nextLambda(lambda, density, Math.min(1, DENSITY_HEADROOM * opts.density));
          }
        }
        disposeParams(W);
        return {
          upload: {
            round: down.round,
            params: denseParams(upload),
            numSamples: run.data.y.shape[0],
            trainLoss: s1.loss,
            trainAcc: s1.acc,
          },
          state: next,
        };
      },

      personalModel(state, global) {
        if (parts.personal === 'none') return null;
        if (!global) throw new Error(`${parts.name}: personal model needs the global model`);
        if (parts.personal === 'global') return global;
        if (!state.sparse) throw new Error(`${parts.name}: the client state lacks P_i`);
        return addArrays(global, state.sparse);
      },
      personalDensity: sparse ? (state) => nonZeroShare(state.sparse ?? {}) : undefined,
      discardedStages: (state) => state.discarded ?? 0,
    },
  };
}

export const fedslrAlgorithm = describeAlgorithm({
  summary:
    'FedSLR; `low-rank-only` drops stage 2 (personal = global), `sparse-only` drops the SVT (FedDyn + sparse personal parts)',
  schema: fedslrSchema,
  create: fedslr,
  sumOnly: () => true,
});
