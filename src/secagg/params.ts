import { SecAggError } from './errors.js';
import { checkQuantization } from './quantize.js';

/** What the server and every client of one secure-aggregation round agree on beforehand. */
export interface SecAggParams {
  /** Round number (0..2^32-1); it enters every derived key, so masks differ between rounds. */
  readonly round: number;
  /** Length of each client's input vector. */
  readonly dimension: number;
  /**
   * Shamir threshold t (2..254): t shares rebuild a secret, fewer reveal nothing. Every client
   * needs at least t neighbours, and each secret needs t of its holders at unmasking.
   */
  readonly threshold: number;
  /** Inputs are clipped to [-clip, clip]. */
  readonly clip: number;
  /** Bits per quantized coordinate (see quantize.ts for the error bound). */
  readonly quantizationBits: number;
}

/** Shamir shares of a 32-byte secret: the secret's bytes plus one x-coordinate byte. */
export const SHARE_BYTES = 33;

export function checkParams(p: SecAggParams): void {
  const fail = (field: string, expected: string, got: unknown): never => {
    throw new SecAggError('config', `${field}: expected ${expected}, got ${String(got)}`);
  };
  if (!(Number.isInteger(p.round) && p.round >= 0 && p.round < 2 ** 32))
    fail('round', 'an integer in 0..2^32-1', p.round);
  if (!(Number.isInteger(p.dimension) && p.dimension >= 1))
    fail('dimension', 'a positive integer', p.dimension);
  if (!(Number.isInteger(p.threshold) && p.threshold >= 2 && p.threshold <= 254))
    fail('threshold', 'an integer in 2..254', p.threshold);
  checkQuantization({ clip: p.clip, bits: p.quantizationBits });
}
