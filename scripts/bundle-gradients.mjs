// Replaces dist/tensor/gradients.js (which imports tfjs-core's extension-less ESM gradient files)
// with a self-contained bundle Node can load. Run by `npm run build` after tsc.
import { buildSync } from 'esbuild';

buildSync({
  entryPoints: ['src/tensor/gradients.ts'],
  outfile: 'dist/tensor/gradients.js',
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
  allowOverwrite: true,
});
