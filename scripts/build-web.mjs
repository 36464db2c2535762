// Builds the browser client (src/web) into a folder any static host can serve: index.html,
// page.js, worker.js, chunks/ (the backends, webgl's and webgpu's loaded only when chosen) and
// tfjs's .wasm files. `npm run build` writes dist/web/; test/browser.test.ts builds into a
// temporary folder.
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Bundles the page and its worker into `outDir`; resolves with esbuild's metafile. */
export async function buildWeb(outDir) {
  // Chunks are named by content hash: an earlier build's would otherwise pile up beside these.
  rmSync(join(outDir, 'chunks'), { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const result = await build({
    absWorkingDir: root,
    entryPoints: ['src/web/page.ts', 'src/web/worker.ts'],
    outdir: outDir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    chunkNames: 'chunks/[name]-[hash]',
    metafile: true,
    logLevel: 'warning',
  });
  copyFileSync(join(root, 'src/web/index.html'), join(outDir, 'index.html'));
  const wasmDir = dirname(
    createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json'),
  );
  for (const f of [
    'tfjs-backend-wasm.wasm',
    'tfjs-backend-wasm-simd.wasm',
    'tfjs-backend-wasm-threaded-simd.wasm',
  ])
    copyFileSync(join(wasmDir, 'dist', f), join(outDir, f));
  return result.metafile;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildWeb(join(root, 'dist/web'));
