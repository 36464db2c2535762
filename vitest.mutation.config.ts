import { defineConfig } from 'vitest/config';

/**
 * The fast unit tests that cover the mutated core files (stryker.config.mjs): Stryker runs only
 * the tests that cover each mutant, so slow end-to-end files (test/, src/train/mnist.test.ts)
 * stay out to keep a run affordable. MUTATION_TESTS=a.test.ts,b.test.ts narrows the set further
 * (a file that nearly every test reaches, as train/loop.ts, costs a full pass per mutant).
 */
export default defineConfig({
  test: {
    include: process.env.MUTATION_TESTS?.split(',') ?? [
      'src/algorithms/**/*.test.ts',
      'src/codec/**/*.test.ts',
      'src/data/partition.test.ts',
      'src/linalg/prox.test.ts',
      'src/models/**/*.test.ts',
      'src/sim/sim_units.test.ts',
      'src/sim/accounting.test.ts',
      'src/train/train.test.ts',
      'src/train/transforms.test.ts',
      'src/train/loop.test.ts',
      'src/train/batches.test.ts',
    ],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
