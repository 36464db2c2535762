/**
 * The browser client's build (scripts/build-web.mjs): the page and its worker bundle for the
 * browser with no Node built-in, and the folder holds what a static host needs.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildWeb } from '../../scripts/build-web.mjs';

describe('the browser build', () => {
  it("bundles the page and its worker with no Node built-in, beside tfjs's .wasm files", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedslr-web-'));
    try {
      const inputs = Object.keys((await buildWeb(dir)).inputs);
      const builtins = new Set(builtinModules);
      expect(inputs.filter((i) => i.startsWith('node:') || builtins.has(i))).toEqual([]);
      // The worker runs the one client loop, the host and the algorithms.
      for (const f of [
        'src/runtime/client_loop.ts',
        'src/runtime/host.ts',
        'src/algorithms/fedslr.ts',
        'src/web/idb_store.ts',
      ])
        expect(inputs).toContain(f);
      for (const f of ['page.js', 'worker.js', 'tfjs-backend-wasm-simd.wasm'])
        expect(statSync(join(dir, f)).size).toBeGreaterThan(0);
      expect(readFileSync(join(dir, 'index.html'), 'utf8')).toContain('src="page.js"');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
