import { defineConfig } from 'vitest/config';

/** Checks against PyTorch (`npm run check:torch`); they need /usr/bin/python3 with torch. */
export default defineConfig({
  test: {
    include: ['src/**/*.check.ts'],
    testTimeout: 300_000,
    pool: 'forks',
  },
});
