/**
 * A personal-density target for FedSLR (`algorithm.density`): instead of a hand-tuned L1 weight,
 * each client adapts its own lambda after every stage 2 so that its P_i's share of non-zeros d
 * approaches the target d*:
 *
 *   lambda <- lambda * clamp((d / d*)^GAIN, 1 / MAX_STEP, MAX_STEP)
 *
 * A denser P_i than wanted raises lambda (a larger soft threshold zeroes more entries), a sparser
 * one lowers it; the clamp keeps one round from overshooting by more than MAX_STEP. Each stage 2
 * is still the proximal step of f_i(W + P) + lambda_i ||P||_1, with the client's current lambda_i;
 * the target is met by the sequence of those steps, not by one objective.
 */

/** Exponent of the multiplicative update. */
export const DENSITY_GAIN = 2;
/** The most lambda moves in one update (as a factor). */
export const DENSITY_MAX_STEP = 4;

export function nextLambda(lambda: number, density: number, target: number): number {
  if (!(lambda > 0)) throw new Error(`density target: lambda must be > 0, got ${lambda}`);
  if (!(target > 0 && target <= 1))
    throw new Error(`density target: must be in (0, 1], got ${target}`);
  const step = (density / target) ** DENSITY_GAIN;
  return lambda * Math.min(DENSITY_MAX_STEP, Math.max(1 / DENSITY_MAX_STEP, step));
}
