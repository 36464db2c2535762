/**
 * A personal-density target for FedSLR (`algorithm.density` = d*): instead of a hand-tuned L1
 * weight, each client adapts its own lambda_i, kept in its state, so that its P_i's share of
 * non-zeros reaches d*. Two parts, after every stage 2 of client i:
 *
 * 1. Cap: when P_i is denser than d*, its last proximal step thresholds at lambda_i lr + t_i
 *    instead of lambda_i lr, t_i the smallest extra that leaves at most d* of the entries
 *    non-zero. (Soft thresholds compose, S_t(S_{lambda lr}(x)) = S_{lambda lr + t}(x), so this is
 *    applying S_t to stage 2's result.) So P_i is never denser than the target.
 * 2. Adapt: lambda_i <- lambda_i * clamp((d / d*)^GAIN, 1 / MAX_STEP, MAX_STEP) with d the density
 *    before the cap: a denser stage 2 raises lambda_i, a sparser one lowers it, so the cap's extra
 *    stays small and a P_i below the target grows back.
 *
 * Every step of stage 2 is still a proximal step of f_i(W + P) + lambda ||P||_1, with the client's
 * lambda_i (and a larger one in the capped last step); the target is met by the adapted sequence,
 * not by one fixed objective. Measured on the test's small run (mlp, MNIST): without the cap, the
 * multiplicative update alone oscillates between ~0.1 and ~0.6 around a target of 0.3, because
 * density is steep and lagged in lambda.
 */
import type { ParamArrays } from '../tensor/params.js';

/** Exponent of the multiplicative update (larger values oscillated on the test's run). */
export const DENSITY_GAIN = 0.5;
/**
 * lambda_i aims at an uncapped density of HEADROOM d* (capped to 1), so that the noisy density of
 * one stage 2 rarely falls below d* and the cap trims it to d* exactly.
 */
export const DENSITY_HEADROOM = 1.5;
/** The most lambda moves in one update (as a factor). */
export const DENSITY_MAX_STEP = 4;

export function nextLambda(lambda: number, density: number, target: number): number {
  if (!(lambda > 0)) throw new Error(`density target: lambda must be > 0, got ${lambda}`);
  if (!(target > 0 && target <= 1))
    throw new Error(`density target: must be in (0, 1], got ${target}`);
  const step = (density / target) ** DENSITY_GAIN;
  return lambda * Math.min(DENSITY_MAX_STEP, Math.max(1 / DENSITY_MAX_STEP, step));
}

/**
 * `set` soft-thresholded by the smallest t that leaves at most floor(target * size) non-zeros
 * (t = 0, the set itself, when it is no denser than that). Ties at t may zero a few more.
 */
export function capDensity(set: ParamArrays, target: number): { set: ParamArrays; extra: number } {
  let size = 0;
  for (const a of Object.values(set)) size += a.data.length;
  const allowed = Math.floor(target * size);
  const mags = new Float32Array(size);
  let n = 0;
  for (const a of Object.values(set))
    for (let i = 0; i < a.data.length; i++) if (a.data[i] !== 0) mags[n++] = Math.abs(a.data[i]!);
  if (n <= allowed) return { set, extra: 0 };
  // The (allowed + 1)-th largest magnitude: everything at or below it goes to zero.
  const sorted = mags.subarray(0, n).sort();
  const t = sorted[n - allowed - 1]!;
  const out: ParamArrays = {};
  for (const [k, a] of Object.entries(set)) {
    const data = new Float32Array(a.data.length);
    for (let i = 0; i < data.length; i++) {
      const x = a.data[i]!;
      const m = Math.abs(x) - t;
      data[i] = m > 0 ? Math.sign(x) * m : 0;
    }
    out[k] = { shape: [...a.shape], data };
  }
  return { set: out, extra: t };
}
