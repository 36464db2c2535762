/**
 * Quantization for secure aggregation: real vectors to integers that add modulo 2^32.
 *
 * With clip c, b bits, L = 2^b - 1 levels above zero and step D = 2c / L, a value x is clipped to
 * [-c, c], shifted to s = (clip(x) + c) / D in [0, L], and rounded stochastically:
 * q = floor(s + u) with u uniform in [0, 1), so E[q] = s (unbiased) and |q - s| < 1. The u come
 * from a cryptographic stream (AES-CTR, crypto.ts), never from a non-cryptographic generator.
 *
 * Sums of n clients' q are taken as Uint32 modulo 2^32 (what the masks need); they are exact
 * while n * L < 2^32, i.e. b + ceil(log2 n) <= 32, which `checkCapacity` enforces. The sum is
 * dequantized as D * Q - n * c (each client's offset c removed once).
 *
 * Error bound, per coordinate, for n participants: |dequantized - sum_i clip(x_i)| < n * D
 * = 2 n c / (2^b - 1) (plus float32 rounding of the result); the error has mean 0 and standard
 * deviation at most D * sqrt(n) / 2. Clipping adds |x - clip(x)| for values outside [-c, c].
 */
import { SecAggError } from './errors.js';

export interface QuantizationOptions {
  /** Values are clipped to [-clip, clip]; must be positive and finite. */
  readonly clip: number;
  /** Bits per quantized value, 1..31. */
  readonly bits: number;
}

const TWO_POW_32 = 4294967296;

/** The quantization step D = 2 clip / (2^bits - 1). */
export function quantizationStep({ clip, bits }: QuantizationOptions): number {
  return (2 * clip) / (2 ** bits - 1);
}

/** The bound n * D on the per-coordinate error of a dequantized sum of n clients (see above). */
export function sumErrorBound(options: QuantizationOptions, participants: number): number {
  return participants * quantizationStep(options);
}

export function checkQuantization({ clip, bits }: QuantizationOptions): void {
  if (!(Number.isFinite(clip) && clip > 0))
    throw new SecAggError('config', `clip: expected a positive finite number, got ${clip}`);
  if (!(Number.isInteger(bits) && bits >= 1 && bits <= 31))
    throw new SecAggError('config', `quantizationBits: expected an integer in 1..31, got ${bits}`);
}

/** Refuses when a sum of `participants` values of `bits` bits could wrap modulo 2^32. */
export function checkCapacity({ bits }: QuantizationOptions, participants: number): void {
  if (participants * (2 ** bits - 1) >= TWO_POW_32)
    throw new SecAggError(
      'config',
      `quantizationBits ${bits} with ${participants} participants can overflow 2^32; ` +
        `expected bits + ceil(log2(participants)) <= 32`,
    );
}

/**
 * Quantizes `values` with stochastic rounding; `randomWords[i] / 2^32` is the uniform draw for
 * coordinate i (at least values.length words, from a cryptographic stream).
 */
export function quantize(
  values: Float32Array,
  options: QuantizationOptions,
  randomWords: Uint32Array,
): Uint32Array {
  checkQuantization(options);
  if (randomWords.length < values.length)
    throw new SecAggError(
      'quantize',
      `expected ${values.length} random words, got ${randomWords.length}`,
    );
  const { clip } = options;
  const levels = 2 ** options.bits - 1;
  const scale = levels / (2 * clip);
  const out = new Uint32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (Number.isNaN(v)) throw new SecAggError('quantize', `value ${i} is NaN`);
    const clipped = Math.min(clip, Math.max(-clip, v));
    const q = Math.floor((clipped + clip) * scale + (randomWords[i] as number) / TWO_POW_32);
    out[i] = Math.min(q, levels);
  }
  return out;
}

/** The real-valued sum of `participants` clients' values from the sum of their quantized ones. */
export function dequantizeSum(
  sum: Uint32Array,
  options: QuantizationOptions,
  participants: number,
): Float32Array {
  checkQuantization(options);
  checkCapacity(options, participants);
  const step = quantizationStep(options);
  const offset = participants * options.clip;
  const out = new Float32Array(sum.length);
  for (let i = 0; i < sum.length; i++) out[i] = (sum[i] as number) * step - offset;
  return out;
}
