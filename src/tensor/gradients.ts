/**
 * Registers tfjs-core's gradient functions. tfjs-core ships them only as extension-less ESM files
 * that Node cannot load directly, so `npm run build` bundles this module with esbuild (see
 * scripts/bundle-gradients.mjs); the registrations land in tfjs's global registry, as they do in
 * the `@tensorflow/tfjs` union package.
 */
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
