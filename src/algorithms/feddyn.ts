/**
 * FedDyn (Acar et al. 2021): clients minimise f_i(w) - <grad L_i, w> + (alpha/2)||w - W^t||^2 and
 * update their linear term; the server corrects the mean of the uploads by the sum of all
 * clients' terms. This is exactly FedSLR's stage 1 and server step without the SVT (the dual
 * pi_i of FEDSLR.md is -grad L_i), so it runs FedSLR's code with those stages off.
 */
import { z } from 'zod';
import { defaultsOf, describeAlgorithm } from './descriptor.js';
import { dynamicFamily, FEDSLR_DEFAULTS, type FedSLRClient, type FedSLRServer } from './fedslr.js';
import type { Algorithm, AlgorithmContext } from './types.js';

const feddynSchema = z.strictObject({
  name: z.literal('feddyn'),
  /** Coefficient of the dynamic regulariser. */
  alpha: z.number().positive().default(0.1),
});

export type FedDynOptions = Omit<z.output<typeof feddynSchema>, 'name'>;
export const FEDDYN_DEFAULTS = defaultsOf(feddynSchema);

export function feddyn(
  ctx: AlgorithmContext,
  opts: FedDynOptions = FEDDYN_DEFAULTS,
): Algorithm<FedSLRServer, FedSLRClient> {
  return dynamicFamily(
    ctx,
    { ...FEDSLR_DEFAULTS, alpha: opts.alpha, mu: 0 },
    { name: 'feddyn', svt: false, personal: 'none' },
  );
}

export const feddynAlgorithm = describeAlgorithm({
  summary: "FedDyn (FedSLR's stage 1 and server step without SVT; the same code)",
  schema: feddynSchema,
  create: feddyn,
  sumOnly: () => true,
});
