// Mutation testing of the core (npm run mutation; slow, so not part of npm test or CI).
// The reports go to reports/mutation/ (git-ignored); MUTATE=a.ts,b.ts limits a run to some
// files and MUTATION_REPORT=name names its report files.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts' },
  coverageAnalysis: 'perTest',
  mutate: process.env.MUTATE?.split(',') ?? [
    'src/algorithms/**/*.ts',
    'src/linalg/prox.ts',
    'src/train/**/*.ts',
    'src/data/partition.ts',
    'src/sim/stats.ts',
    // simulate.ts: only the evaluation summary and the message/byte accounting (line ranges;
    // update them when the file moves).
    'src/sim/simulate.ts:130-187',
    'src/sim/simulate.ts:301-305',
    'src/sim/simulate.ts:316-316',
    'src/sim/simulate.ts:352-362',
    'src/sim/simulate.ts:421-431',
    'src/codec/**/*.ts',
    '!src/**/*.test.ts',
    '!src/**/index.ts',
  ],
  reporters: ['html', 'clear-text', 'progress', 'json'],
  htmlReporter: { fileName: `reports/mutation/${process.env.MUTATION_REPORT ?? 'index'}.html` },
  jsonReporter: { fileName: `reports/mutation/${process.env.MUTATION_REPORT ?? 'mutation'}.json` },
  tempDirName: '.stryker-tmp',
  concurrency: 1,
  timeoutMS: 15_000,
  ignoreStatic: true,
};
