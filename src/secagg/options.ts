/**
 * The `secureAggregation` section of a run config and of the task clients are sent, and the
 * round parameters it gives for a cohort. With n participants and neighbours k (SecAgg+; all the
 * others when absent), each client has d = min(n - 1, 2 ceil(k / 2)) neighbours (graph.ts) and
 * d + 1 share holders (itself included); the threshold t defaults to a majority of them,
 * floor((d + 1) / 2) + 1, at least 2. A round needs t <= d, i.e. at least t + 1 participants.
 */
import { z } from 'zod';
import { SecAggError } from './errors.js';

export const SECURE_AGGREGATION_DEFAULTS = { enabled: false, clip: 1, quantizationBits: 16 };

export const secureAggregationSchema = z
  .strictObject({
    enabled: z.boolean().default(SECURE_AGGREGATION_DEFAULTS.enabled),
    /** Each coordinate of a client's update w_i - W^t is clipped to [-clip, clip]. */
    clip: z.number().positive().finite().default(SECURE_AGGREGATION_DEFAULTS.clip),
    /** Bits per quantized coordinate (bits + ceil(log2 participants) <= 32). */
    quantizationBits: z
      .number()
      .int()
      .min(1)
      .max(31)
      .default(SECURE_AGGREGATION_DEFAULTS.quantizationBits),
    /** SecAgg+: each client's number of neighbours (default: every other participant). */
    neighbours: z.number().int().min(2).optional(),
    /** Shamir threshold t (default: a majority of each client's neighbours and itself). */
    threshold: z.number().int().min(2).max(254).optional(),
  })
  .refine(
    (s) => s.neighbours === undefined || s.threshold === undefined || s.neighbours >= s.threshold,
    {
      path: ['threshold'],
      message: 'a client must have at least threshold neighbours: expected threshold <= neighbours',
    },
  );

export type SecureAggregationOptions = z.output<typeof secureAggregationSchema>;

/** Neighbours of each client in a cohort of `participants` (graph.ts's Harary graph). */
export function degreeFor(participants: number, neighbours: number | undefined): number {
  const all = participants - 1;
  return neighbours === undefined ? all : Math.min(all, 2 * Math.ceil(neighbours / 2));
}

/** The threshold of a round with `participants`, or a SecAggError when the cohort is too small. */
export function thresholdFor(options: SecureAggregationOptions, participants: number): number {
  const degree = degreeFor(participants, options.neighbours);
  const threshold = thresholdOf(options, degree);
  if (degree < threshold)
    throw new SecAggError(
      'config',
      `${participants} participants give each client ${degree} neighbours, fewer than the threshold ${threshold}; ` +
        `secure aggregation needs at least ${threshold + 1} participants`,
    );
  return threshold;
}

function thresholdOf(options: SecureAggregationOptions, degree: number): number {
  return options.threshold ?? Math.max(2, Math.floor((degree + 1) / 2) + 1);
}

/** The fewest participants a round can have with these options. */
export function minimumCohort(options: SecureAggregationOptions): number {
  let n = 3;
  while (thresholdOf(options, degreeFor(n, options.neighbours)) > degreeFor(n, options.neighbours))
    n++;
  return n;
}
