import { describe, expect, it } from 'vitest';
import { expandSeed } from './crypto.js';
import { dequantizeSum, quantizationStep, quantize, sumErrorBound } from './quantize.js';

function seed(byte: number): Uint8Array {
  return new Uint8Array(32).fill(byte);
}

describe('quantization', () => {
  it('dequantized sums of n clients stay within n * step of the clipped sum, and are unbiased', async () => {
    const options = { clip: 0.5, bits: 8 };
    const dim = 20000;
    for (const n of [1, 3, 10]) {
      const sum = new Uint32Array(dim);
      const exact = new Float64Array(dim);
      for (let c = 0; c < n; c++) {
        const words = await expandSeed(seed(10 + c), dim);
        const values = Float32Array.from(words, (w) => (w / 2 ** 32) * 1.4 - 0.7); // some clipped
        values.forEach((v, i) => {
          exact[i] = (exact[i] as number) + Math.min(0.5, Math.max(-0.5, v));
        });
        const q = quantize(values, options, await expandSeed(seed(100 + c), dim));
        q.forEach((x, i) => {
          sum[i] = (sum[i] as number) + x;
        });
      }
      const got = dequantizeSum(sum, options, n);
      let worst = 0;
      let mean = 0;
      for (let i = 0; i < dim; i++) {
        const err = (got[i] as number) - (exact[i] as number);
        worst = Math.max(worst, Math.abs(err));
        mean += err / dim;
      }
      const bound = sumErrorBound(options, n);
      expect(bound).toBeCloseTo(n * quantizationStep(options), 12);
      expect(worst).toBeLessThan(bound + 1e-6);
      expect(worst).toBeGreaterThan(bound / 4); // the bound is not vacuous
      // Mean of dim errors with standard deviation <= step * sqrt(n) / 2: within 5 sigma of 0.
      expect(Math.abs(mean)).toBeLessThan(
        (5 * quantizationStep(options) * Math.sqrt(n)) / 2 / Math.sqrt(dim),
      );
    }
  });

  it('refuses settings whose sums could wrap modulo 2^32, and NaN inputs', () => {
    expect(() => dequantizeSum(new Uint32Array(1), { clip: 1, bits: 24 }, 300)).toThrow(/overflow/);
    expect(() =>
      quantize(new Float32Array([Number.NaN]), { clip: 1, bits: 8 }, new Uint32Array(1)),
    ).toThrow(/NaN/);
    expect(() => quantize(new Float32Array(1), { clip: 0, bits: 8 }, new Uint32Array(1))).toThrow(
      /clip/,
    );
  });
});
